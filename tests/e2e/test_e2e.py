"""End to end: the built binary as a Lambda runtime process, every sample
event, and the emulator's state afterwards."""

import json
import time

import pytest

from conftest import (A, B, DONE, OTHER, PIPELINE, ROOT, assert_stopped_once, deliver_at_once, standard_seed,
                      start_instances, stop_tokens)

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
    # No pipeline is tagged and no default limit is set: the guard stops
    # nothing, and never falls back to DEFAULT_PIPELINE_NAME.
    "guard-schedule.json": ([], "guard"),
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
        elif shape == "guard":
            assert reply["Executions"] == [] and reply["Guard"]["ExecutionsOverLimit"] == 0, name
            assert "nothing to stop" in reply["Message"], name
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
        assert_stopped_once(state, stopped, requests_each=1)
    assert fn.process.alive()


# Every trigger that carries an identity of its own (the token's seed, see
# crates/stopper-core/src/trigger/ and docs/failures.md#idempotency): its
# redelivery must re-send the same tokens. A direct invocation has none (each
# Lambda request id seeds new tokens) unless the caller gives ClientRequestToken.
IDENTIFIED = {
    "eventbridge-custom.json": "EventBridge event id",
    "eventbridge-scheduled.json": "EventBridge scheduled rule event id",
    "sagemaker-status-change.json": "EventBridge (SageMaker) event id",
    "alarm-eventbridge.json": "alarm via EventBridge: event id",
    "alarm-lambda-action.json": "alarm Lambda action: alarm ARN and state time",
    "alarm-sns.json": "alarm via SNS: MessageId",
    "http-rest-api.json": "REST API request id",
    "http-api.json": "HTTP API request id",
    "function-url.json": "function URL request id",
}
INSTANCES = 3
# Of those, the ones that sweep a pipeline (list its Executing executions)
# rather than name executions: a later delivery finds nothing left to stop.
SWEEPS = {"eventbridge-scheduled.json", "alarm-eventbridge.json", "alarm-lambda-action.json", "alarm-sns.json"}


def redelivery_event(name):
    if name == "direct+ClientRequestToken":
        return {"PipelineExecutionArn": A, "ClientRequestToken": "caller-chosen-token-0123456789abcdef"}
    return load(name)


def outcomes(payload):
    """{execution ARN: Outcome} of a reply, HTTP or not, single or not."""
    reply = json.loads(payload["body"]) if "statusCode" in payload else payload
    entries = reply.get("Executions", [reply])
    return {e["PipelineExecutionArn"]: e["Outcome"] for e in entries}


def named_by(name):
    return [A] if name == "direct+ClientRequestToken" else EXPECTED[name][0]


@pytest.mark.parametrize("name", [*IDENTIFIED, "direct+ClientRequestToken"])
def test_redelivery_at_once_to_3_instances_then_in_sequence_sends_one_token_per_execution(
        emulator, start_function, name):
    """The same event to 3 function processes at the same moment (as Lambda
    runs concurrent deliveries), then twice more in sequence. Every stop
    request for an execution carries the same token, so SageMaker stops it
    once; every instance's request reaches the emulator (3 at once, one
    answered Stopping and the others replays). The later deliveries find the
    executions no longer Executing and send no stop: a sweep finds nothing,
    and a named execution is reported already stopping (not a stop of their
    own, to count or notify). The sweeps' listings, and the looks at named
    executions before their stop, are held until all 3 have arrived, so all 3
    instances do send a stop (else the check would hold with one request)."""
    named = named_by(name)
    sweep = name in SWEEPS
    instances = start_instances(start_function, INSTANCES, env={"DEFAULT_PIPELINE_NAME": PIPELINE})
    event = redelivery_event(name)
    gated = "ListPipelineExecutions" if sweep else "DescribePipelineExecution"
    emulator.faults(gate={"operation": gated, "parties": INSTANCES * len(named) if not sweep else INSTANCES})
    at_once = deliver_at_once(instances, event)
    emulator.faults()
    assert all(inv.ok for inv in at_once), [inv.payload for inv in at_once]
    assert all(inv.payload == at_once[0].payload for inv in at_once), [inv.payload for inv in at_once]
    at_once_tokens = stop_tokens(emulator.state())
    assert set(at_once_tokens) == set(named), at_once_tokens
    for arn in named:
        assert len(at_once_tokens[arn]) == 1, f"{arn}: the {INSTANCES} instances sent {at_once_tokens[arn]}"
        assert sum(at_once_tokens[arn].values()) == INSTANCES, f"{arn}: {at_once_tokens[arn]}"
    in_sequence = [instances[0].invoke(event), instances[1].invoke(event)]
    assert all(r.ok for r in in_sequence), [r.payload for r in in_sequence]
    for r in in_sequence:
        if sweep:
            assert r.payload["Executions"] == [], r.payload
        else:
            assert outcomes(r.payload) == {arn: "AlreadyStopping" for arn in named}, r.payload
    state = emulator.state()
    assert_stopped_once(state, named, requests_each=INSTANCES)
    assert state["executions"][OTHER]["status"] == "Executing"


def test_direct_invocations_without_a_token_get_one_token_per_lambda_request(emulator, start_function):
    """The contrast that shows the check above can tell tokens apart: a direct
    invocation has no identity, so two deliveries (two Lambda request ids) send
    two tokens, and SageMaker refuses the second (the execution is no longer
    Executing): that delivery reports the stop already under way, not a stop
    of its own, and neither fails."""
    instances = start_instances(start_function, 2)
    # Both look at the execution before either stops it.
    emulator.faults(gate={"operation": "DescribePipelineExecution", "parties": 2})
    replies = deliver_at_once(instances, load("direct.json"))
    assert all(r.ok for r in replies), [r.payload for r in replies]
    assert sorted(r.payload["Outcome"] for r in replies) == ["AlreadyStopping", "StopRequested"], \
        [r.payload for r in replies]
    state = emulator.state()
    assert len(stop_tokens(state)[A]) == 2, stop_tokens(state)
    assert sorted(r["answer"] for r in state["stopRequests"]) == ["Stopping", "ValidationException"]


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
    time.sleep(0.4)  # twice the emulator's settle time: without the hold, it would be Stopped
    state = emulator.state()
    assert state["executions"][A]["status"] == "Stopping"
    assert state["sqsMessages"][0]["Body"]["Status"] == "Stopping"
    status, _ = emulator.call("SendPipelineExecutionStepSuccess", {"CallbackToken": "Xk3vQ9aL2m"})
    assert status == 200
    until = time.monotonic() + 10  # the end it asserts on, not a fixed time
    while emulator.status(A) == "Stopping" and time.monotonic() < until:
        time.sleep(0.05)
    assert emulator.status(A) == "Stopped"












def test_garbage_fails_with_its_documented_error_type_then_a_good_event_on_the_same_process_stops(emulator, start_function):
    fn = start_function()
    # docs/requests.md#replies: not JSON at all is the runtime library's
    # DeserializeError; JSON that is not a valid request is ValidationError.
    for garbage, error_type in [
        # The docs spell it without the leading `&` that lambda_runtime puts
        # there (std::any::type_name of a reference): this checks what Lambda
        # really reports.
        (b"\xff\xfe not json", "&lambda_runtime::deserializer::DeserializeError"),
        (b"[" * 100000, "&lambda_runtime::deserializer::DeserializeError"),
        (json.dumps([1, 2]).encode(), "ValidationError"),
        (b'{"PipelineExecutionArn": 42}', "ValidationError"),
    ]:
        inv = fn.invoke(garbage)
        assert not inv.ok and inv.error_type == error_type, (garbage[:20], inv.error_type, inv.payload)
    bad_http = load("http-api.json")
    bad_http["body"], bad_http["isBase64Encoded"] = "//79/Q==", True
    inv = fn.invoke(bad_http)
    assert inv.ok and inv.payload["statusCode"] == 400
    assert json.loads(inv.payload["body"])["Error"]["Code"] == "ValidationError", inv.payload
    get = load("http-rest-api.json")
    get["httpMethod"] = "GET"
    inv = fn.invoke(get)
    assert inv.payload["statusCode"] == 405 and inv.payload["headers"]["allow"] == "POST"
    assert json.loads(inv.payload["body"])["Error"]["Code"] == "MethodNotAllowed", inv.payload
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


@pytest.mark.timing(reason="the step ends 0.6 s after the seed, and the stop must reach it before then: under "
                           "emulation the function's start and first call can take longer, and the step has ended")
@pytest.mark.parametrize("finishes, timeout, final", [(0.6, 30, "Stopped"), (30, 0.6, "Failed")])
def test_a_lambda_step_holds_the_stop_until_it_finishes_or_times_out(emulator, start_function, finishes, timeout, final):
    fn = start_function()  # started first: the step's 0.6 s does not include the process's start
    emulator.seed({"pipelines": [{"name": PIPELINE, "executions": [{"id": "k7xvw1b9q2hj", "steps": [
        {"name": "Notify", "type": "Lambda", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:notify",
         "finishesInSeconds": finishes, "timeoutSeconds": timeout}]}]}]})
    inv = fn.invoke(load("direct.json"))
    assert inv.ok and inv.payload["Outcome"] == "StopRequested", inv.payload
    assert inv.payload["BlockingSteps"][0]["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:notify"
    assert emulator.status(A) == "Stopping"
    until = time.monotonic() + 10  # the end it asserts on, not a fixed 1 s
    while emulator.status(A) == "Stopping" and time.monotonic() < until:
        time.sleep(0.05)
    assert emulator.status(A) == final
    assert emulator.state()["sqsMessages"] == []
