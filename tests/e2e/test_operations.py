"""Operating it: the EMF record each event leaves in the log (checked against
the Embedded Metric Format specification), and the stop notifications put on
an EventBridge bus and published to an SNS topic (received by the emulator).
The real binary under the local Runtime API, as everywhere in tests/e2e."""

import base64
import gzip
import json
import os
import subprocess
import zipfile

import lambda_runtime
import pytest

from conftest import A, B, DONE, OTHER, PIPELINE, assert_stopped_once, binary, load_event, standard_seed
from test_guard import conforms, guard_seed, stopped_arns

BUS = "ops-stops"
TOPIC = "arn:aws:sns:us-east-1:123456789012:pipeline-stops"
USER = "arn:aws:sts::123456789012:assumed-role/mlops-dashboard/mlops-dashboard"

# -- the Embedded Metric Format specification --------------------------------
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
}


def emf_problems(doc):
    """What makes `doc` not an EMF document, by the specification's rules:
    the root's `_aws` metadata (Timestamp, CloudWatchMetrics), each metric
    directive (Namespace, Dimensions, Metrics; no other members), each
    dimension set (at most 30 keys, each a root member whose value is a
    string), each metric definition (Name, optional Unit from the list,
    StorageResolution 1 or 60; at most 100) and its value (a number, or an
    array of at most 100 numbers, in a root member of that name)."""
    problems = []
    aws = doc.get("_aws")
    if not isinstance(aws, dict):
        return ["_aws: a metadata object is required"]
    if not isinstance(aws.get("Timestamp"), int) or isinstance(aws.get("Timestamp"), bool) or aws["Timestamp"] <= 0:
        problems.append("_aws.Timestamp: milliseconds since the epoch, an integer, is required")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return problems + ["_aws.CloudWatchMetrics: an array of metric directives is required"]
    for i, d in enumerate(directives):
        where = f"_aws.CloudWatchMetrics[{i}]"
        if not isinstance(d, dict):
            problems.append(f"{where}: must be an object")
            continue
        extra = set(d) - {"Namespace", "Dimensions", "Metrics"}
        if extra:
            problems.append(f"{where}: members not in the specification: {sorted(extra)}")
        ns = d.get("Namespace")
        if not isinstance(ns, str) or not 1 <= len(ns) <= 255:
            problems.append(f"{where}.Namespace: a string of 1 to 255 characters is required")
        dims = d.get("Dimensions")
        if not isinstance(dims, list):
            problems.append(f"{where}.Dimensions: an array of dimension sets is required")
            dims = []
        for j, dim_set in enumerate(dims):
            if not isinstance(dim_set, list) or len(dim_set) > 30:
                problems.append(f"{where}.Dimensions[{j}]: an array of at most 30 keys")
                continue
            for key in dim_set:
                if not isinstance(key, str) or not isinstance(doc.get(key), str) or not 1 <= len(doc[key]) <= 1024:
                    problems.append(f"{where}.Dimensions[{j}]: {key!r} has no string value of 1 to 1024 characters")
        metrics = d.get("Metrics")
        if not isinstance(metrics, list) or len(metrics) > 100:
            problems.append(f"{where}.Metrics: an array of at most 100 metric definitions is required")
            metrics = []
        names = [m.get("Name") for m in metrics if isinstance(m, dict)]
        if len(names) != len(set(names)):
            problems.append(f"{where}.Metrics: a metric is defined twice")
        for m in metrics:
            if not isinstance(m, dict) or set(m) - {"Name", "Unit", "StorageResolution"}:
                problems.append(f"{where}.Metrics: {m!r} is not a metric definition")
                continue
            name = m.get("Name")
            if not isinstance(name, str) or not 1 <= len(name) <= 1024:
                problems.append(f"{where}.Metrics: Name {name!r}: a string of 1 to 1024 characters is required")
                continue
            if "Unit" in m and m["Unit"] not in UNITS:
                problems.append(f"{where}.Metrics.{name}: unit {m['Unit']!r} is not a CloudWatch unit")
            if "StorageResolution" in m and m["StorageResolution"] not in (1, 60):
                problems.append(f"{where}.Metrics.{name}: StorageResolution must be 1 or 60")
            value = doc.get(name)
            values = value if isinstance(value, list) else [value]
            if len(values) > 100 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                problems.append(f"{name}: the value must be a number or an array of at most 100 numbers")
    return problems


def test_the_validator_catches_what_the_specification_forbids():
    good = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [
        {"Namespace": "N", "Dimensions": [["FunctionName"]], "Metrics": [{"Name": "Events", "Unit": "Count"}]}]},
        "FunctionName": "f", "Events": 1}
    assert emf_problems(good) == []
    for broken in (
        {k: v for k, v in good.items() if k != "_aws"},
        {**good, "_aws": {"CloudWatchMetrics": good["_aws"]["CloudWatchMetrics"]}},
        {**good, "FunctionName": 7},
        {**good, "Events": "1"},
        {**good, "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{**good["_aws"]["CloudWatchMetrics"][0], "Unit": "x"}]}},
        {**good, "_aws": {"Timestamp": 1, "CloudWatchMetrics": [
            {"Namespace": "N", "Dimensions": [["FunctionName"]], "Metrics": [{"Name": "Events", "Unit": "Things"}]}]}},
    ):
        assert emf_problems(broken), broken


def emf_records(fn):
    """The EMF records in a function process's log: JSON lines with `_aws`.
    The process is stopped first and its output read to the end: the record
    is written just before the reply, and a thread drains the pipe."""
    records = []
    for line in fn.process.final_logs():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            records.append(doc)
    return records


def metric_values(record):
    names = [m["Name"] for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return {name: record[name] for name in names}


def http_event(request, name="http-api.json"):
    event = load_event(name)
    event["body"] = base64.b64encode(json.dumps(request).encode()).decode()
    event["isBase64Encoded"] = True
    return event


# -- metrics ------------------------------------------------------------------

def test_each_event_leaves_one_emf_record_with_its_counts(emulator, start_function):
    seed = standard_seed()
    # A's stop is held by a callback step: it stays Stopping, whatever the time.
    seed["pipelines"][0]["executions"][0]["steps"] = [
        {"name": "Approve", "type": "Callback", "callbackToken": "cbtoken001", "queueUrl": "https://sqs/q"}]
    emulator.seed(seed)
    fn = start_function(env={"DEFAULT_PIPELINE_NAME": PIPELINE})
    cases = [
        # event, expected trigger, expected metrics (besides Events: 1)
        (load_event("direct.json"), "direct", {"StopsRequested": 1}),
        ({"PipelineExecutionArn": DONE}, "direct", {"AlreadyFinished": 1}),
        ({"PipelineName": PIPELINE, "DryRun": True}, "direct", {"WouldStop": 1}),  # B; A is stopping
        ({"PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:notebook/x"}, "direct", {"Refused": 1}),
        (load_event("alarm-eventbridge-ok.json"), "alarm-eventbridge", {"Ignored": 1}),
        (load_event("http-api.json"), "http-api", {"AlreadyStopping": 1}),  # A, already Stopping: not this event's stop
        (load_event("alarm-sns.json"), "alarm-sns", {"StopsRequested": 1, "AlreadyFinished": 0}),
    ]
    for event, _, _ in cases:
        fn.invoke(event)
    records = emf_records(fn)
    assert len(records) == len(cases), fn.process.logs
    for record, (event, trigger, expected) in zip(records, cases):
        assert emf_problems(record) == [], record
        assert record["Trigger"] == trigger and record["FunctionName"] == "sagemaker-pipeline-stopper"
        directive = record["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "SageMakerPipelineStopper"
        assert directive["Dimensions"] == [["FunctionName"], ["FunctionName", "Trigger"]]
        want = {"Events": 1, **{k: v for k, v in expected.items() if v}}
        assert metric_values(record) == want, (trigger, record)
    http = records[5]
    assert http["Caller"] == USER, "the caller identity is a property of the record"
    assert all(isinstance(r["RequestId"], str) and r["RequestId"] for r in records)


def test_a_failed_stop_and_a_guard_run_are_counted(emulator, start_function):
    fn = start_function()
    emulator.faults(accessDenied=100, operations=["StopPipelineExecution"])
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert not inv.ok and inv.error_type == "AccessDenied"
    emulator.faults()
    emulator.seed(guard_seed())  # one pipeline's tag reads "4 hours"
    inv = fn.invoke({"Guard": True})
    assert inv.ok, inv.payload
    failed, guard = emf_records(fn)
    assert metric_values(failed) == {"Events": 1, "StopsFailed": 1}
    stopped = len(stopped_arns(inv.payload))
    assert stopped > 0
    assert metric_values(guard) == {
        "Events": 1, "StopsRequested": stopped, "ExecutionsOverLimit": inv.payload["Guard"]["ExecutionsOverLimit"],
        "InvalidMaxRuntimeTags": 1}
    assert emf_problems(guard) == []


@pytest.mark.parametrize("level", ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"])
def test_metrics_do_not_depend_on_the_log_level_or_format(emulator, start_function, level):
    fn = start_function(env={"AWS_LAMBDA_LOG_LEVEL": level, "AWS_LAMBDA_LOG_FORMAT": "JSON"})
    fn.invoke({"PipelineExecutionArn": A})
    fn.invoke({"PipelineExecutionArn": "not-an-arn"})
    records = emf_records(fn)
    assert [metric_values(r) for r in records] == [{"Events": 1, "StopsRequested": 1}, {"Events": 1, "Refused": 1}]
    assert all(emf_problems(r) == [] for r in records)


def test_metrics_can_be_renamed_or_switched_off_and_a_bad_namespace_fails_init(emulator, start_function):
    fn = start_function(env={"METRICS_NAMESPACE": "Team/Stoppers"})
    fn.invoke({"PipelineExecutionArn": A})
    assert emf_records(fn)[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Team/Stoppers"
    off = start_function(env={"METRICS_NAMESPACE": "off"})
    assert off.invoke({"PipelineExecutionArn": B}).ok
    assert emf_records(off) == []
    api = lambda_runtime.RuntimeApi()
    try:
        for env, needle in (({"METRICS_NAMESPACE": "AWS/Lambda"}, "METRICS_NAMESPACE"),
                            ({"NOTIFY_EVENT_BUS": "two words"}, "NOTIFY_EVENT_BUS"),
                            ({"NOTIFY_TOPIC_ARN": TOPIC + ".fifo"}, "NOTIFY_TOPIC_ARN"),
                            ({"NOTIFY_TOPIC_FORMAT": "slack"}, "NOTIFY_TOPIC_FORMAT"),
                            ({"EXECUTION_DESCRIPTION": "yes"}, "EXECUTION_DESCRIPTION")):
            run = subprocess.run([binary()], env=lambda_runtime.function_env(api, emulator.url, env),
                                 capture_output=True, text=True, timeout=20)
            assert run.returncode != 0 and needle in run.stderr, (env, run.stderr)
    finally:
        api.close()


# -- notifications --------------------------------------------------------------

def notifying(emulator, start_function, **env):
    return start_function(env={"NOTIFY_EVENT_BUS": BUS, "NOTIFY_TOPIC_ARN": TOPIC,
                               "AWS_ENDPOINT_URL_EVENTBRIDGE": emulator.url, "AWS_ENDPOINT_URL_SNS": emulator.url,
                               **env})


def by_service(state, service):
    return [n for n in state["notifications"] if n["service"] == service]


def test_a_stop_over_http_is_notified_on_the_bus_and_the_topic(emulator, start_function):
    fn = notifying(emulator, start_function)
    inv = fn.invoke(load_event("http-api.json"))
    assert inv.payload["statusCode"] == 200, inv.payload
    state = emulator.state()
    [event] = by_service(state, "events")
    assert event["eventBusName"] == BUS
    assert event["source"] == "sagemaker-pipeline-stopper"
    assert event["detailType"] == "SageMaker Pipeline Executions Stop Requested"
    assert event["resources"] == [A]
    detail = event["detail"]
    assert detail["Trigger"] == "http-api" and detail["Caller"] == USER and detail["Guard"] is False
    assert detail["ExecutionsStopped"] == 1 and (detail["Part"], detail["Parts"]) == (1, 1)
    assert detail["Executions"] == [{"PipelineName": PIPELINE, "PipelineExecutionArn": A,
                                     "Outcome": "StopRequested"}]
    [message] = by_service(state, "sns")
    assert message["topicArn"] == TOPIC
    assert message["subject"] == "Stop requested: 1 SageMaker pipeline execution (http-api)"
    assert message["message"] == detail
    assert message["attributes"]["Pipelines"] == {"DataType": "String.Array", "StringValue": json.dumps([PIPELINE])}
    assert_stopped_once(state, [A])
    assert metric_values(emf_records(fn)[0]) == {"Events": 1, "StopsRequested": 1}


def test_only_events_that_stopped_something_are_notified(emulator, start_function):
    fn = notifying(emulator, start_function)
    for event in ({"PipelineName": PIPELINE, "DryRun": True},   # a dry run
                  {"PipelineExecutionArn": DONE},                # already ended
                  {"PipelineExecutionArn": "not-an-arn"},        # refused
                  load_event("alarm-eventbridge-ok.json"),       # ignored
                  {"Guard": True}):                              # nothing over its limit
        fn.invoke(event)
    assert emulator.state()["notifications"] == []
    assert emulator.state()["notificationCalls"] == []
    # A sweep is one notice for all it stopped, whatever else it found.
    inv = fn.invoke({"PipelineName": PIPELINE})
    assert inv.ok
    state = emulator.state()
    [event] = by_service(state, "events")
    assert sorted(event["resources"]) == sorted([A, B])
    assert event["detail"]["Trigger"] == "direct" and "Caller" not in event["detail"]
    assert len(by_service(state, "sns")) == 1
    assert OTHER not in json.dumps(state["notifications"])


def test_a_guard_run_notifies_what_it_stopped_with_the_limits(emulator, start_function):
    emulator.seed(guard_seed())
    fn = notifying(emulator, start_function)
    inv = fn.invoke({"Guard": True})
    assert inv.ok, inv.payload
    stopped = stopped_arns(inv.payload)
    [event] = by_service(emulator.state(), "events")
    assert sorted(event["resources"]) == sorted(stopped)
    assert event["detail"]["Guard"] is True
    for entry in event["detail"]["Executions"]:
        assert entry["Guard"]["LimitSource"] in ("Tag", "Default") and entry["Guard"]["RuntimeMinutes"] > 0
    [message] = by_service(emulator.state(), "sns")
    assert message["subject"].endswith("(the runtime guard)")


def test_the_topic_can_get_a_chat_notification_instead(emulator, start_function):
    """NOTIFY_TOPIC_FORMAT=chat: the topic gets one Amazon Q Developer in chat
    applications custom notification per event (its schema is checked for
    every trigger by crates/stopper-core/tests/chat_schema.rs); the bus still
    gets the JSON notice, and the subject and Pipelines attribute are as
    before."""
    fn = notifying(emulator, start_function, NOTIFY_TOPIC_FORMAT="chat")
    inv = fn.invoke(load_event("http-api.json"))
    assert inv.payload["statusCode"] == 200, inv.payload
    state = emulator.state()
    [event] = by_service(state, "events")
    assert event["detail"]["Trigger"] == "http-api" and event["resources"] == [A]
    [message] = by_service(state, "sns")
    assert message["subject"] == "Stop requested: 1 SageMaker pipeline execution (http-api)"
    assert message["attributes"]["Pipelines"] == {"DataType": "String.Array", "StringValue": json.dumps([PIPELINE])}
    chat = message["message"]
    assert (chat["version"], chat["source"], chat["id"]) == ("1.0", "custom", inv.request_id)
    assert chat["content"]["textType"] == "client-markdown"
    assert chat["content"]["title"] == f"Stop requested: 1 execution of SageMaker pipeline {PIPELINE}"
    assert chat["content"]["description"].split("\n") == [
        f"Pipeline: `{PIPELINE}`",
        f"Execution: `{A.rsplit('/', 1)[1]}`",
        "Why: an HTTP request (API Gateway HTTP API)",
        f"Who: `{USER}`",
        f"Request: `{inv.request_id}` (function `sagemaker-pipeline-stopper`)",
    ]
    assert chat["metadata"]["relatedResources"] == [A]
    assert chat["metadata"]["additionalContext"]["Caller"] == USER
    # An alarm's stop names the alarm; a dry run is told nowhere.
    assert fn.invoke({"PipelineName": PIPELINE, "DryRun": True}).ok
    assert fn.invoke(load_event("alarm-eventbridge.json")).ok
    messages = by_service(emulator.state(), "sns")
    assert len(messages) == 2
    description = messages[1]["message"]["content"]["description"]
    assert "\nWhy: CloudWatch alarm `nightly-training-too-long` in `ALARM` (on EventBridge)\n" in description
    assert "Who:" not in description
    assert_stopped_once(emulator.state(), [A, B])


@pytest.mark.parametrize("operation", ["PutEvents", "Publish"])
def test_a_notification_that_fails_does_not_fail_the_stop(emulator, start_function, operation):
    fn = notifying(emulator, start_function)
    emulator.faults(accessDenied=100, operations=[operation])
    inv = fn.invoke(load_event("http-api.json"))
    assert inv.payload["statusCode"] == 200, "the stop happened: the caller is told so"
    state = emulator.state()
    assert_stopped_once(state, [A])
    # The other destination still got it.
    assert len(state["notifications"]) == 1 and state["notifications"][0]["service"] != (
        "events" if operation == "PutEvents" else "sns")
    assert metric_values(emf_records(fn)[0]) == {"Events": 1, "StopsRequested": 1, "NotificationsFailed": 1}
    warnings = [line for line in fn.process.final_logs() if "stop notification not" in line]
    assert len(warnings) == 1 and ("AccessDenied" in warnings[0] or "AuthorizationError" in warnings[0]), warnings


def test_a_notification_that_hangs_is_abandoned_before_the_reply_deadline(emulator, start_function):
    fn = notifying(emulator, start_function, NOTIFY_TOPIC_ARN=None)
    emulator.faults(notifyLatencyMs=30_000)
    inv = fn.invoke({"PipelineExecutionArn": A}, timeout_seconds=3)
    assert inv.ok, "replied before the function's deadline"
    assert inv.duration_ms < 3000
    assert metric_values(emf_records(fn)[0]) == {"Events": 1, "StopsRequested": 1, "NotificationsFailed": 1}


def service_model(path):
    wheel = os.environ.get("SAGEMAKER_SERVICE_MODEL_WHEEL")
    if not wheel or not os.path.exists(wheel):
        pytest.fail("SAGEMAKER_SERVICE_MODEL_WHEEL is not set: run the tests through scripts/test")
    with zipfile.ZipFile(wheel) as z:
        return json.loads(gzip.decompress(z.read(f"botocore/data/{path}/service-2.json.gz")))


def test_the_notification_requests_follow_the_service_models(emulator, start_function):
    """PutEvents against EventBridge's model (members, required fields, bounds),
    Publish's parameters against SNS's; and the emulator's answers are the
    shapes the models give (the SDK parsed them: the stop was notified)."""
    emulator.seed(guard_seed())
    fn = notifying(emulator, start_function)
    assert fn.invoke({"Guard": True}).ok
    calls = emulator.state()["notificationCalls"]
    events = service_model("events/2015-10-07")
    put = [c["body"] for c in calls if c["operation"] == "PutEvents"]
    assert put and all(conforms(events, "PutEventsRequest", body) == [] for body in put), put
    sns = service_model("sns/2010-03-31")
    members = sns["shapes"]["PublishInput"]["members"]
    for call in (c for c in calls if c["operation"] == "Publish"):
        form = call["body"]
        top = {k.split(".")[0] for k in form} - {"Action", "Version"}
        assert top <= set(members), top - set(members)
        assert set(sns["shapes"]["PublishInput"]["required"]) <= top
        assert form["Version"] == sns["metadata"]["apiVersion"]
