"""The workflow's steps, one module each: its function, its grants and their acknowledgments.

`STEPS` is what the pipeline stack composes; the workflow (stacks/constructs/workflow.py) wires
them by name. A step's class name is its state's name and, in snake case, its handler module.
"""

from stacks.steps.admit import Admit
from stacks.steps.base import StepClass
from stacks.steps.check_evaluation import CheckEvaluation
from stacks.steps.choose_best import ChooseBest
from stacks.steps.compose_success import ComposeSuccess
from stacks.steps.handle_failure import HandleFailure
from stacks.steps.poll_tuning import PollTuning
from stacks.steps.register_model import RegisterModel
from stacks.steps.release import Release
from stacks.steps.start_evaluation import StartEvaluation
from stacks.steps.start_tuning import StartTuning
from stacks.steps.stop_orphans import StopOrphans
from stacks.steps.validate_dataset import ValidateDataset

STEPS: tuple[StepClass, ...] = (
    ValidateDataset,
    Admit,
    StartTuning,
    PollTuning,
    ChooseBest,
    StartEvaluation,
    CheckEvaluation,
    RegisterModel,
    ComposeSuccess,
    Release,
    HandleFailure,
    StopOrphans,
)
