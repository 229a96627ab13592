"""Fixtures: the SageMaker emulator, and the real function binary run under a
local Lambda Runtime API pointed at it."""

import json
import os
import pathlib
import sys
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "localrun"))

import lambda_runtime  # noqa: E402
import sagemaker_emulator  # noqa: E402

ACCOUNT, REGION = "123456789012", "us-east-1"
PIPELINE = "nightly-training"
A = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/k7xvw1b9q2hj"
B = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/p3m8zq0d5c1r"
DONE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/f1n15hed0000"
OTHER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/prod-inference/execution/zz9yy8xx7ww6"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "timing(reason): a check of wall-clock bounds that emulation distorts (run natively; "
        "scripts/check-release, which runs the suite under qemu for arm64, leaves these out with -m 'not timing')")
    config.addinivalue_line(
        "markers",
        "draws: the CLI draws its progress display on a pseudo-terminal (run natively; under qemu-user the "
        "aarch64 binary spins without a system call once indicatif starts drawing; the last calls qemu traces "
        "install and unblock a handler for real-time signal 33; cause not established, not reproduced natively "
        "at any terminal size; scripts/check-release leaves these out with -m 'not draws')")


def load_event(name):
    """A sample payload from events/."""
    return json.loads((ROOT / "events" / name).read_text())


def binary():
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    path = os.environ.get("STOPPER_BIN") or target / "debug" / "sagemaker-pipeline-stopper"
    if not pathlib.Path(path).exists():
        pytest.exit(f"{path} is missing: run `cargo test --workspace --no-run` first (scripts/test does)", returncode=2)
    return str(path)


def standard_seed():
    """Two running executions of nightly-training, one finished, and a running
    execution of another pipeline that nothing may touch."""
    return {
        "account": ACCOUNT,
        "region": REGION,
        "pipelines": [
            {"name": PIPELINE, "executions": [
                {"id": "k7xvw1b9q2hj", "status": "Executing", "steps": [{"name": "Train", "type": "Training"}]},
                {"id": "p3m8zq0d5c1r", "status": "Executing"},
                {"id": "f1n15hed0000", "status": "Succeeded"},
            ]},
            {"name": "prod-inference", "executions": [{"id": "zz9yy8xx7ww6", "status": "Executing"}]},
        ],
    }


class Emulator:
    def __init__(self, url):
        self.url = url

    def _post(self, path, payload, headers=None):
        req = urllib.request.Request(self.url + path, json.dumps(payload).encode(), headers or {}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def seed(self, spec):
        self._post("/_admin/seed", spec)

    def faults(self, **faults):
        self._post("/_admin/faults", faults)

    def state(self):
        with urllib.request.urlopen(self.url + "/_admin/state", timeout=10) as r:
            return json.loads(r.read())

    def status(self, arn):
        return self.state()["executions"][arn]["status"]

    def call(self, operation, body):
        """Calls the emulator as an SDK would (signature not checked, only present)."""
        return self._post("/", body, {
            "X-Amz-Target": f"SageMaker.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDLOCALEXAMPLE/20261122/us-east-1/sagemaker/aws4_request",
        })


@pytest.fixture(scope="session")
def emulator_server():
    server, url = sagemaker_emulator.serve(stop_settle_seconds=0.2)
    yield url
    server.shutdown()


@pytest.fixture
def emulator(emulator_server):
    emu = Emulator(emulator_server)
    emu.seed(standard_seed())
    emu.faults()
    return emu


@pytest.fixture
def start_function(emulator):
    """Starts the real binary under a fresh Runtime API; returns the RuntimeApi."""
    started = []

    def start(env=None, timeout_seconds=10, sagemaker_url=None, function_arn=lambda_runtime.DEFAULT_FUNCTION_ARN):
        """env: extra variables (a None value removes one, e.g. credentials);
        function_arn: the invoked function ARN the Runtime API hands over."""
        api = lambda_runtime.RuntimeApi(function_arn=function_arn, timeout_seconds=timeout_seconds)
        proc = lambda_runtime.FunctionProcess(
            [binary()], api, lambda_runtime.function_env(api, sagemaker_url or emulator.url, env))
        started.append((api, proc))
        proc.wait_ready()
        api.process = proc
        return api

    yield start
    for api, proc in started:
        proc.stop()
        api.close()


# -- checks of "stopped once" --------------------------------------------------
#
# The emulator counts every StopPipelineExecution request that reaches an
# execution (the stop, replays of its token, stops of an execution already
# Stopping), per execution and per ClientRequestToken. SageMaker completes an
# operation with the same token at most once, so a redelivery that re-sends
# the SAME token is correct; one that sends a DIFFERENT token is the bug.

def stop_tokens(state):
    """{execution ARN: {ClientRequestToken: stop requests that reached it}}."""
    return state["stopTokens"]


def assert_stopped_once(state, named, requests_each=None):
    """Every execution in `named`, and no other, got stop requests all carrying
    one token (two executions never sharing one); with `requests_each`, each got
    exactly that many (one per delivery or attempt that reached SageMaker), of
    which exactly one was the stop itself and the rest replays of it; each is
    now Stopping or Stopped. Every stop request in the call log (faulted
    attempts included) names one of `named`."""
    tokens = stop_tokens(state)
    assert set(tokens) == set(named), f"stop requests reached {sorted(tokens)}, not {sorted(named)}"
    for arn in named:
        assert len(tokens[arn]) == 1, f"{arn} got {len(tokens[arn])} different tokens: {tokens[arn]}"
        if requests_each is not None:
            assert sum(tokens[arn].values()) == requests_each, \
                f"{arn}: {sum(tokens[arn].values())} stop requests, expected {requests_each}: {tokens[arn]}"
        answers = [r["answer"] for r in state["stopRequests"] if r["arn"] == arn]
        assert answers.count("Stopping") == 1, f"{arn}: {answers}"
        assert set(answers) <= {"Stopping", "Replayed"}, f"{arn}: {answers}"
        assert state["executions"][arn]["status"] in ("Stopping", "Stopped"), arn
    every = [t for per in tokens.values() for t in per]
    assert len(every) == len(set(every)), f"two executions shared a token: {tokens}"
    sent = {c["body"].get("PipelineExecutionArn") for c in state["calls"] if c["operation"] == "StopPipelineExecution"}
    assert sent <= set(named), f"stop requests for unnamed executions: {sorted(sent - set(named))}"


def start_instances(start_function, count, **kwargs):
    """`count` function processes, each under its own Runtime API, as Lambda
    runs concurrent deliveries on separate execution environments."""
    return [start_function(**kwargs) for _ in range(count)]


def deliver_at_once(instances, event, wait_seconds=20):
    """The same event to every instance at the same moment; their invocations."""
    invocations = [fn.submit(event) for fn in instances]
    for inv in invocations:
        assert inv.done.wait(wait_seconds), "an instance did not reply"
    return invocations
