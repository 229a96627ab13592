"""End to end: the runtime guard ({"Guard": true}, --guard) of the built
binary against the emulator's pipelines, tags and Search. One test per case
of issue 14: a tagged pipeline, an untagged one with and without the default,
an exempt one, an unreadable tag, a pipeline outside ALLOWED_PIPELINES, a dry
run, overlapping and redelivered runs, a callback-blocked runaway with Force,
pagination, the CLI; and the emulator's discovery calls, and its
UpdatePipelineExecution and DescribePipelineExecution, checked against the
SageMaker service model in botocore's wheel."""

import gzip
import json
import os
import subprocess
import zipfile

import lambda_runtime
import pytest

from conftest import (A, ACCOUNT, B, DONE, REGION, assert_stopped_once, binary, deliver_at_once,
                      standard_seed, start_instances)
from test_cli import cli
from test_hardening import all_logs, http_api

TAG = "pipeline-stopper:max-runtime"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/approvals"


def arn(pipeline, execution):
    return f"{PIPELINE_ARN}/{pipeline.lower()}/execution/{execution}"


RUNAWAY = arn("nightly-training", "runaway00001")
YOUNG = arn("nightly-training", "young0000001")
UNTAGGED = arn("feature-eng", "untagged0001")
EXEMPT = arn("long-backfill", "exempt000001")
BROKEN = arn("broken-tag", "broken000001")
OUTSIDE = arn("prod-inference", "outside00001")


def guard_seed(runaway_steps=()):
    """A tagged pipeline (60 minutes) with a runaway (90 minutes) and a young
    execution; an untagged pipeline (500 minutes); a pipeline tagged none
    (5,000 minutes); one whose tag cannot be read; prod-inference, tagged 30
    minutes, running 100; and a finished execution far past every limit."""
    return {"account": ACCOUNT, "region": REGION, "pipelines": [
        {"name": "Nightly-Training", "tags": {TAG: "60", "team": "ml"}, "executions": [
            {"id": "runaway00001", "startedMinutesAgo": 90, "steps": list(runaway_steps)},
            {"id": "young0000001", "startedMinutesAgo": 10},
            {"id": "finished0001", "startedMinutesAgo": 900, "status": "Succeeded"},
        ]},
        {"name": "feature-eng", "executions": [{"id": "untagged0001", "startedMinutesAgo": 500}]},
        {"name": "long-backfill", "tags": {TAG: "none"}, "executions": [{"id": "exempt000001", "startedMinutesAgo": 5000}]},
        {"name": "broken-tag", "tags": {TAG: "4 hours"}, "executions": [{"id": "broken000001", "startedMinutesAgo": 500}]},
        {"name": "prod-inference", "tags": {TAG: "30m"}, "executions": [{"id": "outside00001", "startedMinutesAgo": 100}]},
    ]}


def calls(emulator, operation):
    return [c["body"] for c in emulator.state()["calls"] if c["operation"] == operation]


def guard(emulator, start_function, request=None, env=None, seed=None):
    emulator.seed(seed or guard_seed())
    fn = start_function(env=env)
    inv = fn.invoke(request or {"Guard": True})
    assert inv.ok, inv.payload
    return fn, inv.payload


def stopped_arns(reply):
    return [e["PipelineExecutionArn"] for e in reply["Executions"] if e["Outcome"] == "StopRequested"]


def test_a_tagged_pipelines_runaway_is_stopped_and_only_it(emulator, start_function):
    _, reply = guard(emulator, start_function)
    # Oldest first: prod-inference's (100 minutes, limit 30) before the runaway.
    assert stopped_arns(reply) == [OUTSIDE, RUNAWAY]
    [entry] = [e for e in reply["Executions"] if e["PipelineExecutionArn"] == RUNAWAY]
    assert entry["Guard"] == {"MaxRuntime": "1h", "MaxRuntimeMinutes": 60, "LimitSource": "Tag",
                              "RuntimeMinutes": 90}, entry
    state = emulator.state()
    assert_stopped_once(state, [RUNAWAY, OUTSIDE])
    for untouched in (YOUNG, UNTAGGED, EXEMPT, BROKEN):
        assert state["executions"][untouched]["status"] == "Executing", untouched
    summary = reply["Guard"]
    assert summary["TagKey"] == TAG and summary["DefaultMaxRuntime"] is None
    assert summary["ExecutionsOverLimit"] == 2 and summary["ExecutionsStopped"] == 2
    assert summary["ExecutionsFailed"] == 0
    # Three Search calls: the tagged pipelines, the running executions, and
    # those stopping (for stops stuck past the grace period).
    statuses = [c["SearchExpression"]["Filters"][0].get("Value") for c in calls(emulator, "Search")]
    assert statuses == [None, "Executing", "Stopping"], statuses


def test_an_untagged_pipeline_is_never_touched_without_the_default(emulator, start_function):
    _, reply = guard(emulator, start_function, env={"ALLOWED_PIPELINES": "nightly-training,feature-eng"})
    assert stopped_arns(reply) == [RUNAWAY]
    assert emulator.status(UNTAGGED) == "Executing"
    assert reply["Guard"]["PipelinesGuarded"] == 1


def test_an_untagged_pipeline_gets_the_default_limit(emulator, start_function):
    _, reply = guard(emulator, start_function,
                     env={"DEFAULT_MAX_RUNTIME": "4h", "ALLOWED_PIPELINES": "nightly-training,feature-eng"})
    assert sorted(stopped_arns(reply)) == sorted([RUNAWAY, UNTAGGED])
    [entry] = [e for e in reply["Executions"] if e["PipelineExecutionArn"] == UNTAGGED]
    assert entry["Guard"] == {"MaxRuntime": "4h", "MaxRuntimeMinutes": 240, "LimitSource": "Default",
                              "RuntimeMinutes": 500}
    assert reply["Guard"]["DefaultMaxRuntime"] == "4h"
    assert_stopped_once(emulator.state(), [RUNAWAY, UNTAGGED])


def test_a_pipeline_tagged_none_is_exempt_from_the_default(emulator, start_function):
    _, reply = guard(emulator, start_function, env={"DEFAULT_MAX_RUNTIME": "1h"})
    assert EXEMPT not in stopped_arns(reply)
    assert emulator.status(EXEMPT) == "Executing"
    assert reply["Guard"]["PipelinesExempt"] == 1


def test_an_unreadable_tag_is_reported_and_its_pipeline_left_alone_even_with_a_default(emulator, start_function):
    fn, reply = guard(emulator, start_function, env={"DEFAULT_MAX_RUNTIME": "1h"})
    assert BROKEN not in stopped_arns(reply)
    assert emulator.status(BROKEN) == "Executing"
    [invalid] = reply["Guard"]["InvalidTags"]
    assert invalid["PipelineName"] == "broken-tag" and invalid["Value"] == "4 hours"
    assert "90m, 4h, 2d" in invalid["Reason"]
    lines = all_logs(fn)
    warns = [line for line in lines if "max-runtime tag cannot be read" in line]
    assert len(warns) == 1, warns
    [warn] = warns
    assert "WARN" in warn.upper() and "broken-tag" in warn and "4 hours" in warn, warn


def test_a_tagged_pipeline_outside_allowed_pipelines_is_skipped_counted_and_named_only_in_the_log(
        emulator, start_function):
    """A caller of this deployment (over HTTP, say) learns nothing of pipelines
    it may not act on: not their names, not their tags' values; the operator's
    log names them."""
    emulator.seed(guard_seed())
    fn = start_function(env={"ALLOWED_PIPELINES": "nightly-*"})
    inv = fn.invoke(http_api(json.dumps({"Guard": True, "DryRun": True})))
    assert inv.payload["statusCode"] == 200, inv.payload
    body = inv.payload["body"]
    for secret in ("prod-inference", "broken-tag", "4 hours", "long-backfill", "feature-eng"):
        assert secret not in body, secret
    reply = json.loads(body)
    assert reply["Guard"]["PipelinesSkipped"] == [] and reply["Guard"]["InvalidTags"] == []
    assert reply["Guard"]["PipelinesNotAllowed"] == 2, "prod-inference (30m) and broken-tag (unreadable)"
    assert [e["PipelineExecutionArn"] for e in reply["Executions"]] == [RUNAWAY]
    run = fn.invoke({"Guard": True})
    assert stopped_arns(run.payload) == [RUNAWAY]
    assert emulator.status(OUTSIDE) == "Executing"
    assert_stopped_once(emulator.state(), [RUNAWAY])
    assert any("skipped" in line and "prod-inference" in line for line in all_logs(fn))


def test_a_dry_run_lists_runtime_limit_and_source_and_changes_nothing(emulator, start_function):
    _, reply = guard(emulator, start_function, {"Guard": True, "DryRun": True},
                     env={"DEFAULT_MAX_RUNTIME": "9h"})
    assert reply["DryRun"] is True
    would = {e["PipelineExecutionArn"]: e for e in reply["Executions"]}
    assert set(would) == {RUNAWAY, OUTSIDE}
    assert all(e["Outcome"] == "WouldStop" and e["Status"] == "Executing" for e in would.values())
    assert would[OUTSIDE]["Guard"]["MaxRuntime"] == "30m"
    within = {e["PipelineExecutionArn"]: e for e in reply["Guard"]["WithinLimit"]}
    assert set(within) == {YOUNG, UNTAGGED}
    assert within[YOUNG] == {"PipelineExecutionArn": YOUNG, "MaxRuntime": "1h", "MaxRuntimeMinutes": 60,
                             "LimitSource": "Tag", "RuntimeMinutes": 10}
    assert within[UNTAGGED]["LimitSource"] == "Default" and within[UNTAGGED]["RuntimeMinutes"] == 500
    assert reply["Guard"]["ExecutionsWouldStop"] == 2
    mutating = [c for c in emulator.state()["calls"]
                if c["operation"] in ("StopPipelineExecution", "SendPipelineExecutionStepFailure")]
    assert mutating == []


def test_overlapping_guard_runs_and_a_redelivery_stop_each_execution_once(emulator, start_function):
    emulator.seed(guard_seed())
    # All three runs see the runaways Executing: their searches for running
    # executions are answered as they arrive, and held until all three have.
    emulator.faults(gate={"operation": "Search", "parties": 3, "match": {"Resource": "PipelineExecution"}})
    instances = start_instances(start_function, 3)
    stops = 0
    for inv in deliver_at_once(instances, {"Guard": True}):
        assert inv.ok, inv.payload
        # Each run stops them (with the one token), or finds another run's
        # stop under way when it looks before its own.
        outcomes = {e["PipelineExecutionArn"]: e["Outcome"] for e in inv.payload["Executions"]}
        assert set(outcomes) == {RUNAWAY, OUTSIDE}, inv.payload
        assert set(outcomes.values()) <= {"StopRequested", "AlreadyStopping"}, inv.payload
        stops += len(stopped_arns(inv.payload))
    state = emulator.state()
    assert_stopped_once(state, [RUNAWAY, OUTSIDE])
    assert stops == sum(sum(per.values()) for per in state["stopTokens"].values()), "a stop per request sent"
    # A redelivery after the stop finds them no longer Executing.
    again = instances[0].invoke({"Guard": True})
    assert again.ok and again.payload["Executions"] == [], again.payload
    assert emulator.state()["stopTokens"] == state["stopTokens"]


def test_a_callback_blocked_runaway_is_forced_to_stop(emulator, start_function):
    step = {"name": "WaitForApproval", "type": "Callback", "callbackToken": "Xk3vQ9aL2m", "queueUrl": QUEUE}
    _, reply = guard(emulator, start_function, {"Guard": True, "Force": True, "WaitSeconds": 5},
                     env={"ALLOWED_PIPELINES": "nightly-training"}, seed=guard_seed([step]))
    [entry] = reply["Executions"]
    assert entry["PipelineExecutionArn"] == RUNAWAY and entry["Status"] == "Stopped", entry
    assert entry["BlockingSteps"][0]["Force"] == "Sent"
    assert entry["Guard"]["LimitSource"] == "Tag"
    [sent] = calls(emulator, "SendPipelineExecutionStepFailure")
    assert sent["CallbackToken"] == "Xk3vQ9aL2m"
    assert emulator.state()["executions"][RUNAWAY]["steps"]["WaitForApproval"] == "Failed"


def test_discovery_reads_every_page_and_relies_on_no_order(emulator, start_function):
    """150 tagged pipelines (2 pages); 250 runaways and 150 young executions:
    all 4 pages of running executions are read (the order of an index's
    results is not relied on to stop reading)."""
    pipelines = [{"name": f"tagged-{i:03d}", "tags": {TAG: "2h"}} for i in range(150)]
    pipelines.append({"name": "bulk", "tags": {TAG: "1h"}, "generate": {"Executing": 250},
                      "generateStartedMinutesAgo": 180})
    pipelines.append({"name": "fresh", "tags": {TAG: "1h"}, "generate": {"Executing": 150}})
    _, reply = guard(emulator, start_function, seed={"account": ACCOUNT, "region": REGION, "pipelines": pipelines})
    searches = calls(emulator, "Search")
    assert len(stopped_arns(reply)) == 250, (reply["Guard"], searches)
    assert [s["Resource"] for s in searches] == ["Pipeline"] * 2 + ["PipelineExecution"] * 5, searches
    assert sum("Stopping" in json.dumps(s) for s in searches) == 1, "4 pages Executing, 1 Stopping"
    state = emulator.state()
    assert_stopped_once(state, stopped_arns(reply))
    assert all(a.startswith(f"{PIPELINE_ARN}/bulk/") for a in stopped_arns(reply))
    assert reply["Guard"]["PipelinesExamined"] == 152


def test_the_cli_guard_sends_the_same_token_as_the_function(emulator, start_function):
    emulator.seed(guard_seed())
    env = {"ALLOWED_PIPELINES": "nightly-training"}
    dry = cli(emulator, "--guard", "--dry-run", "--output", "text", env=env)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert f"{RUNAWAY}\tWouldStop\tExecuting" in lines
    assert "OVERLIMIT\t1h\tTag\t90" in lines
    assert f"WITHINLIMIT\t{YOUNG}\t1h\tTag\t10" in lines
    # Outside ALLOWED_PIPELINES: counted (skipped: 2), not named.
    assert not any("prod-inference" in line or "broken-tag" in line for line in lines), lines
    run = cli(emulator, "--guard", env=env)
    assert run.returncode == 0, run.stderr
    assert stopped_arns(json.loads(run.stdout)) == [RUNAWAY]
    [cli_token] = emulator.state()["stopTokens"][RUNAWAY]
    # The function, on the same pipelines, sends the same token.
    emulator.seed(guard_seed())
    fn = start_function(env=env)
    assert fn.invoke({"Guard": True}).ok
    assert list(emulator.state()["stopTokens"][RUNAWAY]) == [cli_token]
    refused = cli(emulator, "--guard", "--pipeline-name", "nightly-training", env=env)
    assert refused.returncode == 252 and "Guard finds its own targets" in refused.stderr


@pytest.mark.parametrize("request_, needle", [
    ({"Guard": True, "PipelineName": "nightly-training"}, "PipelineName"),
    ({"Guard": True, "PipelineExecutionArn": RUNAWAY}, "PipelineExecutionArn"),
    ({"Guard": True, "OlderThanMinutes": 5}, "OlderThanMinutes"),
    ({"Guard": False}, "Guard is false"),
    ({"Guard": None}, "Guard"),
    ({"Guard": "true"}, "Guard"),
    ({"Guard": True, "Reason": "r"}, "Force"),
])
def test_a_guard_request_that_contradicts_itself_is_refused_before_any_call(emulator, start_function, request_, needle):
    emulator.seed(guard_seed())
    fn = start_function(env={"DEFAULT_PIPELINE_NAME": "nightly-training"})
    inv = fn.invoke(request_)
    assert not inv.ok and inv.error_type == "ValidationError", inv.payload
    assert needle in inv.payload["errorMessage"], inv.payload
    assert emulator.state()["calls"] == []


def test_a_bad_guard_setting_fails_init_naming_the_variable(emulator):
    api = lambda_runtime.RuntimeApi()
    try:
        for env, needle in (({"DEFAULT_MAX_RUNTIME": "4 hours"}, "DEFAULT_MAX_RUNTIME"),
                            ({"DEFAULT_MAX_RUNTIME": "none"}, "DEFAULT_MAX_RUNTIME"),
                            ({"MAX_RUNTIME_TAG": "aws:max-runtime"}, "MAX_RUNTIME_TAG")):
            run = subprocess.run([binary()], env=lambda_runtime.function_env(api, emulator.url, env),
                                 capture_output=True, text=True, timeout=20)
            assert run.returncode != 0 and needle in run.stderr, (env, run.stderr)
        assert emulator.state()["calls"] == []
    finally:
        api.close()


def test_a_custom_tag_key_is_the_one_searched(emulator, start_function):
    seed = guard_seed()
    seed["pipelines"][0]["tags"] = {"team:timeout": "1h"}
    _, reply = guard(emulator, start_function, env={"MAX_RUNTIME_TAG": "team:timeout"}, seed=seed)
    assert RUNAWAY in stopped_arns(reply) and reply["Guard"]["TagKey"] == "team:timeout"
    first = calls(emulator, "Search")[0]
    assert first["SearchExpression"]["Filters"] == [{"Name": "Tags.team:timeout", "Operator": "Exists"}]


# -- the emulator against the service model ----------------------------------

@pytest.fixture(scope="module")
def model():
    wheel = os.environ.get("SAGEMAKER_SERVICE_MODEL_WHEEL")
    if not wheel or not os.path.exists(wheel):
        pytest.fail("SAGEMAKER_SERVICE_MODEL_WHEEL is not set: run the tests through scripts/test")
    with zipfile.ZipFile(wheel) as z:
        return json.loads(gzip.decompress(z.read("botocore/data/sagemaker/2017-07-24/service-2.json.gz")))


def conforms(model, shape_name, value, path="$"):
    """The problems of `value` against a shape of the model: unknown or
    missing members, wrong types, values outside enums and bounds."""
    shape = model["shapes"][shape_name]
    kind = shape["type"]
    problems = []
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        for key in value:
            if key not in shape["members"]:
                problems.append(f"{path}.{key}: not a member of {shape_name}")
        for key in shape.get("required", []):
            if key not in value:
                problems.append(f"{path}.{key}: required by {shape_name}")
        for key, member in shape["members"].items():
            if key in value:
                problems += conforms(model, member["shape"], value[key], f"{path}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        if "max" in shape and len(value) > shape["max"]:
            problems.append(f"{path}: more than {shape['max']} items")
        for i, item in enumerate(value):
            problems += conforms(model, shape["member"]["shape"], item, f"{path}[{i}]")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string"]
        if "enum" in shape and value not in shape["enum"]:
            problems.append(f"{path}: {value!r} not in {shape_name}'s enum")
        if not shape.get("min", 0) <= len(value) <= shape.get("max", 10**9):
            problems.append(f"{path}: length {len(value)} outside {shape_name}'s bounds")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or not shape.get("min", -10**18) <= value <= shape.get("max", 10**18):
            problems.append(f"{path}: {value!r} is not a {shape_name}")
    elif kind == "timestamp":
        if not isinstance(value, (int, float)):
            problems.append(f"{path}: a timestamp is epoch seconds in awsJson")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean")
    return problems


def test_the_discovery_calls_and_the_emulators_answers_follow_the_service_model(emulator, start_function, model):
    _, reply = guard(emulator, start_function, env={"DEFAULT_MAX_RUNTIME": "2h"})
    assert stopped_arns(reply)
    ops = model["operations"]
    sent = [c for c in emulator.state()["calls"] if c["operation"] == "Search"]
    assert len(sent) == 3, "tagged pipelines, executions Executing, executions Stopping"
    for call in sent:
        assert conforms(model, ops["Search"]["input"]["shape"], call["body"]) == [], call["body"]
        status, answer = emulator.call("Search", call["body"])
        assert status == 200
        assert answer["Results"] or "Stopping" in json.dumps(call["body"]), call["body"]
        assert conforms(model, ops["Search"]["output"]["shape"], answer) == [], answer
    # The tags of the untagged pipeline the default stops something of, read by the function.
    listed = [c["body"] for c in emulator.state()["calls"] if c["operation"] == "ListTags"]
    assert sorted(b["ResourceArn"] for b in listed) == [
        f"{PIPELINE_ARN}/{p}" for p in ("feature-eng", "nightly-training", "prod-inference")], listed
    for body in listed:
        assert conforms(model, ops["ListTags"]["input"]["shape"], body) == [], body
    # The other way of discovery, measured in bench/guard.py, answers in the model's shapes too.
    for operation, body, items in (
        ("ListPipelines", {"MaxResults": 100}, "PipelineSummaries"),
        ("ListTags", {"ResourceArn": f"{PIPELINE_ARN}/nightly-training", "MaxResults": 50}, "Tags"),
        ("ListPipelineExecutions", {"PipelineName": "nightly-training", "MaxResults": 100},
         "PipelineExecutionSummaries"),
    ):
        assert conforms(model, ops[operation]["input"]["shape"], body) == []
        status, answer = emulator.call(operation, body)
        assert status == 200 and answer[items], (operation, answer)
        assert conforms(model, ops[operation]["output"]["shape"], answer) == [], (operation, answer)
    # Out-of-model requests are refused as SageMaker refuses them.
    for bad in ({"Resource": "Pipeline", "MaxResults": 101}, {"Resource": "Pipelines"},
                {"Resource": "Pipeline", "SearchExpression": {"Filters": [{"Name": "Tags.x", "Operator": "Has"}]}}):
        status, answer = emulator.call("Search", bad)
        assert status == 400 and answer["__type"] == "ValidationException", (bad, answer)


def test_a_description_written_by_update_pipeline_execution_is_read_back_in_the_models_shapes(emulator, model):
    """Whatever the execution's status: the seeded description of a finished one is returned, and replaced."""
    seed = standard_seed()
    seed["pipelines"][0]["executions"][2]["description"] = "nightly run"
    emulator.seed(seed)
    ops = model["operations"]

    def describe(execution):
        status, answer = emulator.call("DescribePipelineExecution", {"PipelineExecutionArn": execution})
        assert status == 200, answer
        assert conforms(model, ops["DescribePipelineExecution"]["output"]["shape"], answer) == [], answer
        return answer

    assert "PipelineExecutionDescription" not in describe(B)
    update = {"PipelineExecutionArn": DONE, "PipelineExecutionDisplayName": "nightly-1",
              "PipelineExecutionDescription": describe(DONE)["PipelineExecutionDescription"] + "; stopped",
              "ParallelismConfiguration": {"MaxParallelExecutionSteps": 2}}
    assert conforms(model, ops["UpdatePipelineExecution"]["input"]["shape"], update) == []
    status, answer = emulator.call("UpdatePipelineExecution", update)
    assert (status, answer) == (200, {"PipelineExecutionArn": DONE})
    assert conforms(model, ops["UpdatePipelineExecution"]["output"]["shape"], answer) == []
    described = describe(DONE)
    assert {key: described[key] for key in update} == update
    executions = emulator.state()["executions"]
    assert executions[DONE]["description"] == "nightly run; stopped" and executions[B]["description"] is None


@pytest.mark.parametrize("request_, faults, error", [
    ({"PipelineExecutionDescription": "x" * 3073}, {}, "ValidationException"),
    # 1,537 characters, 3,074 UTF-16 units: Java counts the units.
    ({"PipelineExecutionDescription": "\U0001F6D1" * 1537}, {}, "ValidationException"),
    ({"PipelineExecutionDescription": "stopped\nby the stopper"}, {}, "ValidationException"),
    ({"PipelineExecutionArn": None}, {}, "ValidationException"),
    ({"PipelineExecutionArn": A + "0"}, {}, "ResourceNotFound"),
    ({}, {"accessDenied": 1}, "AccessDeniedException"),
    ({}, {"throttle": 1}, "ThrottlingException"),
], ids=["too-long", "too-long-in-utf16", "newline", "no-arn", "unknown-arn", "access-denied", "throttled"])
def test_an_update_pipeline_execution_out_of_the_model_or_faulted_is_refused(emulator, request_, faults, error):
    emulator.faults(operations=["UpdatePipelineExecution"], **faults)
    assert emulator.call("DescribePipelineExecution", {"PipelineExecutionArn": A})[0] == 200, "faults: the update's"
    body = {key: value for key, value in {"PipelineExecutionArn": A, **request_}.items() if value is not None}
    status, answer = emulator.call("UpdatePipelineExecution", body)
    assert status == 400 and answer["__type"] == error, answer
    assert emulator.state()["executions"][A]["description"] is None


def test_a_failed_search_for_tagged_pipelines_judges_nothing_and_fails_the_run(emulator, start_function):
    """Without every tag, an exempt pipeline could be taken for an untagged one
    and get the default: nothing is judged, nothing stopped, and the run fails
    (so Lambda retries it, and the dead-letter queue sees it)."""
    emulator.seed(guard_seed())
    emulator.faults(accessDenied=1, operations=["Search"])
    fn = start_function(env={"DEFAULT_MAX_RUNTIME": "1h"})
    inv = fn.invoke({"Guard": True})
    assert not inv.ok and inv.error_type == "AccessDenied", inv.payload
    assert [c["body"]["Resource"] for c in emulator.state()["calls"]] == ["Pipeline"]


def test_a_run_whose_search_failed_is_retried_and_then_stops_each_runaway_once(emulator, start_function):
    """SageMaker fails the search (a 5xx, no SDK retry): the run fails with
    UpstreamError and stops nothing; Lambda's retry of the run stops each
    runaway once."""
    emulator.seed(guard_seed())
    fn = start_function(env={"AWS_MAX_ATTEMPTS": "1"})
    emulator.faults(error5xx=1, operations=["Search"])
    first = fn.invoke({"Guard": True})
    assert not first.ok and first.error_type == "UpstreamError", first.payload
    assert emulator.state()["stopRequests"] == []
    again = fn.invoke({"Guard": True})
    assert again.ok, again.payload
    assert_stopped_once(emulator.state(), [RUNAWAY, OUTSIDE])


def test_an_execution_stuck_stopping_is_reported_and_with_force_its_callback_step_failed(emulator, start_function):
    """Stopping for 120 minutes (past the 15-minute grace): a callback step
    whose consumer never answers holds it. The guard reports it (reply, log,
    metric), sends no second stop, and with Force fails the step."""
    from test_operations import emf_records, metric_values
    step = {"name": "WaitForApproval", "type": "Callback", "callbackToken": "Zz9stuck01", "queueUrl": QUEUE}
    stuck = arn("nightly-training", "stuck0000001")
    seed = guard_seed()
    seed["pipelines"][0]["executions"].append(
        {"id": "stuck0000001", "status": "Stopping", "startedMinutesAgo": 120, "steps": [step]})
    # An exempt pipeline's stop, stuck as long: not the guard's to report or force.
    exempt_step = dict(step, name="Approve", callbackToken="Ex3mpt0001")
    seed["pipelines"][2]["executions"].append(
        {"id": "stuck0000002", "status": "Stopping", "startedMinutesAgo": 120, "steps": [exempt_step]})
    emulator.seed(seed)
    fn = start_function()
    plain = fn.invoke({"Guard": True})
    assert plain.ok, plain.payload
    assert plain.payload["Guard"]["ExecutionsStuckStopping"] == [
        {"PipelineExecutionArn": stuck, "StoppingMinutes": 120}]
    [entry] = [e for e in plain.payload["Executions"] if e["PipelineExecutionArn"] == stuck]
    assert entry["Outcome"] == "AlreadyStopping" and "Guard" not in entry, entry
    assert [s["StepName"] for s in entry["BlockingSteps"]] == ["WaitForApproval"]
    assert "Force" not in entry["BlockingSteps"][0]
    assert stuck not in emulator.state()["stopTokens"], "not stopped again"
    assert calls(emulator, "SendPipelineExecutionStepFailure") == []
    forced = fn.invoke({"Guard": True, "Force": True, "WaitSeconds": 5})
    assert forced.ok, forced.payload
    [entry] = [e for e in forced.payload["Executions"] if e["PipelineExecutionArn"] == stuck]
    assert entry["BlockingSteps"][0]["Force"] == "Sent" and entry["Status"] == "Stopped", entry
    [sent] = calls(emulator, "SendPipelineExecutionStepFailure")
    assert sent["CallbackToken"] == "Zz9stuck01"
    assert stuck not in emulator.state()["stopTokens"]
    exempt = arn("long-backfill", "stuck0000002")
    assert exempt not in json.dumps(forced.payload) and emulator.status(exempt) == "Stopping"
    records = emf_records(fn)
    assert metric_values(records[0])["ExecutionsStuckStopping"] == 1
    assert "StopsFailed" not in metric_values(records[0]), "reported, not a failed stop"
    assert any("stuck stopping" in line and stuck in line for line in fn.process.final_logs())


def test_the_stopping_grace_can_be_switched_off(emulator, start_function):
    seed = guard_seed()
    seed["pipelines"][0]["executions"].append({"id": "stuck0000001", "status": "Stopping", "startedMinutesAgo": 120})
    emulator.seed(seed)
    fn = start_function(env={"STOPPING_GRACE": "off"})
    inv = fn.invoke({"Guard": True})
    assert inv.ok and inv.payload["Guard"]["ExecutionsStuckStopping"] == [], inv.payload
    assert [c for c in calls(emulator, "Search") if "Stopping" in json.dumps(c)] == []
