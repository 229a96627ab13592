"""End to end: the fixes of issue 12's adversarial review, each shown through
the real binary (as the function under the local Runtime API, and as the
CLI) against the emulator. Every test here fails against the code before
the fix (7f1b55f): run with STOPPER_BIN pointing at that build to see it."""

import json
import time

import pytest

from conftest import A, B, OTHER, PIPELINE, load_event, standard_seed
from test_cli import cli

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/approvals"
CALLBACK_TOKEN = "Cb7Tok3nQZ"  # 10 letters and digits, as SageMaker's are
MISSING = A.replace("k7xvw1b9q2hj", "n0tth3r3000")
ALICE = "arn:aws:iam::123456789012:user/alice"


# -- helpers -------------------------------------------------------------------

def seed_callback(emulator):
    """A (running a Callback step that nobody answers) and B, both Executing."""
    emulator.seed({"pipelines": [{"name": PIPELINE, "executions": [
        {"id": "k7xvw1b9q2hj", "steps": [
            {"name": "WaitForApproval", "type": "Callback", "callbackToken": CALLBACK_TOKEN, "queueUrl": QUEUE}]},
        {"id": "p3m8zq0d5c1r"},
    ]}]})


def http_api(body, headers=None, authorizer=None, time_epoch=None):
    """An HTTP API (payload 2.0) POST whose body is `body` (JSON text, as sent)."""
    event = load_event("http-api.json")
    event["body"], event["isBase64Encoded"] = body, False
    event["headers"].pop("content-length", None)
    event["headers"].update(headers or {})
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    if time_epoch is not None:
        event["requestContext"]["timeEpoch"] = time_epoch
    return event


def function_url(body, time_epoch=None):
    event = load_event("function-url.json")
    event["body"], event["isBase64Encoded"] = body, False
    if time_epoch is not None:
        event["requestContext"]["timeEpoch"] = time_epoch
    return event


def sns(message_text):
    """An SNS notification whose Message is `message_text` (not an alarm)."""
    event = load_event("alarm-sns.json")
    event["Records"][0]["Sns"]["Subject"] = "stop request"
    event["Records"][0]["Sns"]["Message"] = message_text
    return event


def eventbridge_raw(detail_text):
    """The raw JSON text of an EventBridge custom event whose detail is
    `detail_text`, verbatim (json.dumps cannot write a duplicate key)."""
    event = load_event("eventbridge-custom.json")
    event["detail"] = "@@DETAIL@@"
    return json.dumps(event).replace('"@@DETAIL@@"', detail_text).encode()


def untouched(emulator):
    """Nothing was called, and A and B still run."""
    state = emulator.state()
    assert state["calls"] == [], state["calls"]
    assert state["executions"][A]["status"] == "Executing"
    assert state["executions"][B]["status"] == "Executing"


def http_reply(inv):
    assert inv.ok, inv.payload
    return inv.payload["statusCode"], json.loads(inv.payload["body"])


def all_logs(fn):
    """Every line the function process wrote. It is stopped and its output
    read to the end (a thread drains the pipe, so a line written just before
    the reply can arrive after it): invoke nothing on `fn` afterwards."""
    return fn.process.final_logs()


def stop_lines(lines):
    return [line for line in lines if " stop " in f" {line} " or line.rstrip().endswith(" stop")]


# -- 1. a present but empty target is refused, never the default pipeline ------

EMPTY_TARGETS = [
    '{"PipelineExecutionArns": []}',
    '{"PipelineExecutionArns": null}',
    '{"PipelineExecutionArn": null}',
    '{"PipelineName": null}',
    '{"PipelineName": ""}',
]


def shaped(shape, text):
    """The request `text` as a direct invocation, an EventBridge custom event's
    detail, or an SNS message (not an alarm)."""
    if shape == "direct":
        return json.loads(text)
    if shape == "eventbridge":
        return {**load_event("eventbridge-custom.json"), "detail": json.loads(text)}
    return sns(text)


@pytest.mark.parametrize("shape", ["direct", "eventbridge", "sns"])
def test_an_empty_target_is_refused_not_swept_as_the_default_pipeline(emulator, start_function, shape):
    """A script whose filter found nothing sends `[]`: before the fix that
    fell back to DEFAULT_PIPELINE_NAME and stopped every running execution.
    Only a request with no target field at all (`{}`) still does, as documented."""
    fn = start_function(env={"DEFAULT_PIPELINE_NAME": PIPELINE})
    for body in EMPTY_TARGETS:
        emulator.seed(standard_seed())
        inv = fn.invoke(shaped(shape, body))
        assert not inv.ok and inv.error_type == "ValidationError", f"{shape} {body}: {inv.payload}"
        untouched(emulator)
    emulator.seed(standard_seed())
    inv = fn.invoke(shaped(shape, "{}"))
    assert inv.ok, inv.payload
    assert sorted(e["PipelineExecutionArn"] for e in inv.payload["Executions"]) == [A, B]
    state = emulator.state()
    assert state["stopCalls"] == {A: 1, B: 1}
    assert state["executions"][OTHER]["status"] == "Executing"


# -- 2. a key given twice is refused ------------------------------------------

DUPLICATE = f'{{"PipelineExecutionArn": "{A}", "PipelineExecutionArn": "{B}"}}'


def test_a_key_given_twice_is_refused_in_every_envelope(emulator, start_function):
    """Which of two values wins is the parser's choice, not the caller's:
    a request that names two targets in one field is refused, not half-obeyed."""
    fn = start_function()
    status, body = http_reply(fn.invoke(http_api(DUPLICATE)))
    assert status == 400, body
    assert body["Error"]["Code"] == "ValidationError" and "duplicate field" in body["Error"]["Message"], body
    # The two spellings of a field are one field: given both, it is given twice.
    aliased = f'{{"PipelineExecutionArn": "{A}", "pipelineExecutionArn": "{B}"}}'
    status, body = http_reply(fn.invoke(http_api(aliased)))
    assert status == 400 and "duplicate field" in body["Error"]["Message"], body
    inv = fn.invoke(sns(DUPLICATE))
    assert not inv.ok and inv.error_type == "ValidationError", inv.payload
    assert "duplicate field" in inv.payload["errorMessage"], inv.payload
    inv = fn.invoke(eventbridge_raw(DUPLICATE))
    assert not inv.ok and inv.error_type == "ValidationError", inv.payload
    assert "duplicate field" in inv.payload["errorMessage"], inv.payload
    untouched(emulator)


# -- 3. no secret reaches a reply or the logs, at any level ---------------------

CALLER_ACCESS_KEY = "AKIACALLERSECRET"
CALLER_SIGNATURE = "5ec2e7a1f0c0ffee5ec2e7a1f0c0ffee5ec2e7a1f0c0ffee5ec2e7a1f0c0ffee"
CALLER_AUTHORIZATION = (f"AWS4-HMAC-SHA256 Credential={CALLER_ACCESS_KEY}/20261122/us-east-1/execute-api/aws4_request, "
                        f"SignedHeaders=host;x-amz-date, Signature={CALLER_SIGNATURE}")
CALLER_SESSION_TOKEN = "IQoJb3JpZ2luX2VjSessionTokenOfTheCaller0123456789zz"
CALLER_COOKIE = "CallerSessionCookie7Qx9secret"
CALLER_IAM_ACCESS_KEY = "ASIACALLERIAMKEY0042"  # the authorizer's accessKey of the caller's credential
FUNCTION_ACCESS_KEY = "AKIDLOCALEXAMPLE"
FUNCTION_SECRET_KEY = "local-secret-not-a-real-key"
SECRETS = (CALLBACK_TOKEN, CALLER_AUTHORIZATION, CALLER_ACCESS_KEY, CALLER_SIGNATURE, CALLER_SESSION_TOKEN,
           CALLER_COOKIE, CALLER_IAM_ACCESS_KEY, FUNCTION_ACCESS_KEY, FUNCTION_SECRET_KEY)


def assert_no_secret(text, where):
    for secret in SECRETS:
        if secret in text:
            at = text.index(secret)
            pytest.fail(f"{secret!r} is in the {where}: ...{text[max(0, at - 150):at + 150]}...")


def sent_failures(emulator):
    return [c["body"] for c in emulator.state()["calls"] if c["operation"] == "SendPipelineExecutionStepFailure"]


def secret_handling_paths(emulator, fn):
    """Runs each path that handles a callback token or a caller's credential,
    checking that it really did (so the secrecy checks are not empty); returns
    the replies."""
    replies = []

    # Force succeeds, asked over HTTP with a SigV4 authorization header, a
    # session token, cookies and an IAM authorizer naming the access key.
    seed_callback(emulator)
    event = http_api(json.dumps({"PipelineExecutionArn": A, "Force": True}),
                     headers={"authorization": CALLER_AUTHORIZATION, "x-amz-security-token": CALLER_SESSION_TOKEN,
                              "cookie": f"session={CALLER_COOKIE}"},
                     authorizer={"iam": {"accessKey": CALLER_IAM_ACCESS_KEY, "accountId": "123456789012",
                                         "callerId": "AIDAALICE", "principalOrgId": None, "userArn": ALICE,
                                         "userId": "AIDAALICE"}})
    event["cookies"] = [f"session={CALLER_COOKIE}"]
    inv = fn.invoke(event)
    status, body = http_reply(inv)
    assert status == 200 and body["BlockingSteps"][0]["Force"] == "Sent", body
    assert [s["CallbackToken"] for s in sent_failures(emulator)] == [CALLBACK_TOKEN]
    replies.append(inv)

    # Force refused by SageMaker: SendPipelineExecutionStepFailure denied, or
    # throttled past the SDK's attempts.
    for fault in ({"accessDenied": 1000}, {"throttle": 1000}):
        seed_callback(emulator)
        emulator.faults(**fault, operations=["SendPipelineExecutionStepFailure"])
        inv = fn.invoke({"PipelineExecutionArn": A, "Force": True})
        emulator.faults()
        assert not inv.ok, inv.payload  # the target counts as failed
        assert sent_failures(emulator) and all(s["CallbackToken"] == CALLBACK_TOKEN for s in sent_failures(emulator))
        replies.append(inv)

    # A dry run with Force: the step and its token are listed, nothing sent.
    seed_callback(emulator)
    inv = fn.invoke({"PipelineExecutionArn": A, "DryRun": True, "Force": True})
    assert inv.ok and inv.payload["BlockingSteps"][0]["Force"] == "WouldSend", inv.payload
    assert sent_failures(emulator) == []
    replies.append(inv)

    # Wait, which lists the blocking steps (tokens and all) again at its end.
    seed_callback(emulator)
    inv = fn.invoke({"PipelineExecutionArn": A, "WaitSeconds": 1})
    assert inv.ok and inv.payload["Status"] == "Stopping", inv.payload
    listings = [c for c in emulator.state()["calls"] if c["operation"] == "ListPipelineExecutionSteps"]
    assert len(listings) >= 2, "Wait did not list the steps again"
    replies.append(inv)
    return replies


LEVELS = {f"AWS_LAMBDA_LOG_LEVEL={level}": {"AWS_LAMBDA_LOG_LEVEL": level}
          for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")}
LEVELS["RUST_LOG=trace"] = {"RUST_LOG": "trace"}
# level -> the severities its lines may have, and the one that must appear
# (proof that logging is on at that level; these paths log nothing below INFO
# of their own, so DEBUG and TRACE show INFO lines too, and ERROR only the
# runtime's ERROR line for a failed invocation).
SEVERITIES = ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")
SHOWN = {"TRACE": "INFO", "DEBUG": "INFO", "INFO": "INFO", "WARN": "WARN", "ERROR": "ERROR"}


@pytest.mark.parametrize("level", LEVELS)
def test_no_callback_token_or_credential_in_any_reply_or_log_line_at_log_level(emulator, start_function, level):
    """Force (sent, denied, throttled), a dry run with Force, Wait's second
    listing and an HTTP request with SigV4 authorization, session token,
    cookies and an IAM authorizer, through one function process at `level`:
    no callback token or credential (the caller's or the function's) is in a
    reply or a log line. At TRACE, lambda_runtime would log the raw event and
    the SDK its requests and responses, were they not capped."""
    # Two attempts: a retry is exercised, and the throttled path stays quick.
    fn = start_function(env={**LEVELS[level], "AWS_MAX_ATTEMPTS": "2"})
    replies = secret_handling_paths(emulator, fn)
    for inv in replies:
        assert_no_secret(json.dumps(inv.payload), "reply")
    name = level.split("=")[1].upper()
    lines = all_logs(fn)
    assert_no_secret("\n".join(lines), "logs")
    severities = [line.split()[0] for line in lines if line.split() and line.split()[0] in SEVERITIES]
    assert SHOWN[name] in severities, f"no {SHOWN[name]} line: logging is not at {level}\n" + "\n".join(lines[-20:])
    allowed = SEVERITIES[:SEVERITIES.index(name) + 1]
    assert set(severities) <= set(allowed), f"{level} let through {set(severities) - set(allowed)}"


def test_the_cli_with_debug_or_rust_log_trace_prints_no_callback_token_or_credential(emulator):
    """The command line's Force (sent and denied), dry run with Force and Wait,
    with --debug (and once with RUST_LOG=trace): neither stdout nor stderr
    carries the callback token or the credentials."""
    runs = []
    for logging_on, env in ((["--debug"], None), ([], {"RUST_LOG": "trace"})):
        for args, fault in ((["--force"], None), (["--force"], {"accessDenied": 1000}),
                            (["--force", "--dry-run"], None), (["--wait-seconds", "1"], None)):
            seed_callback(emulator)
            if fault:
                emulator.faults(**fault, operations=["SendPipelineExecutionStepFailure"])
            run = cli(emulator, "--pipeline-execution-arn", A, *args, *logging_on, env=env)
            emulator.faults()
            assert run.stdout.strip(), (args, run.returncode, run.stderr[-500:])
            assert run.stderr.strip(), f"{logging_on or env}: nothing logged"
            assert_no_secret(run.stdout, f"CLI stdout of {args}")
            assert_no_secret(run.stderr, f"CLI stderr of {args}")
            runs.append((args, fault, run.returncode))
            if "--force" in args and "--dry-run" not in args:
                assert [s["CallbackToken"] for s in sent_failures(emulator)] == [CALLBACK_TOKEN]
    assert [code for _, fault, code in runs if fault] and all(code != 0 for _, fault, code in runs if fault), runs


# -- 4. a huge field name gets a small error ----------------------------------

def test_a_megabyte_field_name_gets_a_small_400_and_the_function_carries_on(emulator, start_function):
    fn = start_function()
    body = '{"' + "x" * 1_000_000 + f'": 1, "PipelineExecutionArn": "{A}"}}'
    inv = fn.invoke(http_api(body))
    assert inv.ok, str(inv.payload)[:300]
    assert len(json.dumps(inv.payload)) < 10_000, f"a reply of {len(json.dumps(inv.payload))} bytes"
    status, reply = http_reply(inv)
    assert status == 400 and reply["Error"]["Code"] == "ValidationError", reply
    assert emulator.state()["calls"] == []
    inv = fn.invoke(load_event("direct.json"))
    assert inv.ok and inv.payload == {"PipelineExecutionArn": A, "Outcome": "StopRequested"}, inv.payload
    assert fn.process.alive()
    lines = all_logs(fn)
    assert any("refused" in line for line in lines), lines
    assert max(map(len, lines)) < 10_000, f"a log line of {max(map(len, lines))} characters"


# -- 5. real ARNs longer than 256 characters ----------------------------------

def test_a_256_character_pipeline_name_execution_is_stopped_by_its_arn(emulator, start_function):
    """A pipeline name may have 256 characters, so real execution ARNs exceed
    the 256 that older API reference pages give (the service model says 2048)."""
    name = "Nightly-" + "a1B2c3-" * 35 + "x" * 3
    name += "z" * (256 - len(name))
    assert len(name) == 256
    emulator.seed({"maxArnLength": 2048, "pipelines": [{"name": name, "executions": [{"id": "l0ngrun00001"}]}]})
    # SageMaker (and the emulator) write the pipeline's name lower-cased in its ARNs.
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{name.lower()}/execution/l0ngrun00001"
    assert len(arn) > 300 and arn in emulator.state()["executions"]
    fn = start_function()
    inv = fn.invoke({"PipelineExecutionArn": arn})
    assert inv.ok and inv.payload == {"PipelineExecutionArn": arn, "Outcome": "StopRequested"}, inv.payload
    assert emulator.state()["stopCalls"] == {arn: 1}


# -- 6. API Gateway's integration timeout bounds Wait ---------------------------

def test_wait_behind_api_gateway_replies_before_its_29_s_timeout_but_a_function_url_waits(emulator, start_function):
    """API Gateway answers 503 itself 29 s after it received the request: the
    reply (and Wait) must end before then, counted from timeEpoch. A function
    URL has no such timeout, so its wait is not cut short."""
    seed_callback(emulator)
    fn = start_function(timeout_seconds=60)
    received = int(time.time() * 1000) - 25_000
    started = time.perf_counter()
    try:
        inv = fn.invoke(http_api(json.dumps({"PipelineExecutionArn": A, "Wait": True}), time_epoch=received),
                        wait_seconds=8)
    except TimeoutError:
        pytest.fail("no reply 8 s after an HTTP API request received 25 s earlier (API Gateway gave up at 4 s)")
    elapsed = time.perf_counter() - started
    replied_ms = time.time() * 1000
    assert replied_ms < received + 29_000, f"replied {replied_ms - received - 29_000:.0f} ms after API Gateway's 503"
    assert elapsed < 4, elapsed
    status, body = http_reply(inv)
    assert status == 200 and body["Status"] == "Stopping", body
    assert body["BlockingSteps"][0]["StepName"] == "WaitForApproval"

    # The same wait through a function URL, with the same receipt time.
    seed_callback(emulator)
    started = time.perf_counter()
    inv = fn.invoke(function_url(json.dumps({"PipelineExecutionArn": A, "WaitSeconds": 6}), time_epoch=received),
                    wait_seconds=10)
    elapsed = time.perf_counter() - started
    status, body = http_reply(inv)
    assert status == 200 and body["Status"] == "Stopping", body
    # Under API Gateway's budget (3.5 s) polling ends at 1.75 s, as the next
    # poll (at 3.75 s) would not fit; the function URL polls on, and ends
    # within the 6 s asked for.
    assert 3.0 < elapsed < 6.8, elapsed


def test_wait_seconds_is_waited_out_before_replying_stopping(emulator, start_function):
    seed_callback(emulator)
    fn = start_function(timeout_seconds=30)
    started = time.perf_counter()
    inv = fn.invoke(function_url(json.dumps({"PipelineExecutionArn": A, "WaitSeconds": 6})), wait_seconds=10)
    elapsed = time.perf_counter() - started
    status, body = http_reply(inv)
    assert status == 200 and body["Status"] == "Stopping", body
    assert 5.0 < elapsed < 6.8, elapsed


# -- 7. the HTTP caller is named in logs and in Force's reason ------------------

@pytest.mark.parametrize("authorizer, caller", [
    ({"iam": {"accessKey": "ASIAEXAMPLEKEY", "accountId": "123456789012", "callerId": "AIDAALICE",
              "principalOrgId": None, "userArn": ALICE, "userId": "AIDAALICE"}}, ALICE),
    ({"jwt": {"claims": {"sub": "8c2f1a7e-alice", "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ex4mple"},
              "scopes": None}},
     "jwt sub 8c2f1a7e-alice iss https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ex4mple"),
], ids=["iam", "jwt"])
def test_force_names_the_http_caller_in_the_step_failure_and_the_log(emulator, start_function, authorizer, caller):
    seed_callback(emulator)
    fn = start_function()
    status, body = http_reply(fn.invoke(http_api(json.dumps({"PipelineExecutionArn": A, "Force": True}),
                                                 authorizer=authorizer)))
    assert status == 200 and body["BlockingSteps"][0]["Force"] == "Sent", body
    [sent] = [c["body"] for c in emulator.state()["calls"] if c["operation"] == "SendPipelineExecutionStepFailure"]
    assert caller in sent["FailureReason"], sent["FailureReason"]
    assert len(sent["FailureReason"]) <= 256
    lines = all_logs(fn)
    [stop] = [line for line in stop_lines(lines) if A in line]
    assert "caller" in stop and caller in stop, stop


# -- 8. an unreadable function ARN leaves the configured scope, not none --------

@pytest.mark.parametrize("function_arn", ["", "arn:aws:lambda:::function:x"], ids=["empty", "no-region-no-account"])
def test_an_unreadable_function_arn_still_keeps_targets_in_the_configured_region(emulator, start_function, function_arn):
    fn = start_function(function_arn=function_arn)
    elsewhere = [
        A.replace(":us-east-1:", ":eu-west-1:"),
        A.replace("arn:aws:", "arn:aws-cn:").replace(":123456789012:", ":999999999999:"),
    ]
    for arn in elsewhere:
        inv = fn.invoke({"PipelineExecutionArn": arn})
        assert not inv.ok and inv.error_type == "AccessDenied", f"{arn}: {inv.payload}"
    untouched(emulator)
    # Fail closed, not fail everything: the configured region still works.
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert inv.ok and inv.payload["Outcome"] == "StopRequested", inv.payload
    lines = all_logs(fn)
    assert any(line.lstrip().startswith("WARN") and "configured scope" in line for line in lines), lines


# -- 9. configuration errors are named as such ----------------------------------

def test_an_endpoint_without_a_scheme_is_a_configuration_error(emulator, start_function):
    fn = start_function(sagemaker_url="127.0.0.1:9")
    inv = fn.invoke({"PipelineExecutionArn": A})
    assert not inv.ok and inv.error_type == "ConfigurationError", inv.payload
    assert "AWS_ENDPOINT_URL_SAGEMAKER" in inv.payload["errorMessage"], inv.payload


def test_missing_credentials_are_a_configuration_error_told_at_once(emulator, start_function):
    fn = start_function(env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
    inv = fn.invoke({"PipelineExecutionArn": A}, timeout_seconds=10, wait_seconds=12)
    assert not inv.ok and inv.error_type == "ConfigurationError", inv.payload
    assert "credentials" in inv.payload["errorMessage"], inv.payload
    assert inv.duration_ms < 3000, inv.duration_ms  # the deadline was 10 s away
    untouched(emulator)


def test_the_cli_without_credentials_or_with_a_schemeless_endpoint_exits_253(emulator):
    run = cli(emulator, "--pipeline-execution-arn", A, env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
    assert run.returncode == 253, (run.returncode, run.stderr)
    assert "credentials" in run.stderr, run.stderr
    run = cli(emulator, "--pipeline-execution-arn", A, "--endpoint-url", "127.0.0.1:9", endpoint_env=False)
    assert run.returncode == 253, (run.returncode, run.stderr)
    assert "--endpoint-url" in run.stderr, run.stderr
    untouched(emulator)


# -- 10. the CLI: scope, terminal safety, every result printed ------------------

def test_the_cli_refuses_an_execution_in_another_region(emulator):
    run = cli(emulator, "--region", "us-east-1", "--pipeline-execution-arn", A.replace(":us-east-1:", ":eu-west-1:"))
    assert run.returncode != 0 and "AccessDenied" in run.stderr, (run.returncode, run.stderr)
    untouched(emulator)


def test_the_cli_refuses_an_execution_outside_its_credentials_account(emulator):
    emulator.faults(stsAccount="999999999999")
    run = cli(emulator, "--pipeline-execution-arn", A)
    assert run.returncode != 0 and "AccessDenied" in run.stderr, (run.returncode, run.stderr)
    assert emulator.state()["stsCalls"] >= 1
    untouched(emulator)


def test_the_cli_never_prints_terminal_control_characters(emulator):
    hostile = A + "\x1b]0;owned\x07\x1b[2J"
    for output in ("json", "text"):
        run = cli(emulator, "--pipeline-execution-arn", hostile, "--output", output)
        # No real ARN has a control character: refused before any call.
        assert run.returncode == 252 and "ValidationError" in run.stderr, (run.returncode, run.stderr)
        for stream in (run.stdout, run.stderr):
            assert "\x1b" not in stream and "\x07" not in stream, repr(stream)
        # Escaped, not dropped: the operator sees what was given.
        assert "]0;owned" in run.stderr and "[2J" in run.stderr, run.stderr
    assert emulator.state()["calls"] == []


def test_the_cli_prints_every_targets_result_when_one_fails(emulator):
    run = cli(emulator, "--pipeline-execution-arn", A, "--pipeline-execution-arn", MISSING, "--output", "json")
    assert run.returncode == 254, (run.returncode, run.stderr)
    assert run.stdout.strip(), f"nothing on stdout; stderr: {run.stderr}"
    outcomes = {e["PipelineExecutionArn"]: e for e in json.loads(run.stdout)["Executions"]}
    assert set(outcomes) == {A, MISSING}, run.stdout
    assert outcomes[A]["Outcome"] == "StopRequested"
    assert outcomes[MISSING]["Outcome"] == "Failed" and outcomes[MISSING]["Error"]["Code"] == "ResourceNotFound"
    assert emulator.state()["stopCalls"] == {A: 1}

    emulator.seed(standard_seed())
    run = cli(emulator, "--pipeline-execution-arn", A, "--pipeline-execution-arn", MISSING, "--output", "text")
    assert run.returncode == 254, (run.returncode, run.stderr)
    lines = run.stdout.splitlines()
    assert any(line.startswith(f"{A}\tStopRequested") for line in lines), run.stdout
    assert any(line.startswith(f"{MISSING}\tFailed") and "ResourceNotFound" in line for line in lines), run.stdout


# -- the adversarial review's findings, through the binary ---------------------

def test_an_alarm_notification_carrying_a_request_is_refused_not_read_as_the_default(emulator, start_function):
    """An SNS message with AlarmName and request fields was read as an alarm:
    the fields were dropped, and the default pipeline stopped instead of a
    dry run of A."""
    fn = start_function(env={"DEFAULT_PIPELINE_NAME": "prod-inference"})
    message = json.dumps({"AlarmName": "manual-stop", "NewStateValue": "ALARM", "PipelineExecutionArn": A,
                          "DryRun": True})
    inv = fn.invoke(sns(message))
    assert not inv.ok and inv.payload["errorType"] == "ValidationError", inv.payload
    assert "request field" in inv.payload["errorMessage"], inv.payload
    assert emulator.state()["calls"] == []
    assert emulator.status(OTHER) == "Executing"


def test_a_multi_byte_body_never_panics_and_never_echoes_the_event(emulator, start_function):
    """The envelope's size was checked by slicing the event at a byte index,
    which panicked inside a multi-byte character: the panic's message (the
    event, cookies and authorization header included) went to the logs and
    into the invocation's error."""
    fn = start_function()
    for pad in range(4):
        body = '{"x": "' + "a" * pad + "é" * 50_000 + '"}'
        event = http_api(body, headers={"authorization": "AWS4-HMAC-SHA256 Credential=AKIASECRETCALLER/x"})
        event["cookies"] = ["session=SECRETSESSIONCOOKIE"]
        inv = fn.invoke(event)
        status, reply = http_reply(inv)
        assert status == 400 and reply["Error"]["Code"] == "ValidationError", reply
    lines = "\n".join(fn.process.final_logs())
    assert "SECRETSESSIONCOOKIE" not in lines and "AKIASECRETCALLER" not in lines
    assert "panic" not in lines.lower(), lines
    assert emulator.state()["calls"] == []


def test_a_null_dry_run_is_refused_not_a_real_stop(emulator, start_function):
    fn = start_function(env={"DEFAULT_PIPELINE_NAME": PIPELINE})
    for request in ({"PipelineExecutionArn": A, "DryRun": None}, {"DryRun": None}):
        inv = fn.invoke(request)
        assert not inv.ok and inv.payload["errorType"] == "ValidationError", inv.payload
    untouched(emulator)


def test_the_cli_never_falls_back_to_the_default_and_flags_replace_the_json_targets(emulator):
    for flags in (["--dry-run"], ["--wait-seconds", "1"], ["--force"]):
        run = cli(emulator, *flags, env={"DEFAULT_PIPELINE_NAME": PIPELINE})
        assert run.returncode == 252, (flags, run.returncode, run.stderr)
    untouched(emulator)
    # Two --pipeline-execution-arn flags replace the JSON's ARN: A is not stopped.
    run = cli(emulator, "--cli-input-json", json.dumps({"PipelineExecutionArn": A}),
              "--pipeline-execution-arn", B, "--pipeline-execution-arn", OTHER, "--dry-run")
    assert run.returncode == 0, run.stderr
    named = sorted(e["PipelineExecutionArn"] for e in json.loads(run.stdout)["Executions"])
    assert named == sorted([B, OTHER]), run.stdout
