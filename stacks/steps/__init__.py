"""The workflow's steps, one module each: a step owns its function, its grants and the cdk-nag
acknowledgments of exactly those grants. A new step is a new module here, a task in
`stacks/constructs/workflow.py`, and a handler in `lambdas/handlers/<module>.py` of the same name.
"""
