"""The guard reads Search as the index it is: eventually consistent, paged by
offsets, with no promise of order. Each test gives the built binary an answer
such an index can give (the emulator's index faults) and checks that nothing
is stopped that should not be, nothing twice, and nothing found is lost."""

import json
import time

import pytest

from conftest import ACCOUNT, REGION, assert_stopped_once
from test_cli import cli
from test_guard import (BROKEN, EXEMPT, OUTSIDE, PIPELINE_ARN, RUNAWAY, TAG, UNTAGGED, YOUNG, calls, guard,
                        guard_seed, stopped_arns)
from test_operations import notifying

DEFAULT = {"DEFAULT_MAX_RUNTIME": "2h"}


def test_a_pipeline_the_index_has_not_seen_tagged_is_not_taken_for_untagged(emulator, start_function):
    """long-backfill (tagged none) and broken-tag (an unreadable tag) are
    missing from Search's tagged pipelines; with a default, their 5,000- and
    500-minute executions are still left alone: the guard reads a pipeline's
    own tags before it stops anything of it by the default."""
    emulator.seed(guard_seed())
    emulator.faults(indexHides=["long-backfill", "broken-tag"])
    fn = start_function(env=DEFAULT)
    inv = fn.invoke({"Guard": True})
    assert inv.ok, inv.payload
    stopped = stopped_arns(inv.payload)
    assert EXEMPT not in stopped and BROKEN not in stopped, stopped
    assert sorted(stopped) == sorted([OUTSIDE, RUNAWAY, UNTAGGED])
    [by_default] = [e for e in inv.payload["Executions"] if e["PipelineExecutionArn"] == UNTAGGED]
    assert by_default["Guard"]["LimitSource"] == "Default"
    read = sorted(body["ResourceArn"] for body in calls(emulator, "ListTags"))
    assert read == [f"{PIPELINE_ARN}/{p}" for p in ("broken-tag", "feature-eng", "long-backfill", "nightly-training",
                                                     "prod-inference")], read
    assert [t["PipelineName"] for t in inv.payload["Guard"]["InvalidTags"]] == ["broken-tag"]
    assert_stopped_once(emulator.state(), stopped)


def test_a_pipeline_whose_tags_cannot_be_read_is_not_stopped(emulator, start_function):
    """Neither by the default nor by a limit only the index gives."""
    emulator.seed(guard_seed())
    emulator.faults(accessDenied=100, operations=["ListTags"])
    fn = start_function(env=DEFAULT)
    inv = fn.invoke({"Guard": True})
    assert inv.ok, inv.payload
    assert stopped_arns(inv.payload) == []
    skipped = {s["PipelineName"]: s["Reason"] for s in inv.payload["Guard"]["PipelinesSkipped"]}
    # Those the guard would act on; the exempt and the unreadable ones it would not.
    assert set(skipped) == {"feature-eng", "nightly-training", "prod-inference"}
    assert all("its tags could not be read" in reason for reason in skipped.values()), skipped
    assert calls(emulator, "StopPipelineExecution") == []


def test_a_tag_changed_since_the_index_saw_it_is_what_counts(emulator, start_function):
    """The owner has just exempted nightly-training (none); the index still
    shows its old limit (60): its 90-minute runaway is left alone."""
    seed = guard_seed()
    seed["pipelines"][0]["tags"][TAG] = "none"
    emulator.seed(seed)
    emulator.faults(indexTags={"Nightly-Training": {TAG: "60"}}, operations=["Search"])
    inv = start_function().invoke({"Guard": True})
    assert inv.ok, inv.payload
    assert stopped_arns(inv.payload) == [OUTSIDE]
    assert emulator.status(RUNAWAY) == "Executing"
    assert inv.payload["Guard"]["PipelinesExempt"] == 2, "long-backfill, and nightly-training now"


def test_a_record_of_another_account_or_whose_name_is_not_its_arns_sets_no_limit(emulator, start_function):
    other = PIPELINE_ARN.replace(ACCOUNT, "999999999999")
    emulator.seed(guard_seed())
    emulator.faults(indexExtra=[
        {"PipelineArn": f"{other}/feature-eng", "PipelineName": "feature-eng", "Tags": [{"Key": TAG, "Value": "1m"}]},
        {"PipelineArn": f"{PIPELINE_ARN}/somewhere-else", "PipelineName": "feature-eng",
         "Tags": [{"Key": TAG, "Value": "1m"}]},
        {"PipelineName": "feature-eng", "Tags": [{"Key": TAG, "Value": "1m"}]},
        {"PipelineArn": f"{PIPELINE_ARN}/long-backfill", "Tags": [{"Key": TAG, "Value": "1m"}]},
    ])
    _, reply = guard(emulator, start_function)
    assert sorted(stopped_arns(reply)) == sorted([OUTSIDE, RUNAWAY]), "feature-eng is untagged, no default"


def test_an_execution_on_two_pages_is_stopped_reported_counted_and_notified_once(emulator, start_function):
    emulator.seed({"account": ACCOUNT, "region": REGION, "pipelines": [
        {"name": "bulk", "tags": {TAG: "1h"}, "generate": {"Executing": 250}, "generateStartedMinutesAgo": 180}]})
    emulator.faults(pageTokens="overlap", operations=["Search"])
    fn = notifying(emulator, start_function)
    inv = fn.invoke({"Guard": True})
    assert inv.ok, inv.payload
    stopped = stopped_arns(inv.payload)
    assert len(stopped) == len(set(stopped)) == 250
    assert inv.payload["Guard"]["ExecutionsStopped"] == 250 and inv.payload["Guard"]["ExecutionsOverLimit"] == 250
    state = emulator.state()
    assert_stopped_once(state, stopped, requests_each=1)
    notified = [arn for n in state["notifications"] if n["service"] == "events" for arn in n["resources"]]
    assert sorted(notified) == sorted(stopped)


def test_newest_first_results_do_not_hide_a_runaway(emulator, start_function):
    seed = guard_seed()
    seed["pipelines"].append({"name": "fresh", "tags": {TAG: "1h"}, "generate": {"Executing": 150}})
    emulator.seed(seed)
    emulator.faults(indexOrder="reversed")
    fn = start_function()
    inv = fn.invoke({"Guard": True})
    assert inv.ok, inv.payload
    assert stopped_arns(inv.payload) == [OUTSIDE, RUNAWAY], "the longest-running first"
    assert YOUNG not in stopped_arns(inv.payload)


@pytest.mark.timing("2,000 calls from CLI runs each bounded at 30 s: under qemu every call is many times slower")
def test_listings_that_never_end_or_go_round_in_circles_end(emulator):
    """The CLI has no deadline: each listing is bounded by pages, and a token
    seen before ends it as a failure, having stopped nothing twice."""
    emulator.seed(guard_seed())
    for mode, most in (("endless", 1000), ("cycle", 2)):
        emulator.faults(pageTokens=mode, operations=["Search"])
        started = time.monotonic()
        run = cli(emulator, "--guard", "--dry-run")
        assert run.returncode != 0 and "listing of pipelines tagged" in run.stderr, (mode, run.stderr[-500:])
        assert len(calls(emulator, "Search")) <= most, mode
        assert time.monotonic() - started < 60
        emulator.seed(guard_seed())
    emulator.faults(pageTokens="endless", operations=["ListPipelineExecutions"])
    sweep = cli(emulator, "--pipeline-name", "nightly-training", "--dry-run")
    assert sweep.returncode != 0 and "went on past 1000 pages" in sweep.stderr, sweep.stderr[-500:]
    assert len(calls(emulator, "ListPipelineExecutions")) == 1000


@pytest.mark.timing("which page the half-deadline cuts depends on the function's own speed")
def test_a_slow_discovery_still_stops_what_it_found(emulator, start_function):
    """Search pages 1 s each, a 7.5 s deadline: the searches get half of it,
    so the third page of running executions is cut off (the second too, on a
    slow machine), and the runaways of the pages read are stopped with the
    time left."""
    emulator.seed({"account": ACCOUNT, "region": REGION, "pipelines": [
        {"name": "bulk", "tags": {TAG: "1h"}, "generate": {"Executing": 250}, "generateStartedMinutesAgo": 180}]})
    emulator.faults(latencyMs=1000, operations=["Search"])
    fn = start_function(timeout_seconds=8)
    inv = fn.invoke({"Guard": True}, timeout_seconds=8)
    # The cut discovery is the run's one failure: retried, and alarmed on.
    assert not inv.ok and inv.error_type == "PartialFailure", inv.payload
    assert "targets failed: guard discovery" in inv.payload["errorMessage"], inv.payload
    state = emulator.state()
    stopped = [arn for arn, s in state["executions"].items() if s["status"] in ("Stopping", "Stopped")]
    assert 100 <= len(stopped) <= 200, len(stopped)
    assert_stopped_once(state, stopped, requests_each=1)
    assert "before the function's deadline" in json.dumps(inv.payload)


# -- tokens ---------------------------------------------------------------------

def test_a_caller_cannot_send_a_token_from_the_derived_space(emulator, start_function):
    """The guard's token for an execution derives from public inputs: a caller
    allowed to stop one execution could send it, as theirs, for another, and
    SageMaker would then refuse the guard's stop. Such tokens are refused."""
    emulator.seed(guard_seed())
    fn = start_function()
    assert fn.invoke({"Guard": True, "DryRun": True}).ok
    guard_token = "stopper-" + "0" * 64
    inv = fn.invoke({"PipelineExecutionArn": YOUNG, "ClientRequestToken": guard_token})
    assert not inv.ok and inv.error_type == "ValidationError" and "stopper-" in inv.payload["errorMessage"]
    assert calls(emulator, "StopPipelineExecution") == []
    inv = fn.invoke({"Guard": True})
    assert inv.ok and RUNAWAY in stopped_arns(inv.payload)
    tokens = emulator.state()["stopTokens"][RUNAWAY]
    assert all(t.startswith("stopper-") for t in tokens), tokens


def test_overlapping_guard_runs_fail_a_callback_step_with_one_token(emulator, start_function):
    from conftest import deliver_at_once, start_instances
    from test_guard import QUEUE
    step = {"name": "WaitForApproval", "type": "Callback", "callbackToken": "Xk3vQ9aL2m", "queueUrl": QUEUE}
    emulator.seed(guard_seed([step]))
    # Both runs find it (the index still shows it Executing after the other's
    # stop), and both list its steps before either fails the callback step.
    emulator.faults(indexStale={RUNAWAY: "Executing"}, gate={"operation": "ListPipelineExecutionSteps", "parties": 2})
    instances = start_instances(start_function, 2, env={"ALLOWED_PIPELINES": "nightly-training"})
    for inv in deliver_at_once(instances, {"Guard": True, "Force": True}):
        assert inv.ok, inv.payload
    sent = calls(emulator, "SendPipelineExecutionStepFailure")
    assert len(sent) == 2 and len({s["ClientRequestToken"] for s in sent}) == 1, sent


def test_a_guard_run_that_finds_its_own_earlier_stop_in_a_stale_index_neither_stops_nor_notifies_it(
        emulator, start_function):
    emulator.seed(guard_seed())
    fn = notifying(emulator, start_function)
    first = fn.invoke({"Guard": True})
    assert first.ok and sorted(stopped_arns(first.payload)) == sorted([OUTSIDE, RUNAWAY]), first.payload
    emulator.faults(indexStale={RUNAWAY: "Executing", OUTSIDE: "Executing"}, operations=["Search"])
    again = fn.invoke({"Guard": True})
    assert again.ok, again.payload
    outcomes = {e["PipelineExecutionArn"]: e["Outcome"] for e in again.payload["Executions"]}
    # Still Stopping, or Stopped by now (the emulator settles a stop in 0.2 s).
    assert set(outcomes) == {OUTSIDE, RUNAWAY}, again.payload
    assert set(outcomes.values()) <= {"AlreadyStopping", "AlreadyFinished"}, again.payload
    state = emulator.state()
    assert_stopped_once(state, [OUTSIDE, RUNAWAY], requests_each=1)
    assert len([n for n in state["notifications"] if n["service"] == "events"]) == 1


def test_the_guard_stops_nothing_its_look_before_the_stop_cannot_confirm(emulator, start_function):
    """A runaway the look cannot read (access denied) is reported failed, not
    stopped on the index's word; an execution the index says is stuck
    Stopping but that runs is never stopped by the stuck path."""
    seed = guard_seed()
    seed["pipelines"][0]["executions"].append({"id": "stale0000001", "startedMinutesAgo": 30})
    stale = f"{PIPELINE_ARN}/nightly-training/execution/stale0000001"
    emulator.seed(seed)
    emulator.faults(accessDenied=100, operations=["DescribePipelineExecution"])
    fn = start_function()
    inv = fn.invoke({"Guard": True})
    assert not inv.ok and inv.error_type == "PartialFailure", inv.payload
    assert calls(emulator, "StopPipelineExecution") == []
    emulator.faults(indexStale={stale: "Stopping"}, operations=["Search"])
    inv = fn.invoke({"Guard": True})
    assert not inv.ok and inv.error_type == "PartialFailure", inv.payload
    assert "left alone" in inv.payload["errorMessage"]
    assert stale not in emulator.state()["stopTokens"] and emulator.status(stale) == "Executing"
