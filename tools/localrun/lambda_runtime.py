"""A local AWS Lambda Runtime API, and a function process run under it.

The function binary (or any runtime client, such as awslambdaric) is started
with ``AWS_LAMBDA_RUNTIME_API`` pointing here and polls for events exactly as it
does in Lambda: ``GET /2018-06-01/runtime/invocation/next``, then
``POST .../invocation/{id}/response`` or ``.../error``. Standard library only.
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
DEFAULT_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:sagemaker-pipeline-stopper"


@dataclass
class Invocation:
    request_id: str
    event: object
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    payload: object = None
    error_type: str = None
    handed_at: float = None  # when the function received the event
    replied_at: float = None

    @property
    def duration_ms(self):
        return (self.replied_at - self.handed_at) * 1000 if self.replied_at and self.handed_at else None


class RuntimeApi:
    """The Runtime API server. One function process polls it at a time."""

    def __init__(self, function_arn=DEFAULT_FUNCTION_ARN, timeout_seconds=30):
        self.function_arn, self.timeout_seconds = function_arn, timeout_seconds
        self.pending = queue.Queue()
        self.by_id = {}
        self.init_error = None
        self.first_poll = threading.Event()
        self.first_poll_at = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle's
            # algorithm and the client's delayed ACK add ~40 ms to some replies.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                if not api.first_poll.is_set():
                    api.first_poll_at = time.perf_counter()
                    api.first_poll.set()
                inv = api.pending.get()
                if inv is None:  # shutting down: drop the poll
                    self.close_connection = True
                    return
                body = json.dumps(inv.event).encode() if not isinstance(inv.event, bytes) else inv.event
                inv.handed_at = time.perf_counter()
                self._reply(200, body, [
                    ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
                    ("Lambda-Runtime-Invoked-Function-Arn", api.function_arn),
                    ("Lambda-Runtime-Trace-Id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0"),
                    ("Content-Type", "application/json"),
                ])

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path == f"{PREFIX}/init/error":
                    api.init_error = raw.decode(errors="replace")
                    api.first_poll.set()
                    return self._reply(202, b"{}")
                parts = self.path.split("/")
                # /2018-06-01/runtime/invocation/{id}/{response|error}
                if len(parts) != 6 or parts[5] not in ("response", "error"):
                    return self._reply(404)
                inv = api.by_id.get(parts[4])
                if inv is None:
                    return self._reply(400)
                inv.replied_at = time.perf_counter()
                try:
                    inv.payload = json.loads(raw) if raw else None
                except ValueError:
                    inv.payload = raw.decode(errors="replace")
                inv.ok = parts[5] == "response"
                if not inv.ok:
                    # Lambda reports the body's errorType (what destinations and
                    # DLQs see); the header is the runtime's generic "unhandled".
                    body = inv.payload if isinstance(inv.payload, dict) else {}
                    inv.error_type = body.get("errorType") or self.headers.get("Lambda-Runtime-Function-Error-Type")
                self._reply(202, b"{}")
                inv.done.set()

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # A function process stopped mid-poll is normal here, not a traceback.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def submit(self, event, timeout_seconds=None):
        """Queues an event (a JSON value, or raw bytes) without waiting."""
        request_id = str(uuid.uuid4())
        budget = timeout_seconds if timeout_seconds is not None else self.timeout_seconds
        inv = Invocation(request_id, event, int((time.time() + budget) * 1000))
        self.by_id[request_id] = inv
        self.pending.put(inv)
        return inv

    def invoke(self, event, timeout_seconds=None, wait_seconds=None):
        """Invokes the function and waits for its reply (Invocation.ok/payload)."""
        inv = self.submit(event, timeout_seconds)
        limit = wait_seconds if wait_seconds is not None else (timeout_seconds or self.timeout_seconds) + 5
        if not inv.done.wait(limit):
            raise TimeoutError(f"no reply within {limit}s")
        return inv

    def close(self):
        self.pending.put(None)
        self.server.shutdown()


def function_env(runtime_api, sagemaker_url, extra=None):
    """The environment Lambda gives a function, pointed at local servers.
    Static dummy credentials: the emulator checks that requests are signed,
    and nothing here can reach AWS."""
    # Only what Lambda itself provides: inheriting this shell's environment
    # would leak settings Lambda never has (SSL_CERT_DIR, for one, makes the
    # TLS stack read every file in a certificate directory at start-up).
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": ":UTC",
           "HOME": os.environ.get("HOME", "/tmp")}
    env.update({
        "AWS_LAMBDA_RUNTIME_API": runtime_api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "sagemaker-pipeline-stopper",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDLOCALEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "local-secret-not-a-real-key",
        "AWS_ENDPOINT_URL_SAGEMAKER": sagemaker_url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })
    for key, value in (extra or {}).items():
        if value is None:  # None removes a variable (say, the credentials)
            env.pop(key, None)
        else:
            env[key] = value
    return env


class FunctionProcess:
    """A function process polling a RuntimeApi; its stderr/stdout kept as log lines."""

    def __init__(self, command, runtime_api, env, cwd=None):
        self.runtime_api = runtime_api
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.logs = []
        self.drainer = threading.Thread(target=self._drain, daemon=True)
        self.drainer.start()

    def _drain(self):
        for line in self.proc.stdout:
            self.logs.append(line.decode(errors="replace").rstrip("\n"))

    def wait_ready(self, seconds=30):
        """Waits for the first poll of /next (init done); returns the init time in ms."""
        if not self.runtime_api.first_poll.wait(seconds):
            raise TimeoutError(f"the function did not poll for an event within {seconds}s:\n" + "\n".join(self.logs))
        if self.runtime_api.init_error:
            raise RuntimeError(f"init failed: {self.runtime_api.init_error}")
        return (self.runtime_api.first_poll_at - self.started_at) * 1000

    def final_logs(self):
        """Every line the process wrote: it is stopped and its output read to
        the end, so a line written just before a reply cannot be missed."""
        self.stop()
        self.drainer.join(10)
        return list(self.logs)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
