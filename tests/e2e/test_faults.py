"""The fault matrix, end to end: each SageMaker fault against each trigger
branch (a direct invocation, an asynchronous EventBridge event, an HTTP
request). For each: the documented reply or errorType, before the function's
deadline; as many attempts as the retry policy implies, all carrying one
token; SageMaker's own error text in neither the reply nor the logs; nothing
stopped that was not named."""

import json
import time

import pytest

from conftest import A, B, DONE, OTHER, load_event, stop_tokens

# The function's timeout. Long enough for the SDK's 3 attempts with jittered
# backoff (up to ~3 s); the hang case uses a short one, to be quick.
TIMEOUT_SECONDS = 10
HANG_TIMEOUT_SECONDS = 3
# What the emulator answers as SageMaker's own error text: it must reach no
# reply and no log line (replies give the error code in the caller's terms).
SAGEMAKER_TEXT = "SAGEMAKER-OWN-TEXT-q8Zr2"
# The SDK's attempts per call (AWS_MAX_ATTEMPTS, default 3).
ATTEMPTS = 3

# fault -> (emulator faults, or an unreachable endpoint; the outcome: "stopped"
#           or the errorType; its HTTP status; the StopPipelineExecution
#           requests the emulator must log (attempts, faulted ones included),
#           as (at least, at most); and those that reach the execution)
FAULTS = {
    "throttling burst (2 answers)": ({"throttle": 2, "operations": ["StopPipelineExecution"]}, "stopped", 200,
                                     (3, 3), 1),
    "throttling that never ends": ({"throttle": 10_000}, "ThrottlingException", 429, (ATTEMPTS, ATTEMPTS), 0),
    "one 5xx": ({"error5xx": 1, "operations": ["StopPipelineExecution"]}, "stopped", 200, (2, 2), 1),
    "5xx that never ends": ({"error5xx": 10_000}, "UpstreamError", 502, (ATTEMPTS, ATTEMPTS), 0),
    # The cut reply's stop was applied: the retry is a replay of its token.
    "reply cut mid-body": ({"truncate": 1, "operations": ["StopPipelineExecution"]}, "stopped", 200, (2, 2), 2),
    "access denied": ({"accessDenied": 10_000}, "AccessDenied", 403, (1, 1), 0),
    "connection refused": ("http://127.0.0.1:9", "UpstreamUnavailable", 503, (0, 0), 0),
    # The first attempt is still held when the function gives up on it.
    # (None: the held attempt applies, with the same token, whenever its hang ends.)
    "answers after the deadline": ({"hangMs": 6000, "operations": ["StopPipelineExecution"]}, "UpstreamUnavailable",
                                   503, (1, ATTEMPTS), None),
}

# trigger -> whether it is HTTP. Each names A alone.
TRIGGERS = {
    "direct.json": False,  # synchronous direct invocation; identity = Lambda request id
    "sagemaker-status-change.json": False,  # asynchronous EventBridge event; identity = event id
    "http-api.json": True,  # HTTP API; identity = request id
}


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("fault", FAULTS)
def test_fault_gets_its_documented_answer_after_the_expected_attempts_with_one_token_and_no_sagemaker_text(
        emulator, start_function, fault, trigger):
    faults, outcome, http_status, (least, most), reached = FAULTS[fault]
    is_http = TRIGGERS[trigger]
    timeout = HANG_TIMEOUT_SECONDS if "hangMs" in faults else TIMEOUT_SECONDS
    if isinstance(faults, str):
        fn = start_function(timeout_seconds=timeout, sagemaker_url=faults)
    else:
        emulator.faults(**faults, message=SAGEMAKER_TEXT)
        fn = start_function(timeout_seconds=timeout)

    started = time.perf_counter()
    inv = fn.invoke(load_event(trigger), wait_seconds=timeout + 5)
    elapsed = time.perf_counter() - started
    assert elapsed < timeout, f"replied after the deadline: {elapsed:.2f}s"

    if is_http:
        assert inv.ok, inv.payload
        assert inv.payload["statusCode"] == http_status, inv.payload
        body = json.loads(inv.payload["body"])
        if outcome == "stopped":
            assert body["PipelineExecutionArn"] == A and body["Outcome"] == "StopRequested"
        else:
            assert body["Error"]["Code"] == outcome, body
    elif outcome == "stopped":
        assert inv.ok and inv.payload["Outcome"] == "StopRequested", inv.payload
    else:
        assert not inv.ok and inv.error_type == outcome, inv.payload
    assert SAGEMAKER_TEXT not in json.dumps(inv.payload), f"SageMaker's own text is in the reply: {inv.payload}"
    assert fn.process.alive()
    lines = fn.process.final_logs()  # stopped and read to the end: no line missed
    assert lines, "the function logged nothing at INFO"
    leaked = [line for line in lines if SAGEMAKER_TEXT in line]
    assert not leaked, f"SageMaker's own text is in the logs: {leaked[0][:300]}"

    emulator.faults()  # read the state without faults
    state = emulator.state()
    attempts = [c["body"] for c in state["calls"] if c["operation"] == "StopPipelineExecution"]
    assert least <= len(attempts) <= most, f"{len(attempts)} stop attempts, expected {least}..{most}"
    assert all(a.get("PipelineExecutionArn") == A for a in attempts), attempts
    assert len({a["ClientRequestToken"] for a in attempts}) <= 1, f"retries changed the token: {attempts}"
    if reached is None:
        assert set(stop_tokens(state).get(A, {})) <= {a["ClientRequestToken"] for a in attempts}
        assert set(stop_tokens(state)) <= {A}
    elif reached:
        [(token, requests)] = stop_tokens(state)[A].items()
        assert requests == reached and token == attempts[0]["ClientRequestToken"], stop_tokens(state)
        assert set(stop_tokens(state)) == {A}
    else:
        assert stop_tokens(state) == {}, stop_tokens(state)
    if reached is not None:
        expected_a = {"Stopping", "Stopped"} if outcome == "stopped" else {"Executing"}
        assert state["executions"][A]["status"] in expected_a
    for untouched, status in ((B, "Executing"), (OTHER, "Executing"), (DONE, "Succeeded")):
        assert state["executions"][untouched]["status"] == status
