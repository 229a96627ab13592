"""End to end: the request options (Force, Wait, DryRun, OlderThanMinutes)
against the emulator's model of callback and Lambda steps."""

import time

from conftest import A, B, DONE, OTHER, PIPELINE

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/approvals"
NOTIFY = "arn:aws:lambda:us-east-1:123456789012:function:notify"
MUTATING = {"StopPipelineExecution", "SendPipelineExecutionStepFailure", "SendPipelineExecutionStepSuccess"}


def seed_steps(emulator, *steps):
    emulator.seed({"pipelines": [{"name": PIPELINE, "executions": [
        {"id": "k7xvw1b9q2hj", "steps": list(steps)},
        {"id": "p3m8zq0d5c1r"},
    ]}]})


def callback(name="WaitForApproval", token="Xk3vQ9aL2m"):
    return {"name": name, "type": "Callback", "callbackToken": token, "queueUrl": QUEUE}


def lambda_step(finishes=3600, timeout=3600):
    return {"name": "Notify", "type": "Lambda", "functionArn": NOTIFY,
            "finishesInSeconds": finishes, "timeoutSeconds": timeout}


def calls(emulator, operation):
    return [c["body"] for c in emulator.state()["calls"] if c["operation"] == operation]


def test_force_fails_the_callback_step_and_the_execution_reaches_stopped(emulator, start_function):
    seed_steps(emulator, callback())
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A, "Force": True, "Reason": "cost alarm", "WaitSeconds": 5})
    assert inv.ok, inv.payload
    assert inv.payload["Status"] == "Stopped", inv.payload
    [step] = inv.payload["BlockingSteps"]
    assert (step["StepName"], step["Force"]) == ("WaitForApproval", "Sent")
    [sent] = calls(emulator, "SendPipelineExecutionStepFailure")
    assert sent["CallbackToken"] == "Xk3vQ9aL2m" and sent["FailureReason"] == "cost alarm"
    assert 32 <= len(sent["ClientRequestToken"]) <= 128
    state = emulator.state()
    assert state["executions"][A]["status"] == "Stopped"
    assert state["executions"][A]["steps"]["WaitForApproval"] == "Failed"
    assert state["executions"][B]["status"] == "Executing"


def test_without_force_a_callback_step_keeps_the_execution_stopping(emulator, start_function):
    seed_steps(emulator, callback())
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A, "WaitSeconds": 1})
    assert inv.ok and inv.payload["Status"] == "Stopping", inv.payload
    assert inv.payload["BlockingSteps"][0]["StepType"] == "Callback"
    assert calls(emulator, "SendPipelineExecutionStepFailure") == []
    assert emulator.status(A) == "Stopping"


def test_force_cannot_end_a_lambda_step_and_says_so(emulator, start_function):
    seed_steps(emulator, lambda_step())
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A, "Force": True})
    assert inv.ok, inv.payload
    [step] = inv.payload["BlockingSteps"]
    assert step["Force"] == "NotPossible" and "cannot be forced" in step["Note"]
    assert calls(emulator, "SendPipelineExecutionStepFailure") == []


def test_wait_returns_the_final_status(emulator, start_function):
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A, "Wait": True})
    assert inv.ok and inv.payload["Status"] == "Stopped", inv.payload
    seed_steps(emulator, lambda_step(timeout=0.6))
    inv = fn.invoke({"PipelineExecutionArn": A, "WaitSeconds": 5})
    assert inv.ok and inv.payload["Status"] == "Failed", inv.payload


def test_wait_true_ends_before_the_function_deadline_with_what_still_blocks(emulator, start_function):
    seed_steps(emulator, lambda_step())
    fn = start_function(timeout_seconds=3)
    started = time.perf_counter()
    inv = fn.invoke({"PipelineExecutionArn": A, "Wait": True}, wait_seconds=6)
    elapsed = time.perf_counter() - started
    assert inv.ok, inv.payload
    assert 1.5 < elapsed < 3, elapsed
    assert inv.payload["Status"] == "Stopping"
    assert inv.payload["BlockingSteps"][0]["FunctionArn"] == NOTIFY


def test_a_dry_run_reports_and_leaves_every_execution_untouched(emulator, start_function):
    fn = start_function()
    before = emulator.state()["executions"]
    inv = fn.invoke({"PipelineName": PIPELINE, "DryRun": True, "Force": True})
    assert inv.ok, inv.payload
    assert inv.payload["DryRun"] is True
    assert sorted(e["PipelineExecutionArn"] for e in inv.payload["Executions"]) == [A, B]
    assert {e["Outcome"] for e in inv.payload["Executions"]} == {"WouldStop"}
    inv = fn.invoke({"PipelineExecutionArns": [A, DONE], "DryRun": True})
    outcomes = {e["PipelineExecutionArn"]: e["Outcome"] for e in inv.payload["Executions"]}
    assert outcomes == {A: "WouldStop", DONE: "AlreadyFinished"}
    state = emulator.state()
    assert state["executions"] == before
    assert state["stopCalls"] == {}
    assert not MUTATING & {c["operation"] for c in state["calls"]}


def test_older_than_minutes_stops_only_the_runaways(emulator, start_function):
    emulator.seed({"pipelines": [
        {"name": PIPELINE, "executions": [
            {"id": "k7xvw1b9q2hj", "startedMinutesAgo": 300},
            {"id": "p3m8zq0d5c1r", "startedMinutesAgo": 30},
        ]},
        {"name": "prod-inference", "executions": [{"id": "zz9yy8xx7ww6", "startedMinutesAgo": 600}]},
    ]})
    fn = start_function(env={"DEFAULT_PIPELINE_NAME": PIPELINE})
    inv = fn.invoke({"OlderThanMinutes": 240})
    assert inv.ok, inv.payload
    assert [e["PipelineExecutionArn"] for e in inv.payload["Executions"]] == [A]
    state = emulator.state()
    assert state["stopCalls"] == {A: 1}
    assert state["executions"][B]["status"] == "Executing"
    assert state["executions"][OTHER]["status"] == "Executing"
    [listing] = calls(emulator, "ListPipelineExecutions")
    assert "CreatedBefore" in listing
