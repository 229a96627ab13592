"""Security and wiring properties of template.yaml that a reviewer would check
by hand. (cfn-lint, `sam validate --lint` and `sam build` run in .ci/run.)"""

import json
import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as {"Fn::X": ...}."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else ("Condition" if suffix == "Condition" else f"Fn::{suffix}")
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template():
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)


def resources(template, kind):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def statements(template):
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            for policy in res["Properties"].get("Policies", []):
                if "Fn::If" in policy:  # a policy granted under a condition
                    policy = policy["Fn::If"][1]
                for st in policy["PolicyDocument"]["Statement"]:
                    yield f"{name}/{policy['PolicyName']}", st


def as_list(x):
    return x if isinstance(x, list) else [x]


def test_the_function_is_a_rust_cargo_lambda_build_on_al2023(template):
    fn = template["Resources"]["StopperFunction"]
    assert fn["Type"] == "AWS::Serverless::Function"
    assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda"
    assert fn["Metadata"]["BuildProperties"]["Binary"] == "sagemaker-pipeline-stopper"
    props = fn["Properties"]
    assert props["Runtime"] == "provided.al2023" and props["Handler"] == "bootstrap"
    assert props["Architectures"] == [{"Ref": "Architecture"}]
    assert template["Parameters"]["Architecture"]["Default"] == "arm64"
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}
    assert props["Environment"]["Variables"].keys() == {"DEFAULT_PIPELINE_NAME", "ALLOWED_PIPELINES"}


def test_failed_async_invocations_are_bounded_and_kept(template):
    invoke = template["Resources"]["StopperFunction"]["Properties"]["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == {"Ref": "MaximumRetryAttempts"}
    assert template["Parameters"]["MaximumRetryAttempts"]["MaxValue"] <= 2
    assert invoke["MaximumEventAgeInSeconds"] == {"Ref": "MaximumEventAgeSeconds"}
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    for name in ("Schedule", "AlarmRule"):
        res = template["Resources"][name]
        targets = as_list(res["Properties"].get("Target") or res["Properties"]["Targets"])
        for target in targets:
            assert "RetryPolicy" in target and target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_no_sagemaker_permission_on_a_wildcard_resource(template):
    sagemaker = [(n, st) for n, st in statements(template) if any(a.startswith("sagemaker:") for a in as_list(st["Action"]))
                 and n != "FunctionRole/force-callback-steps"]
    assert sagemaker, "the function needs SageMaker permissions"
    for name, st in sagemaker:
        assert st["Effect"] == "Allow"
        assert set(as_list(st["Action"])) <= {
            "sagemaker:StopPipelineExecution",
            "sagemaker:DescribePipelineExecution",
            "sagemaker:ListPipelineExecutions",
            "sagemaker:ListPipelineExecutionSteps",
        }, st["Action"]
        for resource in as_list(st["Resource"]):
            text = json.dumps(resource)
            assert resource != "*" and "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:pipeline/${P}" in text, text


def test_no_statement_allows_everything(template):
    for name, st in statements(template):
        assert "*" not in as_list(st["Action"]), name
        if name == "FunctionRole/force-callback-steps":
            # Callback tokens, not ARNs, identify the step; see the template.
            assert as_list(st["Action"]) == ["sagemaker:SendPipelineExecutionStepFailure"]
            continue
        assert "*" not in as_list(st["Resource"]), (name, st["Action"])


def test_force_permission_is_granted_only_when_allowed(template):
    policies = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    [force] = [p for p in policies if isinstance(p, dict) and "Fn::If" in p]
    condition, granted, otherwise = force["Fn::If"]
    assert condition == "ForceOn" and granted["PolicyName"] == "force-callback-steps"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert template["Conditions"]["ForceOn"] == {"Fn::Equals": [{"Ref": "AllowForce"}, "true"]}


def test_the_http_route_is_never_open(template):
    route = template["Resources"]["HttpApiStopRoute"]["Properties"]
    assert route["RouteKey"] == "POST /stop"
    auth = route["AuthorizationType"]
    assert auth == {"Fn::If": ["JwtOn", "JWT", "AWS_IAM"]}
    assert template["Parameters"]["HttpAuth"]["Default"] == "AWS_IAM"
    assert "NONE" not in template["Parameters"]["HttpAuth"]["AllowedValues"]
    assert template["Resources"]["FunctionUrl"]["Properties"]["AuthType"] == "AWS_IAM"


def test_the_alarm_rule_matches_only_alarm_state_of_the_named_alarms(template):
    pattern = template["Resources"]["AlarmRule"]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"]["state"]["value"] == ["ALARM"]
    assert pattern["detail"]["alarmName"] == {"Ref": "AlarmNames"}


def test_every_trigger_can_be_switched_off(template):
    for name, condition in [
        ("Schedule", "ScheduleOn"),
        ("AlarmRule", "AlarmRuleOn"),
        ("AlarmTopicSubscription", "AlarmTopicOn"),
        ("HttpApi", "HttpApiOn"),
        ("HttpApiStopRoute", "HttpApiOn"),
        ("FunctionUrl", "FunctionUrlOn"),
    ]:
        assert template["Resources"][name]["Condition"] == condition, name


def test_invoke_permissions_are_scoped_to_their_source(template):
    for name, perm in resources(template, "AWS::Lambda::Permission").items():
        props = perm["Properties"]
        assert props["Action"] == "lambda:InvokeFunction"
        assert "SourceArn" in props, name


def test_outputs_name_what_operators_need(template):
    assert {"FunctionArn", "HttpEndpoint", "DeadLetterQueueUrl", "FunctionUrl"} <= template["Outputs"].keys()
