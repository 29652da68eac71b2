"""Pipeline stack: trigger, IAM scoping, workflow rules, alarms, notifications."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from aws_cdk.assertions import Capture, Match, Template

from local.assembly import fake_resolver, state_machine_definitions


@pytest.fixture(scope="module")
def template(synth) -> Template:
    return Template.from_json(synth.pipeline_template)


@pytest.fixture(scope="module")
def definition(synth) -> dict:
    (asl,) = state_machine_definitions(synth.pipeline_template, fake_resolver()).values()
    return asl


def _statements(template: Template) -> list[tuple[str, dict]]:
    out = []
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            out.append((logical_id, s))
    return out


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_only_manifest_creation_in_the_dataset_bucket_starts_the_workflow(template: Template) -> None:
    pattern = Capture()
    template.has_resource_properties("AWS::Events::Rule", {"EventPattern": pattern, "State": "ENABLED"})
    value = pattern.as_object()
    assert value["source"] == ["aws.s3"]
    assert value["detail-type"] == ["Object Created"]
    assert value["detail"]["object"]["key"] == [{"wildcard": "datasets/*/manifest.json"}]
    assert "datasets" in json.dumps(value["detail"]["bucket"]["name"])


def test_no_policy_grants_a_wildcard_action(template: Template) -> None:
    for logical_id, statement in _statements(template):
        for action in _as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), (logical_id, action)


def test_no_managed_policies_on_pipeline_roles(template: Template) -> None:
    for logical_id, role in template.find_resources("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], logical_id


def test_pass_role_only_for_the_sagemaker_role_and_only_to_sagemaker(template: Template) -> None:
    passes = [(lid, s) for lid, s in _statements(template) if "iam:PassRole" in _as_list(s["Action"])]
    # StartTuning hands it to the training jobs, StartEvaluation to the test split's model.
    assert sorted(lid.split("Role")[0] for lid, _ in passes) == ["StartEvaluation", "StartTuning"]
    for _, statement in passes:
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
        role_id, attribute = statement["Resource"]["Fn::GetAtt"]
        assert role_id.startswith("SageMakerExecutionRole") and attribute == "Arn"


def test_sagemaker_role_is_assumable_by_sagemaker_of_this_account_only(template: Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                        }
                    )
                ]
            }
        },
    )


def test_sagemaker_role_reads_datasets_and_writes_only_its_output_prefixes(template: Template) -> None:
    sm = [s for lid, s in _statements(template) if lid.startswith("SageMakerExecutionRole")]
    writes = [s for s in sm if any(a.startswith("s3:Put") for a in _as_list(s["Action"]))]
    reads = [s for s in sm if "s3:GetObject*" in _as_list(s["Action"])]
    written = json.dumps([s["Resource"] for s in writes])
    assert "/tuning/*" in written and "/checkpoints/*" in written
    assert "/datasets/*" not in written and "/metrics/*" not in written and "/runs/*" not in written
    assert any("/datasets/*" in json.dumps(s["Resource"]) for s in reads)


def test_each_lambda_has_its_own_role(template: Template) -> None:
    functions = template.find_resources("AWS::Lambda::Function")
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()]
    assert len(roles) == 12 and len(set(roles)) == 12


def test_lambdas_are_traced_and_log_to_their_own_encrypted_group(template: Template) -> None:
    for function in template.find_resources("AWS::Lambda::Function").values():
        props = function["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert template.to_json()["Resources"][group]["Type"] == "AWS::Logs::LogGroup"
    for group in template.find_resources("AWS::Logs::LogGroup").values():
        assert "KmsKeyId" in group["Properties"]


def test_state_machine_is_standard_traced_logged_at_all(template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
        },
    )


def test_workflow_has_an_overall_timeout_from_the_configuration(synth, definition: dict) -> None:
    assert definition["TimeoutSeconds"] == synth.built.config.workflow_timeout_seconds


def test_every_task_retries_transient_errors_with_backoff(definition: dict) -> None:
    for name, state in definition["States"].items():
        if state["Type"] != "Task":
            continue
        retriers = state.get("Retry", [])
        assert retriers, name
        assert all(r["BackoffRate"] >= 2 and r["MaxAttempts"] >= 4 for r in retriers), name
        if "lambda" in state["Resource"]:
            assert "TransientAwsError" in retriers[0]["ErrorEquals"], name
            # Step Functions developer guide, "Handle transient Lambda service exceptions".
            assert {
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.TooManyRequestsException",
                "Lambda.ClientExecutionTimeoutException",
            } <= set(retriers[0]["ErrorEquals"]), name


def test_every_step_of_the_happy_path_is_caught_into_the_failure_path(definition: dict) -> None:
    for name in (
        "ValidateDataset",
        "AdmitTraining",
        "StartTuning",
        "PollTuning",
        "ChooseBest",
        "RegisterModel",
        "ComposeSuccess",
        "NotifySuccess",
    ):
        catchers = definition["States"][name]["Catch"][-1:]  # AdmitTraining first catches its queue's timeout
        assert catchers == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "HandleFailure"}], name
    assert definition["States"]["HandleFailure"]["Next"] == "ReleaseOnFailure"
    # HandleFailure failing too still releases and notifies, with its error kept apart from the run's.
    assert definition["States"]["HandleFailure"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.handle_error", "Next": "PlainFailureNotice"}
    ]
    assert definition["States"]["PlainFailureNotice"]["Next"] == "ReleaseOnFailure"
    assert definition["States"]["ReleaseOnFailure"]["Next"] == "NotifyFailure"
    assert definition["States"]["NotifyFailure"]["Next"] == "RunFailed"
    assert definition["States"]["RunFailed"]["Type"] == "Fail"


def test_a_failure_notice_that_cannot_be_published_fails_the_execution_under_its_own_name(definition: dict) -> None:
    states = definition["States"]
    (catcher,) = states["NotifyFailure"]["Catch"]
    assert catcher["ErrorEquals"] == ["States.ALL"]
    assert states[catcher["Next"]] == {
        "Type": "Fail",
        "Error": "NotificationFailed",
        "Cause": "The failure notice could not be published to the topic; read this execution's history.",
    }
    assert states["NotifyFailure"]["Retry"][0]["MaxAttempts"] >= 4


def test_workflow_order(definition: dict) -> None:
    states = definition["States"]
    assert definition["StartAt"] == "ValidateDataset"
    assert states["ValidateDataset"]["Next"] == "AdmitTraining"
    assert states["AdmitTraining"]["Next"] == "StartTuning"
    assert states["StartTuning"]["Next"] == "WaitForTuning"
    assert states["WaitForTuning"]["SecondsPath"] == "$.run.schedule.poll_seconds"
    choice = states["TuningDone?"]
    assert {c["StringEquals"]: c["Next"] for c in choice["Choices"]} == {
        "InProgress": "WaitForTuning",
        "Completed": "ReleaseTraining",
    }
    assert choice["Default"] == "TuningFailed"
    assert states["ChooseBest"]["Next"] == "TestSplit?"
    split = states["TestSplit?"]
    assert split["Choices"] == [{"Variable": "$.run.data.test", "IsNull": False, "Next": "AdmitEvaluation"}]
    assert states["AdmitEvaluation"]["Next"] == "StartEvaluation"
    assert split["Default"] == "NoTestSplit"
    assert states["NoTestSplit"]["Next"] == "RegisterModel"
    assert states["StartEvaluation"]["Next"] == "WaitForEvaluation"
    assert states["WaitForEvaluation"]["SecondsPath"] == "$.run.schedule.evaluation_poll_seconds"
    assert states["CheckEvaluation"]["Next"] == "EvaluationDone?"
    done = states["EvaluationDone?"]
    assert {c["StringEquals"]: c["Next"] for c in done["Choices"]} == {"InProgress": "WaitForEvaluation"}
    assert done["Default"] == "RegisterModel"  # completed or failed: the paid-for tuning is registered
    assert states["RegisterModel"]["Next"] == "ReleaseAndSettle"
    assert states["ReleaseAndSettle"]["Next"] == "ComposeSuccess"


def test_tasks_pass_references_not_describe_responses(definition: dict) -> None:
    # Each task gets only the fields it needs; none forwards the whole state downstream.
    assert definition["States"]["PollTuning"]["Parameters"] == {"run_id.$": "$.run.run_id", "tuning.$": "$.tuning"}
    assert definition["States"]["StartTuning"]["Parameters"] == {"run.$": "$.run", "execution.$": "$$.Execution.Id"}


def test_every_task_passes_each_field_its_handler_parses(definition: dict) -> None:
    # The round trip: a step's task state (several, for Admit and Release) passes every required
    # field of the input class its handler parses, and nothing else; each from where the field's
    # name says (pipeline/step_inputs.py). A field the payload forgot fails here, not at run time.
    from pipeline.contract import STATE
    from stacks.steps import STEPS

    sources = {f"$.{key}" for key in STATE} | {"$.run.run_id", "$.run.cost"}
    sources |= {"$$.Execution.Id", "$$.Execution.StartTime", "$$.Task.Token"}
    seen = set()
    for state_name, state in definition["States"].items():
        if state["Type"] != "Task" or ":function:" not in json.dumps(state):
            continue
        function = json.dumps(state).split(":function:")[1].split('"')[0]
        (step,) = [s for s in STEPS if function.startswith(f"{s.__name__}Function")]
        seen.add(step.__name__)
        if step.inputs is None:  # the whole state input
            assert "Parameters" not in state, state_name
            continue
        payload = state["Parameters"].get("Payload", state["Parameters"])
        passed = {key.removesuffix(".$") for key in payload}
        fields = dataclasses.fields(step.inputs)
        required = {
            f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        assert required <= passed <= {f.name for f in fields}, state_name
        for key, value in payload.items():
            if key.endswith(".$"):
                assert value in sources, (state_name, key, value)
    assert seen == {s.__name__ for s in STEPS} - {"StopOrphans"}  # StopOrphans runs from its rule


def test_a_task_that_cannot_fill_a_required_field_fails_the_synth() -> None:
    from stacks.steps.base import payload_of

    @dataclasses.dataclass(frozen=True)
    class Forgotten:
        run: dict
        nowhere: str

    with pytest.raises(TypeError, match=r"Forgotten\.nowhere: required"):
        payload_of(Forgotten)
    with pytest.raises(TypeError, match="has no field phse"):
        payload_of(Forgotten, nowhere="x", phse="training")
    assert payload_of(Forgotten, nowhere="x") == {"run.$": "$.run", "nowhere": "x"}


def test_alarms_notify_the_topic(template: Template) -> None:
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms.values())
    # The README's list: failed, timed-out, aborted and throttled executions; errors of each of 12
    # functions; a queue wait too long, for each instance type of the capacity (2 in dev).
    assert metrics == sorted(
        ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted", "ExecutionThrottled"]
        + ["Errors"] * 12
        + ["OldestQueuedSeconds"] * 2
    )
    for alarm in alarms.values():
        (action,) = alarm["Properties"]["AlarmActions"]
        assert template.to_json()["Resources"][action["Ref"]]["Type"] == "AWS::SNS::Topic"
    assert len([a for a in alarms.values() if a["Properties"]["MetricName"] == "Errors"]) == 12


def test_alarms_of_this_account_may_publish_to_the_topic_and_use_its_key(template: Template) -> None:
    policies = template.find_resources("AWS::SNS::TopicPolicy")
    (policy,) = policies.values()
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    (alarms,) = [s for s in allows if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert alarms["Action"] == "sns:Publish"
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "aws:SourceArn" in alarms["Condition"]["ArnLike"]
    (key,) = [
        k
        for k in template.find_resources("AWS::KMS::Key").values()
        if "notifications" in k["Properties"]["Description"]
    ]
    (key_use,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(key_use["Action"])


def test_topic_is_encrypted_and_tls_only(template: Template) -> None:
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def test_model_package_group_is_infrastructure_and_untagged(template: Template, synth) -> None:
    groups = template.find_resources("AWS::SageMaker::ModelPackageGroup")
    (group,) = groups.values()
    assert group["Properties"]["ModelPackageGroupName"] == synth.built.config.model_package_group


def test_lambda_configuration_is_passed_in_the_environment(template: Template, synth) -> None:
    env = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "handlers.validate_dataset.handler", "Environment": {"Variables": env}},
    )
    assert json.loads(env.as_object()["TUNING_DEFAULTS"]) == synth.built.config.tuning.to_dict()


def test_every_way_an_execution_ends_triggers_the_cleanup(template: Template) -> None:
    rules = template.find_resources("AWS::Events::Rule", {"Properties": {"EventPattern": {"source": ["aws.states"]}}})
    (rule,) = rules.values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    # Every end state (DescribeExecution's ExecutionStatus, botocore's model, minus RUNNING and
    # PENDING_REDRIVE): a run that succeeded after giving up on its evaluation is cleaned up too.
    statuses = botocore.session.get_session().get_service_model("stepfunctions").shape_for("ExecutionStatus").enum
    assert set(pattern["detail"]["status"]) == set(statuses) - {"RUNNING", "PENDING_REDRIVE"}
    (machine,) = pattern["detail"]["stateMachineArn"]
    assert template.to_json()["Resources"][machine["Ref"]]["Type"] == "AWS::StepFunctions::StateMachine"
    (target,) = rule["Properties"]["Targets"]
    function_id = target["Arn"]["Fn::GetAtt"][0]
    assert template.to_json()["Resources"][function_id]["Properties"]["Handler"] == "handlers.stop_orphans.handler"


def test_dashboard_shows_runs_jobs_in_flight_best_accuracy_and_lambda_errors(template: Template) -> None:
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for text in (
        "ExecutionsFailed",
        "TuningJobsInFlight",
        "TrainingJobsInProgress",
        "BestValidationAccuracy",
        "Errors",
    ):
        assert text in body, text


def test_functions_bundle_powertools_and_need_no_layer(template: Template, synth) -> None:
    """A public layer exists in one account per partition and not in every region; the bundle does."""
    functions = template.find_resources("AWS::Lambda::Function")
    pipeline_functions = [f for f in functions.values() if f["Properties"].get("Handler", "").startswith("handlers.")]
    assert len(pipeline_functions) == 12
    assert all("Layers" not in f["Properties"] for f in pipeline_functions)
    (key,) = {f["Properties"]["Code"]["S3Key"] for f in pipeline_functions}  # one asset: "<hash>.zip"
    bundle = synth.outdir / f"asset.{key.removesuffix('.zip')}"
    assert (bundle / "handlers" / "start_tuning.py").is_file()
    assert (bundle / "pipeline" / "settings" / "tuning_settings.py").is_file()
    pinned = next(
        line.split("==")[1].strip()
        for line in (Path(__file__).parents[1] / "requirements.txt").read_text().splitlines()
        if line.startswith("aws-lambda-powertools==")
    )
    version = (bundle / "aws_lambda_powertools" / "shared" / "version.py").read_text()
    assert f'VERSION = "{pinned}"' in version
    assert (bundle / "typing_extensions.py").is_file()
    assert not list(bundle.rglob("__pycache__"))


def test_every_handler_traces_its_aws_calls_in_lambda(template: Template, synth, tmp_path: Path) -> None:
    """In Lambda (LAMBDA_TASK_ROOT set) the bundle alone turns the Tracer on and patches botocore:
    the X-Ray SDK is bundled, and wrapt without the extension compiled for this machine's Python."""
    functions = template.find_resources("AWS::Lambda::Function")
    handlers = sorted(
        f["Properties"]["Handler"].removesuffix(".handler")
        for f in functions.values()
        if f["Properties"].get("Handler", "").startswith("handlers.")
    )
    (key,) = {f["Properties"]["Code"]["S3Key"] for f in functions.values() if "handlers." in str(f)}
    bundle = synth.outdir / f"asset.{key.removesuffix('.zip')}"
    assert not list(bundle.rglob("*.so")), "a compiled extension would not load in the python3.13 runtime"
    probe = (
        "import importlib, sys\n"
        f"for name in {handlers!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    assert getattr(module.handler, '__wrapped__', None) is not None, name\n"
        "from pipeline.aws.observe import tracer\n"
        "assert tracer.disabled is False\n"
        "import aws_xray_sdk, wrapt\n"
        "assert aws_xray_sdk.__file__.startswith(sys.argv[1]) and wrapt.__file__.startswith(sys.argv[1])\n"
        "from aws_xray_sdk.core import patcher\n"
        "assert 'botocore' in patcher._PATCHED_MODULES, patcher._PATCHED_MODULES\n"
    )
    # Nothing but the bundle and what the Lambda runtime itself provides (boto3 and what it
    # imports): -S keeps this environment's site-packages, where everything else is installed,
    # off the path, so a module missing from the bundle fails the import here as it would there.
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for module in ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "six"):
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None
        origin = Path(spec.origin)
        source = origin.parent if spec.submodule_search_locations else origin
        (runtime / source.name).symlink_to(source)
    env = {"LAMBDA_TASK_ROOT": str(bundle), "AWS_REGION": "us-east-1"}
    path = f"import sys; sys.path[:0] = [sys.argv[1], {str(runtime)!r}]\n"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", path + probe, str(bundle)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_validation_is_sized_for_an_imagenet_size_dataset(template: Template) -> None:
    # bench/results/scale.md: 1.28M images validate in ~35 s with a ~310 MB peak: at most half of each.
    functions = template.find_resources("AWS::Lambda::Function")
    (validate,) = [
        f for f in functions.values() if f["Properties"].get("Handler") == "handlers.validate_dataset.handler"
    ]
    assert validate["Properties"]["Timeout"] >= 2 * 35
    assert validate["Properties"]["MemorySize"] >= 2 * 310
