"""End to end: the built binary as a Lambda runtime process, every sample
event, and the emulator's state afterwards."""

import json
import time

import pytest

from conftest import A, B, DONE, OTHER, PIPELINE, ROOT, standard_seed

EVENTS = ROOT / "events"

# file -> executions it must stop (and nothing else), and the reply's shape.
EXPECTED = {
    "direct.json": ([A], "single"),
    "scheduler-input.json": ([A, B], "executions"),
    "eventbridge-custom.json": ([A, B], "executions"),
    "eventbridge-scheduled.json": ([A, B], "executions"),
    "sagemaker-status-change.json": ([A], "single"),
    "alarm-eventbridge.json": ([A, B], "executions"),
    "alarm-eventbridge-ok.json": ([], "ignored"),
    "alarm-lambda-action.json": ([A, B], "executions"),
    "alarm-sns.json": ([A, B], "executions"),
    "http-rest-api.json": ([A], "http-single"),
    "http-api.json": ([A], "http-single"),
    "function-url.json": ([A, B], "http-executions"),
}


def load(name):
    return json.loads((EVENTS / name).read_text())


def test_every_events_file_is_covered():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(EXPECTED)


def test_every_event_stops_exactly_what_it_names(emulator, start_function):
    fn = start_function(env={"DEFAULT_PIPELINE_NAME": PIPELINE})
    for name, (stopped, shape) in EXPECTED.items():
        emulator.seed(standard_seed())
        inv = fn.invoke(load(name))
        assert inv.ok, f"{name}: {inv.payload}"
        reply = inv.payload
        if shape.startswith("http"):
            assert reply["statusCode"] == 200, f"{name}: {reply}"
            reply = json.loads(reply["body"])
        if shape.endswith("single"):
            assert reply == {"PipelineExecutionArn": stopped[0], "Outcome": "StopRequested"}, name
        elif shape.endswith("executions"):
            assert sorted(e["PipelineExecutionArn"] for e in reply["Executions"]) == sorted(stopped), name
            assert all(e["Outcome"] == "StopRequested" for e in reply["Executions"]), name
        else:
            assert reply["Outcome"] == "Ignored", name
        state = emulator.state()
        for arn in (A, B):
            expected = {"Stopping", "Stopped"} if arn in stopped else {"Executing"}
            assert state["executions"][arn]["status"] in expected, f"{name}: {arn}"
        assert state["executions"][OTHER]["status"] == "Executing", name
        assert state["executions"][DONE]["status"] == "Succeeded", name
        assert state["stopCalls"] == {arn: 1 for arn in stopped}, name
    assert fn.process.alive()


@pytest.mark.parametrize("name", ["eventbridge-custom.json", "alarm-sns.json", "alarm-lambda-action.json", "http-api.json"])
def test_redelivery_stops_each_execution_once(emulator, start_function, name):
    """The same event 3 times in sequence, then 3 times at once: the emulator
    counts the stops it accepted, and each named execution is stopped once."""
    named = EXPECTED[name][0]
    fn = start_function()
    event = load(name)
    replies = [fn.invoke(event) for _ in range(3)]
    concurrent = [fn.submit(event) for _ in range(3)]
    for inv in concurrent:
        assert inv.done.wait(15)
    assert all(r.ok for r in replies + concurrent), [r.payload for r in replies + concurrent]
    state = emulator.state()
    assert state["stopCalls"] == {arn: 1 for arn in named}
    stops = [c["body"] for c in state["calls"] if c["operation"] == "StopPipelineExecution"]
    tokens = {s["PipelineExecutionArn"]: set() for s in stops}
    for s in stops:
        tokens[s["PipelineExecutionArn"]].add(s["ClientRequestToken"])
    assert all(len(t) == 1 for t in tokens.values()), tokens
    assert len({t for ts in tokens.values() for t in ts}) == len(tokens), "two executions shared a token"


def test_an_alarm_on_a_pipeline_with_many_running_executions_pages_through_all(emulator, start_function):
    emulator.seed({"pipelines": [
        {"name": PIPELINE, "generate": {"Executing": 260, "Succeeded": 40}},
        {"name": "prod-inference", "executions": [{"id": "zz9yy8xx7ww6"}]},
    ]})
    fn = start_function()
    inv = fn.invoke(load("alarm-eventbridge.json"), timeout_seconds=30)
    assert inv.ok, inv.payload
    assert len(inv.payload["Executions"]) == 260
    state = emulator.state()
    statuses = [e["status"] for a, e in state["executions"].items() if f"pipeline/{PIPELINE}/" in a]
    assert statuses.count("Succeeded") == 40
    assert sum(s in ("Stopping", "Stopped") for s in statuses) == 260
    assert len(state["stopCalls"]) == 260 and set(state["stopCalls"].values()) == {1}
    assert state["executions"][OTHER]["status"] == "Executing"
    pages = [c for c in state["calls"] if c["operation"] == "ListPipelineExecutions"]
    assert len(pages) >= 3


def test_a_callback_step_holds_the_stop_until_its_token_is_answered(emulator, start_function):
    emulator.seed({"pipelines": [{"name": PIPELINE, "executions": [{"id": "k7xvw1b9q2hj", "steps": [
        {"name": "WaitForApproval", "type": "Callback", "callbackToken": "Xk3vQ9aL2m",
         "queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/approvals"}]}]}]})
    fn = start_function()
    inv = fn.invoke(load("direct.json"))
    assert inv.payload["Outcome"] == "StopRequested"
    [held] = inv.payload["BlockingSteps"]
    assert held["StepName"] == "WaitForApproval" and held["StepType"] == "Callback"
    assert held["SqsQueueUrl"] == "https://sqs.us-east-1.amazonaws.com/123456789012/approvals"
    assert "Xk3vQ9aL2m" not in json.dumps(inv.payload)
    time.sleep(0.4)
    state = emulator.state()
    assert state["executions"][A]["status"] == "Stopping"
    assert state["sqsMessages"][0]["Body"]["Status"] == "Stopping"
    status, _ = emulator.call("SendPipelineExecutionStepSuccess", {"CallbackToken": "Xk3vQ9aL2m"})
    assert status == 200
    time.sleep(0.3)
    assert emulator.status(A) == "Stopped"












def test_garbage_then_a_good_event_on_the_same_process(emulator, start_function):
    fn = start_function()
    for garbage in [b"\xff\xfe not json", b"[" * 100000, json.dumps([1, 2]).encode(), b'{"PipelineExecutionArn": 42}']:
        inv = fn.invoke(garbage)
        assert not inv.ok, garbage[:20]
    bad_http = load("http-api.json")
    bad_http["body"], bad_http["isBase64Encoded"] = "//79/Q==", True
    inv = fn.invoke(bad_http)
    assert inv.ok and inv.payload["statusCode"] == 400
    get = load("http-rest-api.json")
    get["httpMethod"] = "GET"
    inv = fn.invoke(get)
    assert inv.payload["statusCode"] == 405 and inv.payload["headers"]["allow"] == "POST"
    assert emulator.state()["calls"] == []
    inv = fn.invoke(load("direct.json"))
    assert inv.ok and inv.payload["Outcome"] == "StopRequested"
    assert fn.process.alive()


def test_a_finished_execution_is_reported_not_failed(emulator, start_function):
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": DONE})
    assert inv.ok and inv.payload == {"PipelineExecutionArn": DONE, "Outcome": "AlreadyFinished", "Status": "Succeeded"}


def test_the_allow_list_refuses_before_any_call(emulator, start_function):
    fn = start_function(env={"ALLOWED_PIPELINES": "prod-*"})
    inv = fn.invoke(load("direct.json"))
    assert not inv.ok and inv.error_type == "AccessDenied"
    http = fn.invoke(load("http-rest-api.json"))
    assert http.payload["statusCode"] == 403
    assert emulator.state()["calls"] == []


@pytest.mark.parametrize("finishes, timeout, final", [(0.6, 30, "Stopped"), (30, 0.6, "Failed")])
def test_a_lambda_step_holds_the_stop_until_it_finishes_or_times_out(emulator, start_function, finishes, timeout, final):
    emulator.seed({"pipelines": [{"name": PIPELINE, "executions": [{"id": "k7xvw1b9q2hj", "steps": [
        {"name": "Notify", "type": "Lambda", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:notify",
         "finishesInSeconds": finishes, "timeoutSeconds": timeout}]}]}]})
    fn = start_function()
    inv = fn.invoke(load("direct.json"))
    assert inv.ok and inv.payload["Outcome"] == "StopRequested", inv.payload
    assert inv.payload["BlockingSteps"][0]["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:notify"
    assert emulator.status(A) == "Stopping"
    time.sleep(1.0)
    assert emulator.status(A) == final
    assert emulator.state()["sqsMessages"] == []
