"""The pipeline's logic, shared by the handlers (`lambdas/handlers/`): no handler code, no AWS calls
except through the clients they are given.

Sub-packages by concept, in layers: a package imports only the packages below it (the rule is
`LAYERS`, checked by tests/test_layers.py), never one above, so there is no import circle.

    aws          clients, error types and retry classification, S3 layout, tags, input forms, image URIs,
                 logs/metrics/tracing
    settings     the search space, limits, each key's parser and schema, the rules, the trust boundary
    governance   instance slots, the queue, admission against the account's quotas, the month's ledger
    contract     (module) what the steps hand each other, typed
    tuning       names, the tuning requests, warm start, the worst-case cost
    dataset      layout and manifest, the listing, the .lst and augmented readers, leakage, validation
    evaluation   the best job, the test transform and its scores, registration and approval
    step_inputs, messages   (modules) each step's input; the notices

`data/` holds the tables the code reads: the algorithm's registries per region and the prices.
"""

# Bottom to top: each may import those listed before it, and none after.
LAYERS = ("aws", "settings", "governance", "contract", "tuning", "dataset", "evaluation", "step_inputs", "messages")
