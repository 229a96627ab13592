"""Security and wiring properties of template.yaml that a reviewer would check
by hand. (cfn-lint, `sam validate --lint` and `sam build` run in .ci/run.)"""

import json
import pathlib
import re

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


NO_VALUE = object()  # AWS::NoValue: the property or list item is left out


class Stack:
    """A template's values as CloudFormation resolves them for one stack: its
    parameters (given, else their defaults, each checked against its
    AllowedPattern and AllowedValues), pseudo parameters, Conditions, and Ref,
    Fn::If, Fn::Sub, Fn::Select, Fn::Split, Fn::Join. A resource's Ref or
    attribute stays a placeholder, <Name> or <Name.Attribute>."""

    def __init__(self, template, region="eu-west-1", account="123456789012", **values):
        params = template["Parameters"]
        assert set(values) <= set(params), set(values) - set(params)
        self.template, self.values = template, {}
        for name, param in params.items():
            if name in values or "Default" in param:
                value = str(values.get(name, param.get("Default")))
                assert re.fullmatch(param.get("AllowedPattern", ".*"), value), (name, value)
                assert value in [str(v) for v in param.get("AllowedValues", [value])], (name, value)
                self.values[name] = value.split(",") if param["Type"] == "CommaDelimitedList" else value
        self.values.update({"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account,
                            "AWS::StackName": "stopper", "AWS::URLSuffix": "amazonaws.com"})

    def condition(self, name):
        return self.eval(self.template["Conditions"][name])

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        assert name.split(".")[0] in self.template["Resources"], name
        return f"<{name}>"

    def eval(self, node):
        if isinstance(node, list):
            return [v for v in map(self.eval, node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(key, arg)] = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                condition, yes, no = arg
                return self.eval(yes if self.condition(condition) else no)
            if key == "Fn::Equals":
                a, b = self.eval(arg)
                return a == b
            if key == "Fn::Not":
                [a] = self.eval(arg)
                return not a
            if key in ("Fn::And", "Fn::Or"):
                return (all if key == "Fn::And" else any)(self.eval(arg))
            if key == "Fn::Select":
                index, items = arg
                return self.eval(items)[int(index)]
            if key == "Fn::Split":
                separator, text = arg
                return self.eval(text).split(separator)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(self.eval(items))
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                variables = {k: self.eval(v) for k, v in variables.items()}
                return re.sub(r"\$\{([A-Za-z0-9:.]+)\}",
                              lambda m: variables[m[1]] if m[1] in variables else self.ref(m[1]), text)
            if key == "Fn::GetAtt":
                return self.ref(".".join(arg))
        return {k: v for k, v in ((k, self.eval(v)) for k, v in node.items()) if v is not NO_VALUE}

    def resource(self, name):
        """The resource's properties resolved, or None when its Condition leaves it out."""
        res = self.template["Resources"][name]
        if "Condition" in res and not self.condition(res["Condition"]):
            return None
        return self.eval(res["Properties"])

    def notifications(self):
        """(NOTIFY_EVENT_BUS, the resource PutEvents is granted on or None,
        {alarm: its AlarmActions or None}) for this stack."""
        env = self.resource("StopperFunction")["Environment"]["Variables"]
        policies = {p["PolicyName"]: p["PolicyDocument"] for p in self.resource("FunctionRole")["Policies"]}
        put = [st["Resource"] for st in policies["notify-event-bus"]["Statement"]] if "notify-event-bus" in policies else None
        alarms = {}
        for name, res in self.template["Resources"].items():
            if res["Type"] == "AWS::CloudWatch::Alarm" and (props := self.resource(name)) is not None:
                alarms[name] = props.get("AlarmActions")
        return env["NOTIFY_EVENT_BUS"], put, alarms


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
    assert props["Environment"]["Variables"] == {
        "DEFAULT_PIPELINE_NAME": {"Ref": "DefaultPipelineName"},
        "ALLOWED_PIPELINES": {"Ref": "AllowedPipelines"},
        "MAX_RUNTIME_TAG": {"Ref": "MaxRuntimeTag"},
        "DEFAULT_MAX_RUNTIME": {"Ref": "DefaultMaxRuntime"},
        "STOPPING_GRACE": {"Ref": "StoppingGrace"},
        "METRICS_NAMESPACE": {"Ref": "MetricsNamespace"},
        "NOTIFY_EVENT_BUS": {"Fn::If": ["BusInNotificationAccount", {"Fn::Sub": CENTRAL_BUS_ARN},
                                        {"Ref": "NotificationEventBusName"}]},
        "NOTIFY_TOPIC_ARN": {"Ref": "NotificationTopicArn"},
        "NOTIFY_TOPIC_FORMAT": {"Ref": "NotificationTopicFormat"},
        "EXECUTION_DESCRIPTION": {"Ref": "ExecutionDescription"},
    }


def test_failed_async_invocations_are_bounded_and_kept(template):
    invoke = template["Resources"]["StopperFunction"]["Properties"]["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == {"Ref": "MaximumRetryAttempts"}
    assert template["Parameters"]["MaximumRetryAttempts"]["MaxValue"] <= 2
    assert invoke["MaximumEventAgeInSeconds"] == {"Ref": "MaximumEventAgeSeconds"}
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    for name in ("Schedule", "GuardSchedule", "AlarmRule"):
        res = template["Resources"][name]
        targets = as_list(res["Properties"].get("Target") or res["Properties"]["Targets"])
        for target in targets:
            assert "RetryPolicy" in target and target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def is_guard_search(name, st):
    """The one grant on "*": Search, which has no resource types, alone in
    the guard's own policy, granted only with the guard."""
    return name == "FunctionRole/guard-discovery" and as_list(st["Action"]) == ["sagemaker:Search"]


def test_no_sagemaker_permission_on_a_wildcard_resource(template):
    sagemaker = [(n, st) for n, st in statements(template)
                 if any(a.startswith("sagemaker:") for a in as_list(st["Action"])) and not is_guard_search(n, st)]
    assert sagemaker, "the function needs SageMaker permissions"
    for name, st in sagemaker:
        assert st["Effect"] == "Allow"
        assert set(as_list(st["Action"])) <= {
            "sagemaker:StopPipelineExecution",
            "sagemaker:DescribePipelineExecution",
            "sagemaker:ListPipelineExecutions",
            "sagemaker:ListPipelineExecutionSteps",
            "sagemaker:ListTags",
            "sagemaker:SendPipelineExecutionStepFailure",
            "sagemaker:UpdatePipelineExecution",
        }, st["Action"]
        for resource in as_list(st["Resource"]):
            text = json.dumps(resource)
            assert resource != "*" and "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:pipeline/${P}" in text, text


def policy_statements_anywhere(node, path="template"):
    """Every policy statement (Effect + Action or NotAction) anywhere in a
    template, in IAM roles, managed policies, resource policies and inline
    Policy properties alike, both branches of every Fn::If included."""
    if isinstance(node, dict):
        if "Effect" in node and ({"Action", "NotAction"} & node.keys()):
            yield path, node
        for key, value in node.items():
            yield from policy_statements_anywhere(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from policy_statements_anywhere(value, f"{path}[{i}]")


def test_no_sagemaker_action_anywhere_is_granted_on_every_resource(template):
    found = 0
    for path, st in policy_statements_anywhere(template["Resources"]):
        assert "NotAction" not in st, path
        actions = as_list(st["Action"])
        if not any(a == "*" or a.startswith("sagemaker:") for a in actions):
            continue
        if actions == ["sagemaker:Search"] and path.startswith("template/FunctionRole/Properties/Policies["):
            continue  # test_the_guard_can_search_and_nothing_more
        found += 1
        assert "Resource" in st and "NotResource" not in st, path
        for resource in as_list(st["Resource"]):
            assert resource != "*", (path, actions)
            text = json.dumps(resource)
            # Only ARNs of this account's and region's pipelines, never sagemaker:*:*:... or the like.
            assert text.count("*") == text.count("/execution/*"), (path, text)
    assert found >= 3, "the stop statement, the Force statement and the execution description statement"


# The write actions granted only on the allowed pipelines' executions, each in
# a policy of its own under a condition: (condition, policy, action).
EXECUTION_WRITES = [
    ("ForceOn", "force-callback-steps", "sagemaker:SendPipelineExecutionStepFailure"),
    ("ExecutionDescriptionOn", "execution-description", "sagemaker:UpdatePipelineExecution"),
]


@pytest.mark.parametrize("condition, policy_name, action", EXECUTION_WRITES)
def test_force_and_the_description_are_scoped_to_the_allowed_pipelines_executions(template, condition, policy_name, action):
    """Force's SendPipelineExecutionStepFailure, and UpdatePipelineExecution
    (the line appended to a stopped execution's description): the
    pipeline-execution resource type, never a pipeline itself."""
    policies = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    [force] = [p["Fn::If"][1] for p in policies if isinstance(p, dict) and "Fn::If" in p and p["Fn::If"][0] == condition]
    assert force["PolicyName"] == policy_name
    [st] = force["PolicyDocument"]["Statement"]
    assert st["Effect"] == "Allow" and as_list(st["Action"]) == [action]
    # No other statement grants it (on the pipelines, say).
    assert [n for n, s in statements(template) if action in as_list(s["Action"])] == [f"FunctionRole/{policy_name}"]
    resources = as_list(st["Resource"])
    assert "*" not in resources
    # The pipeline-execution resource type: pipeline/<p>/execution/* for each
    # allowed pipeline, built exactly as the stop statement builds its own.
    execution_arn = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:pipeline/${P}/execution/*"
    split = {"Fn::Split": [",", {"Fn::Sub": "${AllowedPipelines},,,,"}]}
    expected = [{"Fn::Sub": [execution_arn, {"P": {"Fn::Select": [0, split]}}]}] + [
        {"Fn::If": [f"Pipeline{i + 1}", {"Fn::Sub": [execution_arn, {"P": {"Fn::Select": [i, split]}}]}, {"Ref": "AWS::NoValue"}]}
        for i in range(1, 5)
    ]
    assert resources == expected
    [stop] = [s for n, s in statements(template) if "sagemaker:StopPipelineExecution" in as_list(s["Action"])]
    assert resources == [r for r in stop["Resource"] if "/execution/*" in json.dumps(r)]


def test_no_statement_allows_everything(template):
    for name, st in statements(template):
        assert "*" not in as_list(st["Action"]), name
        if not is_guard_search(name, st):
            assert "*" not in as_list(st["Resource"]), (name, st["Action"])


def test_the_guard_can_search_and_nothing_more(template):
    """sagemaker:Search is the only action on "*", in a policy of its own that
    exists only with EnableGuard, and the guard's schedule sends exactly the
    guard request."""
    policies = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    [guard] = [p for p in policies if isinstance(p, dict) and "Fn::If" in p and p["Fn::If"][0] == "GuardOn"]
    condition, granted, otherwise = guard["Fn::If"]
    assert granted["PolicyName"] == "guard-discovery" and otherwise == {"Ref": "AWS::NoValue"}
    assert granted["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "sagemaker:Search", "Resource": "*"}]
    wildcard = [(n, st) for n, st in statements(template) if "*" in as_list(st["Resource"])]
    assert [n for n, _ in wildcard] == ["FunctionRole/guard-discovery"]
    schedule = template["Resources"]["GuardSchedule"]
    assert schedule["Condition"] == "GuardOn"
    assert json.loads(schedule["Properties"]["Target"]["Input"]) == {"Guard": True}
    assert template["Parameters"]["EnableGuard"]["Default"] == "true"
    assert template["Parameters"]["DefaultMaxRuntime"]["Default"] == "", "untagged pipelines are opt-in"
    assert template["Resources"]["SchedulerRole"]["Condition"] == "SchedulerOn"


@pytest.mark.parametrize("condition, policy_name, parameter, on", [
    ("ForceOn", "force-callback-steps", "AllowForce", "true"),
    ("ExecutionDescriptionOn", "execution-description", "ExecutionDescription", "append"),
])
def test_force_and_the_description_are_granted_only_when_on(template, condition, policy_name, parameter, on):
    policies = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    [force] = [p for p in policies if isinstance(p, dict) and "Fn::If" in p and p["Fn::If"][0] == condition]
    got_condition, granted, otherwise = force["Fn::If"]
    assert got_condition == condition and granted["PolicyName"] == policy_name
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": parameter}, on]}
    assert template["Parameters"][parameter]["Default"] == on  # on by default


def test_the_execution_description_parameter(template):
    """append (the default) or off, given to the function as
    EXECUTION_DESCRIPTION, shown with the stop notifications."""
    param = template["Parameters"]["ExecutionDescription"]
    # Strings, both: an unquoted off is YAML 1.1's false.
    assert (param["Type"], param["Default"], param["AllowedValues"]) == ("String", "append", ["append", "off"])
    assert "UpdatePipelineExecution" in param["Description"]
    env = template["Resources"]["StopperFunction"]["Properties"]["Environment"]["Variables"]
    assert env["EXECUTION_DESCRIPTION"] == {"Ref": "ExecutionDescription"}
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    [operations] = [g for g in groups if g["Label"]["default"].startswith("Operations")]
    assert "ExecutionDescription" in operations["Parameters"]


def granted(stack, action):
    """{policy name: the resources action is granted on} in this stack's FunctionRole."""
    found = {}
    for policy in stack.resource("FunctionRole")["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            if action in as_list(st["Action"]):
                found.setdefault(policy["PolicyName"], []).extend(as_list(st["Resource"]))
    return found


@pytest.mark.parametrize("pipelines", ["*", "nightly-training", "nightly-training,exp-*,a,b,c"])
def test_the_execution_description_is_written_only_on_the_allowed_pipelines_executions(template, pipelines):
    stack = Stack(template, account=OWN, AllowedPipelines=pipelines)
    assert stack.resource("StopperFunction")["Environment"]["Variables"]["EXECUTION_DESCRIPTION"] == "append"
    assert granted(stack, "sagemaker:UpdatePipelineExecution") == {"execution-description": [
        f"arn:aws:sagemaker:eu-west-1:{OWN}:pipeline/{p}/execution/*" for p in pipelines.split(",")]}
    # With off, nowhere: the function is told not to write, and may not.
    stack = Stack(template, account=OWN, AllowedPipelines=pipelines, ExecutionDescription="off")
    assert stack.resource("StopperFunction")["Environment"]["Variables"]["EXECUTION_DESCRIPTION"] == "off"
    assert granted(stack, "sagemaker:UpdatePipelineExecution") == {}
    assert "sagemaker:UpdatePipelineExecution" not in json.dumps(stack.resource("FunctionRole"))
    # Force is a separate switch.
    assert list(granted(stack, "sagemaker:SendPipelineExecutionStepFailure")) == ["force-callback-steps"]


def test_the_http_route_is_never_open(template):
    route = template["Resources"]["HttpApiStopRoute"]["Properties"]
    assert route["RouteKey"] == "POST /stop"
    auth = route["AuthorizationType"]
    assert auth == {"Fn::If": ["JwtOn", "JWT", "AWS_IAM"]}
    assert template["Parameters"]["HttpAuth"]["Default"] == "AWS_IAM"
    assert "NONE" not in template["Parameters"]["HttpAuth"]["AllowedValues"]
    assert template["Resources"]["FunctionUrl"]["Properties"]["AuthType"] == "AWS_IAM"


# The HTTP API access log variables API Gateway documents ("Customize HTTP API
# access logs"); anything else fails the deployment.
HTTP_API_LOG_VARIABLES = {
    "accountId", "apiId", "authorizer.error", "authorizer.principalId", "awsEndpointRequestId",
    "awsEndpointRequestId2", "customDomain.basePathMatched", "dataProcessed", "domainName", "domainPrefix",
    "error.message", "error.messageString", "error.responseType", "extendedRequestId", "httpMethod",
    "identity.accountId", "identity.caller", "identity.cognitoAuthenticationProvider",
    "identity.cognitoAuthenticationType", "identity.cognitoIdentityId", "identity.cognitoIdentityPoolId",
    "identity.principalOrgId", "identity.sourceIp", "identity.user", "identity.userAgent", "identity.userArn",
    "integration.error", "integration.integrationStatus", "integration.latency", "integration.requestId",
    "integration.status", "integrationErrorMessage", "integrationLatency", "integrationStatus", "path",
    "protocol", "requestId", "requestTime", "requestTimeEpoch", "responseLatency", "responseLength",
    "routeKey", "stage", "status",
}


def test_the_http_api_logs_every_request_with_the_callers_identity(template):
    res = template["Resources"]
    stage = res["HttpApiStage"]
    assert stage["Condition"] == "HttpApiOn"
    settings = stage["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    group = res["HttpApiAccessLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup" and group["Condition"] == "HttpApiOn"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert template["Outputs"]["HttpAccessLogGroupName"]["Condition"] == "HttpApiOn"

    fmt = settings["Format"]
    fields = json.loads(fmt)  # every variable is quoted, so each line is JSON
    used = set(re.findall(r"\$context\.([A-Za-z0-9_.]+)", fmt))
    for variable in used:
        assert variable in HTTP_API_LOG_VARIABLES or re.fullmatch(r"authorizer\.claims\.\w+", variable), variable
    values = set(fields.values())
    for variable in [
        "requestId", "identity.sourceIp", "requestTime", "httpMethod", "routeKey", "status", "responseLength",
        "integrationErrorMessage",
        "identity.caller", "identity.userArn", "identity.accountId",  # AWS_IAM: who signed
        "authorizer.claims.sub",  # JWT: whose token
    ]:
        assert f"$context.{variable}" in values, variable


def test_reserved_concurrency_is_a_parameter_that_maps_onto_the_function(template):
    param = template["Parameters"]["ReservedConcurrency"]
    assert param["Type"] == "String" and param["Default"] == ""
    pattern = param["AllowedPattern"]
    for ok in ["", "1", "10", "100"]:
        assert re.fullmatch(pattern, ok), ok
    for bad in ["0", "-1", "01", "ten", " 5"]:  # 0 would throttle every invocation
        assert not re.fullmatch(pattern, bad), bad
    assert template["Conditions"]["ReservedConcurrencyOn"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, ""]}]
    }
    props = template["Resources"]["StopperFunction"]["Properties"]
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReservedConcurrencyOn", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }


def test_checkov_suppressions_are_the_reviewed_ones_each_with_a_reason(template):
    skipped = {}
    for name, res in template["Resources"].items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 40, (name, skip)
            skipped.setdefault(name, set()).add(skip["id"])
    # Adding one is a decision: say why in the template and here.
    assert skipped == {
        "StopperFunction": {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"},
        "FunctionLogGroup": {"CKV_AWS_158"},
        "HttpApiAccessLogGroup": {"CKV_AWS_158"},
        "DeadLetterQueue": {"CKV_AWS_27"},
        "AlarmTopicPermission": {"CKV_AWS_364"},
    }
    # What CKV_AWS_27 cannot see: the queue is encrypted.
    assert template["Resources"]["DeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True


def test_the_alarm_rule_matches_only_alarm_state_of_the_named_alarms(template):
    pattern = template["Resources"]["AlarmRule"]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"]["state"]["value"] == ["ALARM"]
    assert pattern["detail"]["alarmName"] == {"Ref": "AlarmNames"}


def test_every_trigger_can_be_switched_off(template):
    for name, condition in [
        ("Schedule", "ScheduleOn"),
        ("GuardSchedule", "GuardOn"),
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


# -- operations: metrics, notifications, the dashboard --------------------------

def emitted_metrics():
    """The metric names the function emits (crates/stopper-core/src/metrics.rs)."""
    source = (ROOT / "crates/stopper-core/src/metrics.rs").read_text()
    body = source.split("pub fn metrics(&self)", 1)[1].split("\n    }\n", 1)[0]
    names = re.findall(r'\("([A-Za-z]+)", ', body)
    assert len(names) == 13, names
    return set(names)


def dashboard_body(template):
    sub = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    text, variables = sub
    assert set(variables) == {"Queue"}
    filled = re.sub(r"\$\{([A-Za-z:]+)\}", lambda m: f"<{m.group(1)}>", text)
    return json.loads(filled)


def test_the_dashboard_shows_the_function_the_stops_and_the_dead_letter_queue(template):
    dashboard = template["Resources"]["Dashboard"]
    assert dashboard["Condition"] == "DashboardOn"
    assert template["Parameters"]["CreateDashboard"]["Default"] == "false"
    widgets = dashboard_body(template)["widgets"]
    plotted, expressions = set(), []
    for w in widgets:
        for metric in w["properties"]["metrics"]:
            if isinstance(metric[0], dict):
                expressions.append(metric[0]["expression"])
                continue
            namespace, name = metric[0], metric[1]
            plotted.add((namespace, name))
            dims = [m for m in metric[2:] if not isinstance(m, dict)]
            assert dims in (["FunctionName", "<StopperFunction>"], ["QueueName", "<Queue>"]), metric
    assert {("AWS/Lambda", "Invocations"), ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Duration"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible")} <= plotted
    ours = {name for namespace, name in plotted if namespace == "<MetricsNamespace>"}
    assert ours == emitted_metrics(), "every metric the function emits is on the dashboard, and only those"
    assert len(expressions) == 2 and all("{<MetricsNamespace>,FunctionName,Trigger}" in e for e in expressions)
    assert {re.search(r'MetricName="(\w+)"', e).group(1) for e in expressions} == {"StopsRequested", "StopsFailed"}


def test_failed_stops_and_failed_notifications_raise_alarms(template):
    conditions = template["Conditions"]
    for name, metric, condition in (("StopsFailedAlarm", "StopsFailed", "MetricAlarmsOn"),
                                    ("StuckStoppingAlarm", "ExecutionsStuckStopping", "MetricAlarmsOn"),
                                    ("NotificationsFailedAlarm", "NotificationsFailed", "NotificationAlarmOn")):
        alarm = template["Resources"][name]
        assert alarm["Condition"] == condition
        props = alarm["Properties"]
        assert props["Namespace"] == {"Ref": "MetricsNamespace"} and props["MetricName"] == metric
        assert metric in emitted_metrics()
        assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "StopperFunction"}}]
        assert (props["Statistic"], props["Threshold"], props["ComparisonOperator"]) == (
            "Sum", 1, "GreaterThanOrEqualToThreshold")
        assert props["TreatMissingData"] == "notBreaching"
        assert props["AlarmActions"] == template["Resources"]["FunctionErrorsAlarm"]["Properties"]["AlarmActions"]
    assert conditions["MetricAlarmsOn"] == {"Fn::And": [{"Condition": "AlarmsOn"}, {"Condition": "MetricsOn"}]}


def test_notifications_are_granted_for_the_configured_bus_and_topic_only(template):
    notification = (ROOT / "crates/stopper-core/src/notification.rs").read_text()
    source = re.search(r'pub const SOURCE: &str = "([^"]+)"', notification).group(1)
    detail_type = re.search(r'pub const DETAIL_TYPE: &str = "([^"]+)"', notification).group(1)
    granted = {name.split("/")[1]: st for name, st in statements(template)}
    bus = granted["notify-event-bus"]
    assert bus["Action"] == "events:PutEvents"
    assert bus["Condition"] == {"StringEquals": {"events:source": source, "events:detail-type": detail_type}}
    assert "*" not in json.dumps(bus["Resource"])
    topic = granted["notify-topic"]
    assert (topic["Action"], topic["Resource"]) == ("sns:Publish", {"Ref": "NotificationTopicArn"})
    role = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    conditional = {p["Fn::If"][1]["PolicyName"]: p["Fn::If"][0] for p in role if "Fn::If" in p}
    assert conditional["notify-event-bus"] == "BusOn" and conditional["notify-topic"] == "TopicOn"
    assert bus["Resource"] == {"Fn::If": ["BusIsArn", {"Ref": "NotificationEventBusName"}, {"Fn::If": [
        "BusInNotificationAccount", {"Fn::Sub": CENTRAL_BUS_ARN},
        {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${NotificationEventBusName}"}]}]}
    env = template["Resources"]["StopperFunction"]["Properties"]["Environment"]["Variables"]
    assert env["NOTIFY_EVENT_BUS"]["Fn::If"][1] == {"Fn::Sub": CENTRAL_BUS_ARN}  # the bus granted is the bus used
    assert env["NOTIFY_TOPIC_ARN"] == {"Ref": "NotificationTopicArn"}
    assert env["METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    config = (ROOT / "crates/stopper-core/src/config.rs").read_text()
    for variable in ("NOTIFY_EVENT_BUS", "NOTIFY_TOPIC_ARN", "NOTIFY_TOPIC_FORMAT", "METRICS_NAMESPACE",
                     "EXECUTION_DESCRIPTION"):
        assert f'set("{variable}")' in config, variable
    for value in template["Parameters"]["ExecutionDescription"]["AllowedValues"]:
        assert f'value.eq_ignore_ascii_case("{value}")' in config, value
    # The formats the template offers are the ones the function reads.
    assert template["Parameters"]["NotificationTopicFormat"]["AllowedValues"] == ["json", "chat"]
    assert template["Parameters"]["NotificationTopicFormat"]["Default"] == "json"
    for value in ("json", "chat"):
        assert f'format.eq_ignore_ascii_case("{value}")' in config, value
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    [operations] = [g for g in groups if g["Label"]["default"].startswith("Operations")]
    assert "NotificationTopicFormat" in operations["Parameters"]


@pytest.mark.parametrize("value,ok", [
    ("", True), ("default", True), ("ops/stops", True),
    ("arn:aws:events:us-east-1:123456789012:event-bus/ops", True),
    ("two words", False), ("arn:aws:events:us-east-1:123:event-bus/x", False)])
def test_the_event_bus_parameter_takes_a_name_or_an_arn(template, value, ok):
    pattern = template["Parameters"]["NotificationEventBusName"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) == ok


@pytest.mark.parametrize("value,ok", [
    ("SageMakerPipelineStopper", True), ("off", True), ("Team/Stopper", True),
    ("AWS/Lambda", False), ("", False), ("x" * 256, False)])
def test_the_namespace_parameter_refuses_what_the_function_would(template, value, ok):
    pattern = template["Parameters"]["MetricsNamespace"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) == ok


# -- NotificationAccountId: one set of parameters for every region ---------------

CENTRAL_BUS_ARN = "arn:${AWS::Partition}:events:${AWS::Region}:${NotificationAccountId}:event-bus/${NotificationEventBusName}"
CENTRAL_TOPIC_ARN = "arn:${AWS::Partition}:sns:${AWS::Region}:${NotificationAccountId}:${AlarmNotificationTopicArn}"
OWN, CENTRAL = "123456789012", "210987654321"


def test_the_notification_account_parameter(template):
    param = template["Parameters"]["NotificationAccountId"]
    assert (param["Type"], param["Default"]) == ("String", "")
    for value, ok in [("", True), (CENTRAL, True), ("21098765432", False), ("2109876543210", False), ("ops", False)]:
        assert bool(re.fullmatch(param["AllowedPattern"], value)) == ok, value
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    [operations] = [g for g in groups if g["Label"]["default"].startswith("Operations")]
    assert "NotificationAccountId" in operations["Parameters"]
    # A name the central bus or alarm topic may have is a value both parameters take.
    assert re.fullmatch(template["Parameters"]["NotificationEventBusName"]["AllowedPattern"], "sagemaker-pipeline-stopper")
    assert "AllowedPattern" not in template["Parameters"]["AlarmNotificationTopicArn"]  # any name or ARN, as before


@pytest.mark.parametrize("values, bus, put, actions", [
    # Without NotificationAccountId, as before: a name is this account's bus, an ARN is used as given.
    ({}, "", None, None),
    ({"NotificationEventBusName": "default", "AlarmNotificationTopicArn": f"arn:aws:sns:eu-west-1:{OWN}:ops"},
     "default", [f"arn:aws:events:eu-west-1:{OWN}:event-bus/default"], [f"arn:aws:sns:eu-west-1:{OWN}:ops"]),
    ({"NotificationEventBusName": f"arn:aws:events:eu-west-1:{CENTRAL}:event-bus/ops"},
     f"arn:aws:events:eu-west-1:{CENTRAL}:event-bus/ops", [f"arn:aws:events:eu-west-1:{CENTRAL}:event-bus/ops"], None),
    # With it, names are that account's bus and topic in this stack's region.
    ({"NotificationAccountId": CENTRAL, "NotificationEventBusName": "ops", "AlarmNotificationTopicArn": "ops-alarms"},
     f"arn:aws:events:eu-west-1:{CENTRAL}:event-bus/ops", [f"arn:aws:events:eu-west-1:{CENTRAL}:event-bus/ops"],
     [f"arn:aws:sns:eu-west-1:{CENTRAL}:ops-alarms"]),
    ({"NotificationAccountId": CENTRAL, "NotificationEventBusName": "ops"},
     f"arn:aws:events:eu-west-1:{CENTRAL}:event-bus/ops", [f"arn:aws:events:eu-west-1:{CENTRAL}:event-bus/ops"], None),
    ({"NotificationAccountId": CENTRAL, "AlarmNotificationTopicArn": "ops-alarms"},
     "", None, [f"arn:aws:sns:eu-west-1:{CENTRAL}:ops-alarms"]),
    ({"NotificationAccountId": CENTRAL}, "", None, None),
    # ARNs are used as given, NotificationAccountId or not.
    ({"NotificationAccountId": CENTRAL, "NotificationEventBusName": f"arn:aws:events:us-east-1:{OWN}:event-bus/x",
      "AlarmNotificationTopicArn": f"arn:aws:sns:us-east-1:{OWN}:y"},
     f"arn:aws:events:us-east-1:{OWN}:event-bus/x", [f"arn:aws:events:us-east-1:{OWN}:event-bus/x"],
     [f"arn:aws:sns:us-east-1:{OWN}:y"]),
])
def test_the_bus_and_alarm_topic_each_stack_uses(template, values, bus, put, actions):
    got_bus, got_put, alarms = Stack(template, account=OWN, **values).notifications()
    assert (got_bus, got_put) == (bus, put)
    assert set(alarms) >= {"FunctionErrorsAlarm", "DeadLetterQueueAlarm", "StopsFailedAlarm", "StuckStoppingAlarm"}
    assert ("NotificationsFailedAlarm" in alarms) == bool(bus)
    for name, got in alarms.items():
        assert got == actions, name
    # What the function is given, it takes (NOTIFY_EVENT_BUS: crates/stopper-core/src/config.rs is_event_bus,
    # which this pattern mirrors: a name or an ARN with a 12-digit account).
    assert re.fullmatch(template["Parameters"]["NotificationEventBusName"]["AllowedPattern"], got_bus)


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1", "ap-southeast-2"])
def test_the_same_parameters_name_the_bus_and_topic_of_each_region(template, region):
    stack = Stack(template, region=region, account=OWN, NotificationAccountId=CENTRAL,
                  NotificationEventBusName="sagemaker-pipeline-stopper",
                  AlarmNotificationTopicArn="sagemaker-pipeline-stopper-alarms")
    bus, put, alarms = stack.notifications()
    assert bus == f"arn:aws:events:{region}:{CENTRAL}:event-bus/sagemaker-pipeline-stopper" and put == [bus]
    assert set(map(tuple, alarms.values())) == {(f"arn:aws:sns:{region}:{CENTRAL}:sagemaker-pipeline-stopper-alarms",)}
    assert not Stack(template, region=region, NotificationAccountId=CENTRAL, AlarmNotificationTopicArn="a",
                     CreateAlarms="false").notifications()[2]


def parameter_uses(node, name, path="", held_by=None):
    """(path, the Fn::If whose branch it is, or None) of every Ref to a
    parameter and every Fn::Sub naming it."""
    if isinstance(node, dict):
        if node == {"Ref": name} or "${%s}" % name in json.dumps(node.get("Fn::Sub", "")):
            yield path, held_by
            return
        for key, value in node.items():
            if key == "Fn::If":
                for i, branch in enumerate(value[1:], 1):
                    yield from parameter_uses(branch, name, f"{path}/Fn::If[{i}]", value)
            else:
                yield from parameter_uses(value, name, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from parameter_uses(value, name, f"{path}[{i}]")


def test_every_use_of_the_bus_and_alarm_topic_completes_a_name_with_the_notification_account(template):
    """Outside Conditions, each value is used only as the branches of an
    Fn::If on whether a name is to be completed with NotificationAccountId
    (and, for the bus, this account's ARN for the grant)."""
    res = template["Resources"]
    for name, condition in [("NotificationEventBusName", "BusInNotificationAccount"),
                            ("AlarmNotificationTopicArn", "AlarmTopicInNotificationAccount")]:
        uses = list(parameter_uses({"Resources": res, "Outputs": template["Outputs"]}, name))
        assert uses
        for path, held_by in uses:
            if held_by is not None and held_by[0] == "BusIsArn":
                assert held_by[1] == {"Ref": name}, path  # an ARN, as given
                continue
            assert held_by is not None and held_by[0] == condition, path
            assert held_by[1] == {"Fn::Sub": CENTRAL_BUS_ARN if name == "NotificationEventBusName" else CENTRAL_TOPIC_ARN}
    alarms = [r for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == {"Fn::If": ["NotifyOn", [{"Fn::If": [
            "AlarmTopicInNotificationAccount", {"Fn::Sub": CENTRAL_TOPIC_ARN}, {"Ref": "AlarmNotificationTopicArn"}]}],
            {"Ref": "AWS::NoValue"}]}
