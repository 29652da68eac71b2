"""Compose the app: configuration -> stacks -> cdk-nag. Shared by app.py, tests and local mode."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import PipelineConfig, load_config
from stacks.pipeline_stack import PipelineStack
from stacks.storage_stack import StorageStack


@dataclass(frozen=True)
class BuiltApp:
    config: PipelineConfig
    storage: StorageStack
    pipeline: PipelineStack


def build(app: App, *, env_name: str) -> BuiltApp:
    context = {"environments": app.node.try_get_context("environments")}
    config = load_config(context, env_name)
    env = Environment(account=config.account, region=config.region) if config.account or config.region else None
    base = f"{config.prefix}-{config.env_name}"
    storage = StorageStack(
        app, f"{base}-storage", config=config, env=env, description="Image-classification tuning: data"
    )
    pipeline = PipelineStack(
        app,
        f"{base}-pipeline",
        config=config,
        data_key=storage.key,
        env=env,
        description="Image-classification tuning: workflow",
    )
    pipeline.add_stack_dependency(storage, "the buckets must exist before the rule and roles use them")
    for stack in (storage, pipeline):
        Tags.of(stack).add("project", "image-classification-tuning")
        Tags.of(stack).add("environment", config.env_name)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return BuiltApp(config=config, storage=storage, pipeline=pipeline)
