"""The fault matrix, end to end: each SageMaker fault against a non-HTTP and
an HTTP trigger. For each: the documented reply or errorType, before the
function's deadline; every retry of a stop carries the same token; nothing is
stopped that was not named."""

import json
import time

import pytest

from conftest import A, B, DONE, OTHER, load_event

# The function's timeout. Long enough for the SDK's 3 attempts with jittered
# backoff (up to ~3 s); the hang case uses a short one, to be quick.
TIMEOUT_SECONDS = 10
HANG_TIMEOUT_SECONDS = 3

# fault -> (emulator faults, or an unreachable endpoint; the outcome:
#           "stopped" or the errorType, and the HTTP status of the same fault)
FAULTS = {
    "throttling burst (2 answers)": ({"throttle": 2, "operations": ["StopPipelineExecution"]}, "stopped", 200),
    "throttling that never ends": ({"throttle": 10_000}, "ThrottlingException", 429),
    "one 5xx": ({"error5xx": 1, "operations": ["StopPipelineExecution"]}, "stopped", 200),
    "5xx that never ends": ({"error5xx": 10_000}, "UpstreamError", 502),
    "reply cut mid-body": ({"truncate": 1, "operations": ["StopPipelineExecution"]}, "stopped", 200),
    "connection refused": ("http://127.0.0.1:9", "UpstreamUnavailable", 503),
    "answers after the deadline": ({"hangMs": 6000}, "UpstreamUnavailable", 503),
}

TRIGGERS = {
    # SageMaker's own status change event: names A, identity = the event id.
    "sagemaker-status-change.json": False,
    # HTTP API: names A, identity = the request id.
    "http-api.json": True,
}


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("fault", FAULTS)
def test_fault_matrix(emulator, start_function, fault, trigger):
    faults, outcome, http_status = FAULTS[fault]
    is_http = TRIGGERS[trigger]
    timeout = HANG_TIMEOUT_SECONDS if "hangMs" in faults else TIMEOUT_SECONDS
    if isinstance(faults, str):
        fn = start_function(timeout_seconds=timeout, sagemaker_url=faults)
    else:
        emulator.faults(**faults)
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
            assert body["Error"]["Code"] == outcome
            assert "Please try again" not in body["Error"]["Message"], "SageMaker's free text leaked"
    elif outcome == "stopped":
        assert inv.ok and inv.payload["Outcome"] == "StopRequested", inv.payload
    else:
        assert not inv.ok and inv.error_type == outcome, inv.payload

    emulator.faults()  # read the state without faults
    state = emulator.state()
    tokens = {c["body"]["ClientRequestToken"] for c in state["calls"] if c["operation"] == "StopPipelineExecution"}
    assert len(tokens) <= 1, f"retries changed the token: {tokens}"
    assert all(c["body"].get("PipelineExecutionArn") == A
               for c in state["calls"] if c["operation"] == "StopPipelineExecution")
    assert state["stopCalls"] == ({A: 1} if outcome == "stopped" else {})
    for untouched, status in ((B, "Executing"), (OTHER, "Executing"), (DONE, "Succeeded")):
        assert state["executions"][untouched]["status"] == status
    assert fn.process.alive()
