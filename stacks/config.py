"""Deployment configuration: one frozen, validated object built from `cdk.json` context.

`cdk.json` holds `environments.<name>` blocks; `-c env=<name>` picks one (default `dev`).
The tuning defaults inside a block use the same schema (and the same error messages) as a
dataset manifest's `tuning` overrides: `pipeline.settings.tuning_settings.TuningSettings`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws
from aws_cdk import aws_logs as logs

from pipeline.aws.errors import SettingsError
from pipeline.settings import limits
from pipeline.settings.tuning_settings import TuningSettings

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,11}$")
ENV_KEYS = (
    "prefix",
    "account",
    "region",
    "retain_data",
    "notification_email",
    "model_package_group",
    "production",
    "log_retention_days",
    "training_vpc",
    "tuning",
    "capacity",
    "monthly_budget_usd",
    "max_queue_wait_seconds",
    "queue_alarm_seconds",
)
# How long a run may wait for slots by default, and after how long a wait raises the alarm.
MAX_QUEUE_WAIT_SECONDS = 86_400
QUEUE_ALARM_SECONDS = 3_600
# The most slots of one instance type a deployment may declare (a guard against typos).
MAX_CAPACITY = 1_000
_RETENTION_NAMES = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}
LOG_RETENTION_DAYS = tuple(_RETENTION_NAMES)


class ConfigError(ValueError):
    """Invalid `cdk.json` configuration; the message names the key and the allowed values."""


@dataclass(frozen=True)
class GovernanceConfig:
    """What the deployment allows across runs: slots per instance type, the month's budget, the queue."""

    capacity: dict[str, int]
    monthly_budget_usd: float | None
    max_queue_wait_seconds: int
    queue_alarm_seconds: int


@dataclass(frozen=True)
class PipelineConfig:
    env_name: str
    prefix: str
    account: str | None
    region: str | None
    retain_data: bool
    notification_email: str | None
    model_package_group: str
    production: bool
    log_retention_days: int
    tuning: TuningSettings
    governance: GovernanceConfig
    # {"Subnets": [...], "SecurityGroupIds": [...]}: train inside this VPC, or None.
    training_vpc: dict[str, list[str]] | None = None

    @property
    def table_name(self) -> str:
        """The governance table (slots, queue, ledger): named like the buckets, known to both stacks."""
        return f"{self.prefix}-{self.env_name}-governance"

    @property
    def state_machine_name(self) -> str:
        """Named, so the functions it runs can be granted its executions without a circular reference."""
        return f"{self.prefix}-{self.env_name}-tuning"

    def bucket_name(self, kind: str) -> str:
        """`<prefix>-<env>-<kind>-<account>-<region>`: unique, readable, known to both stacks
        without a cross-stack export (the account and region are CloudFormation pseudo values)."""
        return f"{self.prefix}-{self.env_name}-{kind}-{Aws.ACCOUNT_ID}-{Aws.REGION}"

    @property
    def log_retention(self) -> logs.RetentionDays:
        retention: logs.RetentionDays = getattr(logs.RetentionDays, _RETENTION_NAMES[self.log_retention_days])
        return retention

    @property
    def workflow_timeout_seconds(self) -> int:
        """The queue waits, the worst-case tuning and evaluation times with their polls, and the slack
        (`limits.workflow_seconds`).

        The validation step gets this number too and refuses a run whose manifest would outlive it."""
        tuning = self.tuning
        return limits.workflow_seconds(
            tuning.worst_case_tuning_seconds(),
            tuning.poll_seconds,
            tuning.evaluation_max_seconds,
            queue_seconds=self.governance.max_queue_wait_seconds,
        )


def load_config(context: Mapping[str, Any], env_name: str) -> PipelineConfig:
    """The environment's block of cdk.json, every key checked; ConfigError names the key and the fix."""
    block, where = _environment_block(context, env_name)
    prefix, production = _prefix(block, where), _production(block, where)
    retain = _retain_data(block, where, production)
    email = block.get("notification_email")
    if email is not None and (not isinstance(email, str) or not EMAIL.match(email)):
        raise ConfigError(f"{where}: key 'notification_email' must be an e-mail address or null, got {email!r}")
    group = block.get("model_package_group", f"{prefix}-{env_name}-image-classification")
    if not isinstance(group, str) or not GROUP_NAME.match(group):
        raise ConfigError(f"{where}: key 'model_package_group' must be 1-63 letters, digits or hyphens, got {group!r}")
    retention = block.get("log_retention_days", 365 if production else 30)
    if retention not in LOG_RETENTION_DAYS:
        raise ConfigError(
            f"{where}: key 'log_retention_days' must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}, got {retention!r}"
        )
    for key in ("account", "region"):
        if block.get(key) is not None and not isinstance(block[key], str):
            raise ConfigError(f"{where}: key {key!r} must be a string or null")
    training_vpc = _training_vpc(block.get("training_vpc"), where)
    try:
        tuning = TuningSettings.from_mapping(block.get("tuning", {}), where=f"{where}.tuning")
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    return PipelineConfig(
        env_name=env_name,
        prefix=prefix,
        account=block.get("account"),
        region=block.get("region"),
        retain_data=retain,
        notification_email=email,
        model_package_group=group,
        production=production,
        log_retention_days=retention,
        tuning=tuning,
        governance=_governance(block, where, tuning),
        training_vpc=training_vpc,
    )


def _environment_block(context: Mapping[str, Any], env_name: str) -> tuple[Mapping[str, Any], str]:
    environments = context.get("environments")
    if not isinstance(environments, Mapping) or not environments:
        raise ConfigError("cdk.json: context key 'environments' must map environment names to settings")
    if env_name not in environments:
        raise ConfigError(
            f"cdk.json: environment {env_name!r} is not defined; pass -c env=<name> with one of "
            f"{', '.join(sorted(environments))}"
        )
    block = environments[env_name]
    where = f"cdk.json context environments.{env_name}"
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: must be an object")
    unknown = sorted(set(block) - set(ENV_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}. Allowed keys: {', '.join(ENV_KEYS)}")
    return block, where


def _prefix(block: Mapping[str, Any], where: str) -> str:
    prefix = block.get("prefix", "ic-tuning")
    if not isinstance(prefix, str) or not PREFIX.match(prefix):
        raise ConfigError(
            f"{where}: key 'prefix' must be 2-12 lowercase letters, digits or '-', starting with a letter; got {prefix!r}"
        )
    return prefix


def _production(block: Mapping[str, Any], where: str) -> bool:
    production = block.get("production")
    if not isinstance(production, bool):
        raise ConfigError(
            f"{where}: key 'production' must be true or false, got {production!r}. It is required: true keeps "
            "the data buckets and key when the stack is deleted and sets log retention to a year by default; "
            "false deletes the buckets with the stack."
        )
    return production


def _retain_data(block: Mapping[str, Any], where: str, production: bool) -> bool:
    retain = block.get("retain_data", production)
    if production and retain is False:
        raise ConfigError(
            f"{where}: key 'retain_data' is false but 'production' is true: deleting the stack would delete "
            "production data and its key. Remove retain_data, or set production to false."
        )
    if not isinstance(retain, bool):
        raise ConfigError(f"{where}: key 'retain_data' must be true or false, got {retain!r}")
    return retain


SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")


def _training_vpc(value: Any, where: str) -> dict[str, list[str]] | None:
    if value is None:
        return None
    key = f"{where}: key 'training_vpc'"
    if not isinstance(value, Mapping) or set(value) != {"subnet_ids", "security_group_ids"}:
        raise ConfigError(f'{key} must be null or {{"subnet_ids": [...], "security_group_ids": [...]}}')
    subnets, groups = value["subnet_ids"], value["security_group_ids"]
    if (
        not isinstance(subnets, list)
        or not 1 <= len(subnets) <= 16
        or not all(isinstance(s, str) and SUBNET.match(s) for s in subnets)
    ):
        raise ConfigError(f"{key}.subnet_ids must list 1-16 subnet ids like 'subnet-0123abcd', got {subnets!r}")
    if (
        not isinstance(groups, list)
        or not 1 <= len(groups) <= 5
        or not all(isinstance(g, str) and SECURITY_GROUP.match(g) for g in groups)
    ):
        raise ConfigError(
            f"{key}.security_group_ids must list 1-5 security group ids like 'sg-0123abcd', got {groups!r}"
        )
    return {"Subnets": list(subnets), "SecurityGroupIds": list(groups)}


def _governance(block: Mapping[str, Any], where: str, tuning: TuningSettings) -> GovernanceConfig:
    """The keys that govern every run together. Each instance type a run may use needs a capacity:
    by default, one run at a time (max_parallel_jobs training slots, one transform slot)."""
    needed = {*tuning.instance_types_allowed, tuning.instance_type}
    capacity = block.get("capacity") or {
        **{t: tuning.max_parallel_jobs for t in needed},
        tuning.evaluation_instance_type: 1,
    }
    if not isinstance(capacity, Mapping) or not all(
        isinstance(k, str) and k.startswith("ml.") and type(v) is int and 1 <= v <= MAX_CAPACITY
        for k, v in capacity.items()
    ):
        raise ConfigError(
            f"{where}: key 'capacity' must map instance types to the slots runs may hold at once (1-{MAX_CAPACITY}), "
            f'e.g. {{"ml.g4dn.xlarge": 4, "ml.m5.xlarge": 1}}; got {capacity!r}'
        )
    missing = sorted((needed | {tuning.evaluation_instance_type}) - set(capacity))
    if missing:
        raise ConfigError(
            f"{where}: key 'capacity' has no slots for {', '.join(missing)}, which runs of this environment may use "
            "(tuning.instance_type, allowed_instance_types, evaluation_instance_type): add them"
        )
    budget = block.get("monthly_budget_usd")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0):
        raise ConfigError(
            f"{where}: key 'monthly_budget_usd' must be a positive number of US dollars or null, got {budget!r}"
        )
    waits = {}
    for key, default in (
        ("max_queue_wait_seconds", MAX_QUEUE_WAIT_SECONDS),
        ("queue_alarm_seconds", QUEUE_ALARM_SECONDS),
    ):
        value = block.get(key, default)
        if type(value) is not int or not 60 <= value <= 30 * 86_400:
            raise ConfigError(f"{where}: key {key!r} must be whole seconds from 60 to 2592000 (30 days), got {value!r}")
        waits[key] = value
    return GovernanceConfig(
        capacity=dict(capacity),
        monthly_budget_usd=None if budget is None else float(budget),
        max_queue_wait_seconds=waits["max_queue_wait_seconds"],
        queue_alarm_seconds=waits["queue_alarm_seconds"],
    )
