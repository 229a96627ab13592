"""The stop's reason on the execution (EXECUTION_DESCRIPTION=append, the
default): after each stop an event requested, one entry appended to the
execution's description, which SageMaker Studio shows. The entry's wording and
the rules for the description's length are unit-tested in
crates/stopper-core/src/note.rs; here, through the real binary, what the
emulator holds afterwards."""

import re

import pytest

from conftest import A, B, DONE, PIPELINE, assert_stopped_once, load_event, standard_seed
from test_guard import RUNAWAY, OUTSIDE, calls, guard, stopped_arns
from test_operations import USER, emf_records, metric_values

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def description(emulator, arn):
    return emulator.state()["executions"][arn]["description"]


def entry(why, request_id):
    """The pattern of one entry."""
    return rf"\[sagemaker-pipeline-stopper {TIME}: {re.escape(why)}; request {re.escape(request_id)}; stop [0-9a-f]{{12}}\]"


def seeded(emulator, **descriptions):
    """The standard seed, with these executions' descriptions (by id)."""
    seed = standard_seed()
    for execution in seed["pipelines"][0]["executions"]:
        if execution["id"] in descriptions:
            execution["description"] = descriptions[execution["id"]]
    emulator.seed(seed)


USERS_TEXT = "Nightly training, run by the ML team: ask #ml-platform before stopping"


def test_an_http_and_an_alarm_stop_append_why_and_keep_the_users_text(emulator, start_function):
    seeded(emulator, k7xvw1b9q2hj=USERS_TEXT)
    fn = start_function()
    http = fn.invoke(load_event("http-api.json"))  # stops A, with the caller
    assert http.payload["statusCode"] == 200, http.payload
    why = f'stop requested by an HTTP request (API Gateway HTTP API); asked by "{USER}"'
    assert re.fullmatch(re.escape(USERS_TEXT) + " " + entry(why, http.request_id), description(emulator, A))
    alarm = fn.invoke(load_event("alarm-eventbridge.json"))  # sweeps the pipeline: B (A is stopping)
    assert alarm.ok, alarm.payload
    why = 'stop requested by CloudWatch alarm "nightly-training-too-long" in "ALARM" (on EventBridge)'
    assert re.fullmatch(entry(why, alarm.request_id), description(emulator, B))
    # A was already stopping: the alarm wrote nothing on it.
    assert description(emulator, A).count("[sagemaker-pipeline-stopper") == 1
    assert len(calls(emulator, "UpdatePipelineExecution")) == 2
    assert_stopped_once(emulator.state(), [A, B])


def test_a_guard_stop_says_the_limit_and_the_run_time(emulator, start_function):
    fn, reply = guard(emulator, start_function)
    assert stopped_arns(reply) == [OUTSIDE, RUNAWAY]
    why = ('stop requested by the runtime guard: it had run 1h 30m, over its limit 1h (tag '
           '"pipeline-stopper:max-runtime"); run by a direct invocation or an EventBridge Scheduler schedule')
    [request_id] = [r["RequestId"] for r in emf_records(fn)]
    assert re.fullmatch(entry(why, request_id), description(emulator, RUNAWAY))


def test_nothing_is_written_for_a_dry_run_a_refusal_or_an_execution_not_stopped_by_this_event(
        emulator, start_function):
    fn = start_function()
    for event in ({"PipelineName": PIPELINE, "DryRun": True},
                  {"PipelineExecutionArn": DONE},
                  {"PipelineExecutionArn": "not-an-arn"},
                  load_event("alarm-eventbridge-ok.json")):
        fn.invoke(event)
    assert calls(emulator, "UpdatePipelineExecution") == []
    # A redelivered event: the second delivery finds A stopping, and writes nothing.
    event = load_event("direct.json")
    first, second = fn.invoke(event), fn.invoke(event)
    assert first.payload["Outcome"] == "StopRequested" and second.payload["Outcome"] == "AlreadyStopping"
    assert [c["PipelineExecutionArn"] for c in calls(emulator, "UpdatePipelineExecution")] == [A]
    assert description(emulator, A).count("[sagemaker-pipeline-stopper") == 1


def test_off_writes_nothing(emulator, start_function):
    fn = start_function(env={"EXECUTION_DESCRIPTION": "off"})
    assert fn.invoke({"PipelineExecutionArn": A}).ok
    assert calls(emulator, "UpdatePipelineExecution") == []
    assert description(emulator, A) is None


@pytest.mark.parametrize("fault, says", [
    ({"accessDenied": 100}, "UpdatePipelineExecution was denied: check the function's sagemaker:UpdatePipelineExecution"),
    ({"throttle": 100}, "UpdatePipelineExecution was throttled"),
])
def test_an_update_that_fails_leaves_the_reply_and_the_stop_as_they_were(emulator, start_function, fault, says):
    seeded(emulator, k7xvw1b9q2hj=USERS_TEXT)
    fn = start_function()
    emulator.faults(operations=["UpdatePipelineExecution"], message="SERVICE-TEXT", **fault)
    inv = fn.invoke(load_event("http-api.json"))
    assert inv.payload["statusCode"] == 200, inv.payload
    assert description(emulator, A) == USERS_TEXT
    assert_stopped_once(emulator.state(), [A])
    assert metric_values(emf_records(fn)[0]) == {"Events": 1, "StopsRequested": 1, "DescriptionsFailed": 1}
    [warning] = [line for line in fn.process.final_logs() if "reason was not written" in line]
    assert says in warning and "SERVICE-TEXT" not in warning, warning


def test_a_write_that_outlasts_the_deadline_is_counted_alone(emulator, start_function):
    """B's update is held past the function's deadline; A's is written: one
    failure, not two (B's may yet be written: SageMaker had the request)."""
    fn = start_function(timeout_seconds=6)
    emulator.faults(gate={"operation": "UpdatePipelineExecution", "parties": 2, "match": {"PipelineExecutionArn": B}})
    inv = fn.invoke({"PipelineName": PIPELINE})
    assert inv.ok and sorted(stopped_arns(inv.payload)) == sorted([A, B]), inv.payload
    assert "[sagemaker-pipeline-stopper" in description(emulator, A)
    assert metric_values(emf_records(fn)[0]) == {"Events": 1, "StopsRequested": 2, "DescriptionsFailed": 1}
    [warning] = [line for line in fn.process.final_logs() if "reason was not written" in line]
    assert B in warning and "no time was left" in warning, warning
