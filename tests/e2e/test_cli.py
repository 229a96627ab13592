"""End to end: the same binary as a command-line tool (no
AWS_LAMBDA_RUNTIME_API), against the emulator through the standard AWS
configuration (AWS_ENDPOINT_URL_SAGEMAKER, or --endpoint-url)."""

import json
import os
import subprocess

from conftest import A, B, DONE, OTHER, PIPELINE, ROOT, binary


def cli(emulator, *args, env=None, stdin=None, endpoint_env=True):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUST_LOG"))}
    environ.update({
        "AWS_ACCESS_KEY_ID": "AKIDLOCALEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "local-secret-not-a-real-key",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })
    if endpoint_env:
        environ["AWS_ENDPOINT_URL_SAGEMAKER"] = emulator.url
    # The CLI learns its credentials' account from STS: the emulator answers.
    environ["AWS_ENDPOINT_URL_STS"] = emulator.url
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run([binary(), *args], env=environ, input=stdin, capture_output=True, text=True, timeout=30)


def test_the_cli_stops_an_execution_and_prints_the_reply(emulator):
    run = cli(emulator, "--pipeline-execution-arn", A)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"PipelineExecutionArn": A, "Outcome": "StopRequested"}
    assert run.stderr == ""
    state = emulator.state()
    assert state["stopCalls"] == {A: 1}
    assert state["executions"][B]["status"] == "Executing"
    # The command line writes no reason on the execution (the function does).
    assert state["executions"][A]["description"] is None


def test_the_cli_processes_an_event_file_exactly_as_the_lambda(emulator):
    run = cli(emulator, "--event", str(ROOT / "events" / "alarm-sns.json"), "--output", "text",
              "--endpoint-url", emulator.url, "--region", "us-east-1", endpoint_env=False)
    assert run.returncode == 0, run.stderr
    lines = sorted(run.stdout.splitlines())
    assert lines == sorted([f"{A}\tStopRequested\t", f"{B}\tStopRequested\t"])
    assert emulator.state()["stopCalls"] == {A: 1, B: 1}
    assert emulator.status(OTHER) == "Executing"


def test_cli_input_json_dry_run_and_wait(emulator, tmp_path):
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"PipelineName": PIPELINE}))
    run = cli(emulator, "--cli-input-json", f"file://{request}", "--dry-run")
    assert run.returncode == 0, run.stderr
    reply = json.loads(run.stdout)
    assert reply["DryRun"] is True and {e["Outcome"] for e in reply["Executions"]} == {"WouldStop"}
    assert emulator.state()["stopCalls"] == {}
    run = cli(emulator, "--pipeline-execution-arn", A, "--wait-seconds", "5")
    assert run.returncode == 0 and json.loads(run.stdout)["Status"] == "Stopped", run.stdout + run.stderr


def test_exit_codes_tell_bad_input_from_sagemaker_errors_and_a_finished_execution_is_only_looked_at(emulator):
    bad = cli(emulator, "--pipeline-execution-arn", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x")
    assert bad.returncode == 252 and "ValidationError" in bad.stderr and bad.stdout == ""
    usage = cli(emulator, "--frobnicate")
    assert usage.returncode == 252
    assert emulator.state()["calls"] == []
    missing = cli(emulator, "--pipeline-execution-arn", A.replace("k7xvw1b9q2hj", "n0tth3r3000"))
    assert missing.returncode == 254 and "ResourceNotFound" in missing.stderr
    finished = cli(emulator, "--pipeline-execution-arn", DONE)
    assert finished.returncode == 0 and json.loads(finished.stdout)["Outcome"] == "AlreadyFinished"
    for region in (None, ""):
        no_region = cli(emulator, "--pipeline-execution-arn", A, env={"AWS_REGION": region})
        assert no_region.returncode == 253 and "region" in no_region.stderr, no_region.stderr
    # The finished execution was looked at, not asked to stop, and nothing
    # changed state.
    state = emulator.state()
    assert state["stopCalls"] == {}, state["stopRequests"]
    assert DONE in {c["body"]["PipelineExecutionArn"] for c in state["calls"]
                    if c["operation"] == "DescribePipelineExecution"}
    assert state["executions"][A]["status"] == "Executing"


def test_help_and_skeleton_need_no_aws(emulator):
    help_ = cli(emulator, "--help")
    assert help_.returncode == 0 and "--pipeline-execution-arn" in help_.stdout
    skeleton = cli(emulator, "--generate-cli-skeleton")
    assert skeleton.returncode == 0 and "PipelineExecutionArn" in json.loads(skeleton.stdout)
    assert emulator.state()["calls"] == []


def test_every_cli_error_takes_one_form_with_its_error_type(emulator):
    # A command line lexopt refuses, a request the function refuses, a path
    # given as JSON, and a configuration without a region: one form each.
    for args, env, code, error_type in (
        (["--frobnicate"], None, 252, "ValidationError"),
        (["--pipeline-execution-arn", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x"], None, 252,
         "ValidationError"),
        (["--cli-input-json", "request.json"], None, 252, "ValidationError"),
        (["--pipeline-execution-arn", A], {"AWS_REGION": None}, 253, "ConfigurationError"),
    ):
        run = cli(emulator, *args, env=env)
        assert run.returncode == code, (args, run.stderr)
        assert run.stderr.startswith(f"An error occurred ({error_type}): "), (args, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1 and run.stdout == "", (args, run.stderr)
    hint = cli(emulator, "--cli-input-json", "request.json")
    assert "to read a file, write file://PATH" in hint.stderr
    assert emulator.state()["calls"] == []
