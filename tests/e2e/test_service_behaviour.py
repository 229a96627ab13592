"""SageMaker as real clients find it, not as its reference pages describe it:
each test covers a row of docs/service-behaviour.md, through the built binary
against the emulator, which answers that way by default (a seed's
"documented" list asks for the pages' answer instead)."""

import json

import pytest

from conftest import A, ACCOUNT, B, PIPELINE, REGION, deliver_at_once, load_event
from test_cli import cli
from test_guard import QUEUE, arn, guard_seed, stopped_arns
from test_operations import emf_records, metric_values, notifying

FINISHED = ["Succeeded", "Failed", "Stopped", "CompletedWithFailures"]


def stop_answers(state, execution):
    return [r["answer"] for r in state["stopRequests"] if r["arn"] == execution]


CALLBACK = {"name": "Approve", "type": "Callback", "callbackToken": "cbtoken001", "queueUrl": QUEUE}


def seed_with(emulator, status, documented=(), steps=None):
    """nightly-training with A in `status` and B Executing. A stop of A is
    held Stopping by a callback step that never answers (unless `steps` says
    otherwise), so that what a test sees after it does not depend on time."""
    if steps is None:
        steps = [CALLBACK] if status in ("Executing", "Stopping") else []
    emulator.seed({"account": ACCOUNT, "region": REGION, "documented": list(documented), "pipelines": [
        {"name": PIPELINE, "executions": [
            {"id": A.rsplit("/", 1)[1], "status": status, "steps": steps},
            {"id": B.rsplit("/", 1)[1], "status": "Executing"},
        ]},
    ]})


@pytest.mark.parametrize("status", FINISHED)
def test_an_ended_execution_is_looked_at_not_stopped(emulator, start_function, status):
    seed_with(emulator, status)
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert inv.ok, inv.payload
    assert inv.payload == {"PipelineExecutionArn": A, "Outcome": "AlreadyFinished", "Status": status}
    assert stop_answers(emulator.state(), A) == []
    assert metric_values(emf_records(fn)[0]) == {"Events": 1, "AlreadyFinished": 1}


@pytest.mark.parametrize("documented", [(), ("stopNotExecuting",)], ids=["as-observed", "as-documented"])
@pytest.mark.parametrize("status", FINISHED)
def test_an_execution_that_ends_before_its_stop_reports_how_it_ended_and_does_not_fail(
        emulator, start_function, status, documented):
    """Executing when looked at, ended by the stop: SageMaker refuses it
    (ValidationException as observed, ConflictException as documented)."""
    seed_with(emulator, "Executing", documented)
    emulator.faults(endsBeforeStop={A: status})
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert inv.ok, inv.payload
    assert inv.payload == {"PipelineExecutionArn": A, "Outcome": "AlreadyFinished", "Status": status}
    expected = "ConflictException" if documented else "ValidationException"
    assert stop_answers(emulator.state(), A) == [expected]
    assert metric_values(emf_records(fn)[0]) == {"Events": 1, "AlreadyFinished": 1}


def test_a_second_stop_of_an_execution_already_stopping_is_neither_a_failure_nor_a_new_stop(
        emulator, start_function):
    """An alarm and a schedule for the same runaway, then an HTTP caller
    pressing twice: one stop, one notice, one StopsRequested; the others say
    the stop is already under way, and send none."""
    seed_with(emulator, "Executing")
    fn = notifying(emulator, start_function)
    first = fn.invoke({"PipelineExecutionArn": A})
    assert first.ok and first.payload["Outcome"] == "StopRequested", first.payload
    again = fn.invoke({"PipelineExecutionArn": A})
    assert again.ok, again.payload
    assert (again.payload["Outcome"], again.payload["Status"]) == ("AlreadyStopping", "Stopping"), again.payload
    # What holds the stop is listed, as for a stop of its own ("Force" would fail it).
    assert [s["StepName"] for s in again.payload["BlockingSteps"]] == ["Approve"]
    http = fn.invoke(load_event("http-api.json"))
    assert http.payload["statusCode"] == 200, http.payload
    assert json.loads(http.payload["body"])["Outcome"] == "AlreadyStopping"
    state = emulator.state()
    assert stop_answers(state, A) == ["Stopping"]
    notices = [n for n in state["notifications"] if n["service"] == "events"]
    assert len(notices) == 1, "only the event that stopped it is notified"
    assert [metric_values(r) for r in emf_records(fn)] == [
        {"Events": 1, "StopsRequested": 1}, {"Events": 1, "AlreadyStopping": 1}, {"Events": 1, "AlreadyStopping": 1}]


@pytest.mark.parametrize("documented", [(), ("stopNotExecuting",)], ids=["as-observed", "as-documented"])
def test_two_stops_racing_with_different_tokens_make_one_stop_and_one_already_stopping(
        emulator, start_function, documented):
    """Both look at the execution while it is Executing; SageMaker takes the
    first stop and refuses the second (ValidationException as observed,
    ConflictException as documented), which is read as the other's stop
    under way."""
    seed_with(emulator, "Executing", documented)
    emulator.faults(gate={"operation": "DescribePipelineExecution", "parties": 2})
    fn, other = start_function(), start_function()
    replies = deliver_at_once([fn, other], {"PipelineExecutionArn": A})
    assert sorted(r.payload["Outcome"] for r in replies) == ["AlreadyStopping", "StopRequested"], \
        [r.payload for r in replies]
    refused = "ConflictException" if documented else "ValidationException"
    assert sorted(stop_answers(emulator.state(), A)) == sorted(["Stopping", refused])


@pytest.mark.timing("the Lambda step's 5 s count from the seed, before the function starts and stops it twice")
def test_waiting_on_an_execution_already_stopping_waits_for_its_end(emulator, start_function):
    notify = {"name": "Notify", "type": "Lambda", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:n",
              "finishesInSeconds": 5, "timeoutSeconds": 600}
    seed_with(emulator, "Executing", steps=[notify])
    fn = start_function()
    assert fn.invoke({"PipelineExecutionArn": A}).payload["Outcome"] == "StopRequested"
    inv = fn.invoke({"PipelineExecutionArn": A, "WaitSeconds": 20}, timeout_seconds=30)
    assert inv.ok and inv.payload["Outcome"] == "AlreadyStopping" and inv.payload["Status"] == "Stopped", inv.payload


def test_a_sweep_racing_an_execution_that_ends_does_not_fail(emulator, start_function):
    """The listing says Executing; by the stop, it has ended."""
    seed_with(emulator, "Executing")
    emulator.faults(endsBeforeStop={B: "Succeeded"})
    fn = start_function()
    inv = fn.invoke({"PipelineName": PIPELINE})
    assert inv.ok, inv.payload
    outcomes = {e["PipelineExecutionArn"]: e["Outcome"] for e in inv.payload["Executions"]}
    assert outcomes == {A: "StopRequested", B: "AlreadyFinished"}
    assert metric_values(emf_records(fn)[0]) == {"Events": 1, "StopsRequested": 1, "AlreadyFinished": 1}


def test_a_guard_run_racing_a_runaway_that_ends_does_not_fail(emulator, start_function):
    runaway, outside = arn("nightly-training", "runaway00001"), arn("prod-inference", "outside00001")
    emulator.seed(guard_seed())
    emulator.faults(endsBeforeStop={runaway: "CompletedWithFailures"})
    fn = start_function()
    inv = fn.invoke({"Guard": True})
    assert inv.ok, inv.payload
    assert stopped_arns(inv.payload) == [outside]
    [ended] = [e for e in inv.payload["Executions"] if e["PipelineExecutionArn"] == runaway]
    assert ended["Outcome"] == "AlreadyFinished" and ended["Status"] == "CompletedWithFailures"
    assert inv.payload["Guard"]["ExecutionsFailed"] == 0
    assert "StopsFailed" not in metric_values(emf_records(fn)[0])


def test_a_stop_refused_while_the_execution_moves_between_steps_is_sent_again_with_the_same_token(
        emulator, start_function):
    seed_with(emulator, "Executing")
    emulator.faults(transitionConflicts=2)
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert inv.ok and inv.payload["Outcome"] == "StopRequested", inv.payload
    state = emulator.state()
    assert stop_answers(state, A) == ["ConflictException", "ConflictException", "Stopping"]
    assert len(state["stopTokens"][A]) == 1, "every attempt carries the same token"


def test_a_stop_refused_for_longer_than_the_retries_is_a_conflict(emulator, start_function):
    seed_with(emulator, "Executing")
    emulator.faults(transitionConflicts=100)
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert not inv.ok and inv.error_type == "ConflictException", inv.payload
    assert stop_answers(emulator.state(), A) == ["ConflictException"] * 5, "the stop and four retries"


@pytest.mark.timing("a 2 s deadline against 400 ms per call")
def test_the_retries_end_at_the_deadline(emulator, start_function):
    seed_with(emulator, "Executing")
    emulator.faults(transitionConflicts=100, latencyMs=400, operations=["StopPipelineExecution"])
    fn = start_function(timeout_seconds=2)
    inv = fn.invoke({"PipelineExecutionArn": A}, timeout_seconds=2)
    assert not inv.ok and inv.error_type == "UpstreamUnavailable", inv.payload


def test_any_other_validation_exception_stays_an_error(emulator, start_function):
    """A caller's token reused for another execution: SageMaker's
    ValidationException, not the not-Executing one, is not read as a stop."""
    seed_with(emulator, "Executing")
    fn = start_function()
    token = "t" * 40
    assert fn.invoke({"PipelineExecutionArn": A, "ClientRequestToken": token}).payload["Outcome"] == "StopRequested"
    inv = fn.invoke({"PipelineExecutionArn": B, "ClientRequestToken": token})
    assert not inv.ok and inv.error_type == "UpstreamError", inv.payload
    assert emulator.state()["executions"][B]["status"] == "Executing"


def test_the_cli_reports_an_execution_already_stopping(emulator):
    seed_with(emulator, "Stopping")
    run = cli(emulator, "--pipeline-execution-arn", A)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["Outcome"] == "AlreadyStopping"


def test_a_foreach_steps_iterations_that_hold_a_stop_are_each_reported_and_forced(emulator, start_function):
    """A ForEach step's iterations are listed as steps of their own (with an
    IterationContext, sharing their body step's name); each running Callback
    iteration holds the stop, is named by its index, and is failed by Force."""
    def iteration(index, token):
        return {"name": "Approve", "type": "Callback", "callbackToken": token, "queueUrl": QUEUE,
                "iteration": {"parent": "PerRegion", "index": index}}
    steps = [{"name": "PerRegion", "type": "ForEach", "items": 2}, iteration(0, "Iter0token"), iteration(1, "Iter1token")]
    seed_with(emulator, "Executing", steps=steps)
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A, "Force": True, "WaitSeconds": 5})
    assert inv.ok, inv.payload
    assert [(s["StepName"], s["Force"]) for s in inv.payload["BlockingSteps"]] == [
        ("Approve[0]", "Sent"), ("Approve[1]", "Sent")], inv.payload
    assert inv.payload["Status"] == "Stopped"
    sent = [c["body"]["CallbackToken"] for c in emulator.state()["calls"]
            if c["operation"] == "SendPipelineExecutionStepFailure"]
    assert sorted(sent) == ["Iter0token", "Iter1token"]


def test_a_callback_step_that_ends_before_force_reaches_it_is_reported_not_failed(emulator, start_function):
    """Its consumer answered between the listing and the failure: SageMaker
    answers ConflictException, which means the step no longer holds the stop."""
    seed_with(emulator, "Executing")
    emulator.faults(stepEndsBeforeAnswer={"cbtoken001": "Succeeded"})
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": A, "Force": True})
    assert inv.ok, inv.payload
    assert inv.payload["Outcome"] == "StopRequested"
    assert inv.payload["BlockingSteps"][0]["Force"] == "StepAlreadyEnded", inv.payload
