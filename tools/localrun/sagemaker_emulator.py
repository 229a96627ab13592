#!/usr/bin/env python3
"""A local SageMaker Pipelines emulator for development and tests.

It listens on 127.0.0.1 and speaks SageMaker's wire protocol (awsJson1_1:
``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``, JSON bodies, errors as
HTTP 4xx/5xx with ``__type``), so the unmodified AWS SDK works against it
through ``AWS_ENDPOINT_URL_SAGEMAKER``. Standard library only.

Why not moto: moto models SageMaker pipelines but has no
StopPipelineExecution, no callback or Lambda step semantics, and no fault
injection; the part we need is small enough to model exactly.

Operations: StopPipelineExecution, DescribePipelineExecution,
UpdatePipelineExecution, ListPipelineExecutions (paginated;
CreatedBefore/CreatedAfter), ListPipelineExecutionSteps,
SendPipelineExecutionStepSuccess, SendPipelineExecutionStepFailure,
and, for the runtime guard: Search (Resource Pipeline or PipelineExecution;
filters on Tags.<key>, PipelineName, PipelineArn, PipelineExecutionStatus and
CreationTime; SortBy, SortOrder; paginated), ListPipelines and ListTags
(paginated); and for stop notifications, EventBridge PutEvents
(``X-Amz-Target: AWSEvents.PutEvents``) and SNS Publish (awsQuery), recorded
in the state's "notifications" (faults apply with "operations": ["PutEvents"]
or ["Publish"]; "notifyLatencyMs" delays them alone). Shapes, bounds and defaults follow the current service model
(botocore's sagemaker/2017-07-24/service-2.json; tests/e2e/test_guard.py
checks the emulator's requests and replies against it).

Behaviour modelled from the API reference:
- Executing -> Stopping -> Stopped. With no step holding it, an execution
  settles to Stopped ``--stop-settle-seconds`` after the stop.
- A running Callback step holds the execution in Stopping until its callback
  token gets SendPipelineExecutionStepSuccess/Failure; the ``"Status":
  "Stopping"`` message SageMaker would send to the step's SQS queue is recorded.
- A running Lambda step holds it until the Lambda finishes (-> Stopped) or
  times out (-> Failed).
- An unknown ARN is ResourceNotFound; a ClientRequestToken replay returns the
  first answer; requests that break the documented constraints are
  ValidationException.
- UpdatePipelineExecution sets the PipelineExecutionDescription,
  PipelineExecutionDisplayName and ParallelismConfiguration it is given, which
  DescribePipelineExecution then returns (a member never set is omitted). The
  description is checked against the model's pattern ".*" read as Java's
  matches() reads it: "." matches no line terminator, so a description with a
  newline is a ValidationException. Assumed, as the model says nothing of
  them: an update is accepted whatever the execution's status, and leaves
  LastModifiedTime (the time of the last status change here) as it was.

Behaviour as real clients observe it (docs/service-behaviour.md lists each with
its source), on by default; a seed's "documented": [names] answers as the
reference pages describe instead:
- "stopNotExecuting": a stop of an execution that is not Executing (already
  Stopping, or ended) is a ValidationException whose message is NOT_EXECUTING
  (documented: ConflictException).
Faults for behaviour that real clients report but that cannot be on for every
request: "transitionConflicts": n, the next n stops of an Executing execution
are refused with ConflictException (as while it moves between steps), and it
stays Executing; "endsBeforeStop": {arn: status}, that execution ends in
status just before the first stop of it arrives (a race with a listing);
"stepEndsBeforeAnswer": {callbackToken: status}, that callback step ends in
status just before the first SendPipelineExecutionStep* for it arrives.
Search is an index, eventually consistent and paged by offsets; faults give
the answers such an index can give: "indexHides": [pipeline names] left out
of Search's Pipeline results (their tags not indexed yet), "indexExtra":
[records] added to them (another account's, a name that is not its ARN's),
"indexOrder": "reversed" (PipelineExecution results newest first, whatever
SortOrder says), "indexStale": {arn: status} (PipelineExecution records
that still show an old status, as before a stop is indexed), "indexTags":
{pipeline name: {key: value}} (Pipeline records that still show old tags), and, for every paged listing, "pageTokens": "endless"
(empty pages, each with a new token), "cycle" (the last page's token leads
back to the first) or "overlap" (each page repeats the last item of the one
before). "operations", when given, limits every fault to those operations,
latencyMs and hangMs included.

Counting stops. "Stopped once" must be checkable from outside the model's
own guard, so every StopPipelineExecution request that reaches an existing
execution is counted, whatever it is answered: the stop that moved it to
Stopping, a replay of a token (answered with the first answer), and a stop of
an execution already Stopping or ended (answered ValidationException, or
ConflictException as documented). Requests
answered by an injected fault (throttle, 5xx) are not counted here; they are
in the call log. A function that sends a second stop therefore shows as a
second request, and one that sends a different token as a second token.

Admin calls (not SageMaker's; never faulted or counted), JSON in and out:
  POST /_admin/seed    replace the state (see seed() for the format)
  POST /_admin/faults  set faults: {"throttle": n, "error5xx": n, "accessDenied": n,
                       "latencyMs": ms, "hangMs": ms, "truncate": n,
                       "rateLimitPerSecond": r, "message": "text of injected errors",
                       "operations": ["StopPipelineExecution", ...],
                       "gate": {"operation": "ListPipelineExecutions", "parties": n,
                                "match": {"Resource": "PipelineExecution"}}}
                       gate: the first n requests of that operation (whose body
                       has the fields in "match", if given) are answered as of
                       their arrival, but their replies are held until all n
                       have arrived (at most 10 s): n concurrent sweeps all see
                       the executions still Executing, whatever the timing.
  GET  /_admin/state   executions (status, steps, description or null), stop
                       counts, SQS messages, call log:
                       "stopCalls"    {arn: stop requests answered for it (see above)}
                       "stopTokens"   {arn: {ClientRequestToken: requests}}
                       "stopRequests" [{"arn", "token", "answer"}] in order, answer
                                      "Stopping" | "Replayed" | "ValidationException"
                                      (not Executing) | "ConflictException"
                       "calls"        every SageMaker request, faulted ones included

Run: python3 tools/localrun/sagemaker_emulator.py --port 0 --seed seed.json
It prints ``listening on http://127.0.0.1:PORT`` once ready.
"""

import argparse
import json
import re
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXECUTION_ARN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline\/.*\/execution\/.*$"
)
CALLBACK_TOKEN = re.compile(r"^[a-zA-Z0-9]{10}$")
PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
EXECUTION_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}")
# The model's ".*" (PipelineExecutionDescription) as Java reads it: "." matches
# no line terminator.
JAVA_ANY = re.compile("[^\n\r\u0085\u2028\u2029]*")
FINISHED = {"Succeeded", "Failed", "Stopped", "CompletedWithFailures"}
# SageMaker's answer to a stop of an execution that is not Executing, as Apache
# Airflow's SageMaker hook matches it (docs/service-behaviour.md).
NOT_EXECUTING = "Only pipelines with 'Executing' status can be stopped"
JSON_TYPE = "application/x-amz-json-1.1"


class ApiError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def validation(message):
    return ApiError("ValidationException", message)


class State:
    """Pipelines, executions and what was done to them. One lock guards all."""

    def __init__(self, stop_settle_seconds=0.5):
        self.lock = threading.Lock()
        self.stop_settle = stop_settle_seconds
        # Bumped by each seed: a request still delayed (latencyMs, hangMs)
        # when the state is replaced must not act on the new state.
        self.generation = 0
        self.reset()

    def reset(self):
        self.account, self.region = "123456789012", "us-east-1"
        self.pipelines = {}  # lower-case name -> {"name", "arn"}
        self.executions = {}  # arn -> execution dict
        self.tokens = {}  # (operation, token) -> (request key, response)
        self.sqs_messages = []
        self.stop_requests = []  # every stop request that reached an execution (see the docstring)
        self.calls = []  # (operation, body)
        # Stop notifications received: EventBridge PutEvents entries and SNS
        # Publish messages, each {"service": "events" | "sns", ...}; and every
        # notification request, faulted ones included.
        self.notifications = []
        self.notification_calls = []
        self.faults = {}
        self.gate = None
        self.bucket = None  # rate limiter: [tokens, last refill]
        self.throttled = 0  # requests answered with ThrottlingException
        # The longest PipelineExecutionArn accepted: 256 as older API reference
        # pages say; a seed's "maxArnLength" (2048 in the current service
        # model) lets a test use the long ARNs of 256-character pipeline names.
        self.max_arn_length = 256
        # Behaviours answered as the reference pages describe them (see the
        # docstring); every other one as real clients observe it.
        self.documented = set()

    # -- seeding -----------------------------------------------------------
    def seed(self, spec):
        """spec: {"account", "region", "pipelines": [{"name", "executions": [
        {"id", "status", "startedMinutesAgo", "steps": [{"name", "type":
        "Training"|"Callback"|"Lambda"|..., "status", "callbackToken",
        "queueUrl", "functionArn", "finishesInSeconds", "timeoutSeconds",
        "iteration": {"parent", "index"}}]}],
        "generate": {"Executing": 1000, "Succeeded": 3}, "generateStartedMinutesAgo": 1,
        "tags": {"key": "value"}}], "maxArnLength": 2048}; an execution may also
        have a "description" and a "displayName"."""
        self.reset()
        self.generation += 1
        self.account = spec.get("account", self.account)
        self.region = spec.get("region", self.region)
        self.max_arn_length = spec.get("maxArnLength", self.max_arn_length)
        self.documented = set(spec.get("documented", []))
        now = time.time()
        for p in spec.get("pipelines", []):
            name = p["name"]
            arn = f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{name.lower()}"
            self.pipelines[name.lower()] = {
                "name": name, "arn": arn, "created": now - 86400,
                "tags": [{"Key": k, "Value": v} for k, v in p.get("tags", {}).items()],
            }
            for i, e in enumerate(p.get("executions", [])):
                self._add(arn, e, now - 60 * e.get("startedMinutesAgo", 10 + i))
            n = 0
            base = now - 60 * p.get("generateStartedMinutesAgo", 1)
            for status, count in p.get("generate", {}).items():
                for _ in range(count):
                    n += 1
                    self._add(arn, {"id": f"gen{n:08d}", "status": status}, base - n)

    def _add(self, pipeline_arn, e, started):
        arn = f"{pipeline_arn}/execution/{e.get('id') or uuid.uuid4().hex[:12]}"
        steps = []
        for s in e.get("steps", []):
            step = dict(s)
            step.setdefault("status", "Executing")
            step["started"] = started
            if step.get("type") == "Lambda":
                step["finishesAt"] = time.time() + float(step.get("finishesInSeconds", 3600))
                step["timesOutAt"] = time.time() + float(step.get("timeoutSeconds", 600))
            steps.append(step)
        self.executions[arn] = {
            "arn": arn,
            "pipelineArn": pipeline_arn,
            "status": e.get("status", "Executing"),
            "started": started,
            "modified": started,
            "displayName": e.get("displayName", f"execution-{int(started * 1000)}"),
            "steps": steps,
            # A seeded Stopping execution was asked to stop as it was seeded.
            "stopRequestedAt": time.time() if e.get("status") == "Stopping" else None,
            "failureReason": None,
            "description": e.get("description"),
            "parallelism": None,
        }

    # -- time-driven transitions -------------------------------------------
    def advance(self, ex):
        """Moves a Stopping execution on, lazily, as of now."""
        if ex["status"] != "Stopping":
            return
        now = time.time()
        timed_out = False
        for step in ex["steps"]:
            if step.get("type") == "Lambda" and step["status"] == "Executing":
                if now >= step["finishesAt"] and step["finishesAt"] <= step["timesOutAt"]:
                    step["status"] = "Succeeded"
                elif now >= step["timesOutAt"]:
                    step["status"] = "Failed"
                    timed_out = True
        if timed_out:
            ex["status"], ex["modified"] = "Failed", now
            ex["failureReason"] = "Lambda step timed out while the execution was stopping"
            self._stop_remaining(ex)
            return
        if any(self._blocks(s) for s in ex["steps"]):
            return
        if now >= ex["stopRequestedAt"] + self.stop_settle:
            ex["status"], ex["modified"] = "Stopped", now
            self._stop_remaining(ex)

    @staticmethod
    def _blocks(step):
        return step.get("type") in ("Callback", "Lambda") and step["status"] == "Executing"

    @staticmethod
    def _stop_remaining(ex):
        for step in ex["steps"]:
            if step["status"] in ("Executing", "Starting", "Stopping"):
                step["status"] = "Stopped"

    # -- operations ----------------------------------------------------------
    def execution(self, arn):
        if not isinstance(arn, str) or not arn:
            raise validation("PipelineExecutionArn is required")
        if len(arn) > self.max_arn_length or not EXECUTION_ARN.match(arn):
            raise validation(f"1 validation error detected: Value '{arn}' at 'pipelineExecutionArn' failed to satisfy constraint")
        ex = self.executions.get(arn)
        if ex is None:
            raise ApiError("ResourceNotFound", f"Pipeline execution '{arn}' does not exist.")
        self.advance(ex)
        return ex

    def idempotent(self, operation, body, key, action):
        token = body.get("ClientRequestToken")
        if token is not None:
            if not isinstance(token, str) or not 32 <= len(token) <= 128:
                raise validation("ClientRequestToken must be 32 to 128 characters")
            seen = self.tokens.get((operation, token))
            if seen is not None:
                if seen[0] != key:
                    raise validation("ClientRequestToken was already used with different parameters")
                return seen[1]
        response = action()
        if token is not None:
            self.tokens[(operation, token)] = (key, response)
        return response

    def StopPipelineExecution(self, body):
        if "ClientRequestToken" not in body:
            raise validation("ClientRequestToken is required")
        arn = body.get("PipelineExecutionArn")

        def stop():
            ex = self.execution(arn)
            ends = self.faults.get("endsBeforeStop") or {}
            if arn in ends:
                ex["status"], ex["modified"] = ends.pop(arn), time.time()
                self._stop_remaining(ex)
            if ex["status"] != "Executing":
                if "stopNotExecuting" in self.documented:
                    raise ApiError("ConflictException", f"Pipeline execution is in status {ex['status']} and cannot be stopped.")
                raise validation(NOT_EXECUTING)
            if self.faults.get("transitionConflicts", 0) > 0:
                self.faults["transitionConflicts"] -= 1
                raise ApiError("ConflictException", "The pipeline execution is transitioning between steps.")
            now = time.time()
            ex["status"], ex["modified"], ex["stopRequestedAt"] = "Stopping", now, now
            for step in ex["steps"]:
                if step.get("type") == "Callback" and step["status"] == "Executing":
                    self.sqs_messages.append({
                        "QueueUrl": step.get("queueUrl"),
                        "Body": {"token": step.get("callbackToken"), "pipelineExecutionArn": arn, "Status": "Stopping"},
                    })
                elif step["status"] == "Executing" and not self._blocks(step):
                    step["status"] = "Stopping"
            self.advance(ex)
            return {"PipelineExecutionArn": arn}

        token = body.get("ClientRequestToken")
        replayed = (("Stop", token) in self.tokens) if isinstance(token, str) else False
        try:
            response = self.idempotent("Stop", body, arn, stop)
        except ApiError as e:
            if e.code == "ConflictException" or e.message == NOT_EXECUTING:
                self.stop_requests.append({"arn": arn, "token": token, "answer": e.code})
            raise
        self.stop_requests.append({"arn": arn, "token": token, "answer": "Replayed" if replayed else "Stopping"})
        return response

    def DescribePipelineExecution(self, body):
        ex = self.execution(body.get("PipelineExecutionArn"))
        out = {
            "PipelineArn": ex["pipelineArn"],
            "PipelineExecutionArn": ex["arn"],
            "PipelineExecutionDisplayName": ex["displayName"],
            "PipelineExecutionStatus": ex["status"],
            "CreationTime": ex["started"],
            "LastModifiedTime": ex["modified"],
        }
        if ex["failureReason"]:
            out["FailureReason"] = ex["failureReason"]
        if ex["description"] is not None:
            out["PipelineExecutionDescription"] = ex["description"]
        if ex["parallelism"] is not None:
            out["ParallelismConfiguration"] = ex["parallelism"]
        return out

    def UpdatePipelineExecution(self, body):
        text = body.get("PipelineExecutionDescription")
        name = body.get("PipelineExecutionDisplayName")
        parallelism = body.get("ParallelismConfiguration")
        for member, value, low, high, pattern in (
                ("pipelineExecutionDescription", text, 0, 3072, JAVA_ANY),
                ("pipelineExecutionDisplayName", name, 1, 82, EXECUTION_NAME)):
            # Lengths in UTF-16 units, as Java counts a string's length.
            if value is not None and not (isinstance(value, str) and low <= len(value.encode("utf-16-le")) // 2 <= high
                                          and pattern.fullmatch(value)):
                raise validation(f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
                                 f"Member must have length between {low} and {high} and match the model's pattern")
        if parallelism is not None:
            steps = parallelism.get("MaxParallelExecutionSteps") if isinstance(parallelism, dict) else None
            if type(steps) is not int or steps < 1:
                raise validation("ParallelismConfiguration.MaxParallelExecutionSteps must be an integer of at least 1")
        ex = self.execution(body.get("PipelineExecutionArn"))
        if text is not None:
            ex["description"] = text
        if name is not None:
            ex["displayName"] = name
        if parallelism is not None:
            ex["parallelism"] = parallelism
        return {"PipelineExecutionArn": ex["arn"]}

    def _pipeline(self, name_or_arn):
        if not isinstance(name_or_arn, str) or not name_or_arn:
            raise validation("PipelineName is required")
        name = name_or_arn.split(":pipeline/", 1)[1] if name_or_arn.startswith("arn:") else name_or_arn
        if not PIPELINE_NAME.match(name):
            raise validation(f"Value '{name_or_arn}' at 'pipelineName' failed to satisfy constraint")
        p = self.pipelines.get(name.lower())
        if p is None:
            raise ApiError("ResourceNotFound", f"Pipeline '{name_or_arn}' does not exist.")
        return p

    def _faulty(self, operation):
        """The faults that apply to `operation`."""
        ops = self.faults.get("operations")
        return {} if ops and operation not in ops else self.faults

    def _page(self, items, body, default_size, operation=None):
        size = body.get("MaxResults", default_size)
        if not isinstance(size, int) or not 1 <= size <= 100:
            raise validation("MaxResults must be between 1 and 100")
        mode = self._faulty(operation).get("pageTokens") if operation else None
        token = body.get("NextToken")
        if mode == "endless" and token:
            return [], f"endless-{int(token.removeprefix('endless-')) + 1}"
        start = 0
        if token:
            try:
                start = int(token.removeprefix("page-"))
            except ValueError:
                raise validation("Invalid NextToken")
        chunk = items[start:start + size]
        step = size - 1 if mode == "overlap" and size > 1 else size
        nxt = f"page-{start + step}" if start + size < len(items) else None
        if mode == "endless":
            nxt = "endless-1"
        elif mode == "cycle" and nxt is None:
            nxt = "page-0"
        return chunk, nxt

    def ListPipelineExecutions(self, body):
        p = self._pipeline(body.get("PipelineName"))
        runs = [e for e in self.executions.values() if e["pipelineArn"] == p["arn"]]
        for field, keep in (("CreatedBefore", lambda e, t: e["started"] < t), ("CreatedAfter", lambda e, t: e["started"] > t)):
            if field in body:
                if not isinstance(body[field], (int, float)):
                    raise validation(f"{field} must be a timestamp (epoch seconds)")
                runs = [e for e in runs if keep(e, body[field])]
        for e in runs:
            self.advance(e)
        runs.sort(key=lambda e: e["started"], reverse=body.get("SortOrder", "Descending") == "Descending")
        chunk, nxt = self._page(runs, body, 50, "ListPipelineExecutions")
        out = {"PipelineExecutionSummaries": [{
            "PipelineExecutionArn": e["arn"],
            "StartTime": e["started"],
            "PipelineExecutionStatus": e["status"],
            "PipelineExecutionDisplayName": e["displayName"],
        } for e in chunk]}
        if nxt:
            out["NextToken"] = nxt
        return out

    def ListPipelineExecutionSteps(self, body):
        ex = self.execution(body.get("PipelineExecutionArn"))
        steps = []
        for s in ex["steps"]:
            step = {"StepName": s["name"], "StepStatus": s["status"], "StartTime": s["started"], "Metadata": {}}
            if s.get("type") == "Callback":
                step["Metadata"]["Callback"] = {"CallbackToken": s.get("callbackToken"), "SqsQueueUrl": s.get("queueUrl")}
            elif s.get("type") == "Lambda":
                step["Metadata"]["Lambda"] = {"Arn": s.get("functionArn")}
            elif s.get("type") == "Training":
                step["Metadata"]["TrainingJob"] = {"Arn": s.get("jobArn", f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{s['name'].lower()}")}
            elif s.get("type") == "ForEach":
                step["Metadata"]["ForEach"] = {"InputItemCount": s.get("items", 0)}
            if "iteration" in s:  # a ForEach iteration's step: {"parent": name, "index": n}
                step["IterationContext"] = {"ParentStepName": s["iteration"]["parent"], "Index": s["iteration"]["index"]}
            steps.append(step)
        chunk, nxt = self._page(steps, body, 50, "ListPipelineExecutionSteps")
        out = {"PipelineExecutionSteps": chunk}
        if nxt:
            out["NextToken"] = nxt
        return out

    def _callback(self, body, operation, outcome):
        token = body.get("CallbackToken")
        if not isinstance(token, str) or not CALLBACK_TOKEN.match(token):
            raise validation("CallbackToken must be 10 letters and digits")
        reason = body.get("FailureReason", "")
        if not isinstance(reason, str) or len(reason) > 256:
            raise validation("FailureReason must be at most 256 characters")

        def send():
            for ex in self.executions.values():
                for step in ex["steps"]:
                    if step.get("type") == "Callback" and step.get("callbackToken") == token:
                        ends = self.faults.get("stepEndsBeforeAnswer") or {}
                        if token in ends:  # its consumer answered just before this call
                            step["status"] = ends.pop(token)
                            self.advance(ex)
                        if step["status"] != "Executing":
                            raise ApiError("ConflictException", "The callback step is not running.")
                        step["status"] = outcome
                        if outcome == "Failed":
                            step["failureReason"] = body.get("FailureReason")
                        self.advance(ex)
                        return {"PipelineExecutionArn": ex["arn"]}
            raise ApiError("ResourceNotFound", "No callback step has that token.")

        return self.idempotent(operation, body, token, send)

    def SendPipelineExecutionStepSuccess(self, body):
        return self._callback(body, "Success", "Succeeded")

    def SendPipelineExecutionStepFailure(self, body):
        return self._callback(body, "Failure", "Failed")

    # -- discovery: Search, ListPipelines, ListTags ------------------------------
    SEARCH_OPERATORS = {"Equals", "NotEquals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan",
                        "LessThanOrEqualTo", "Contains", "Exists", "NotExists", "In"}
    SEARCH_RESOURCES = {"Pipeline", "PipelineExecution"}  # of the model's 20, the two modelled here

    def _pipeline_record(self, p):
        return {"PipelineArn": p["arn"], "PipelineName": p["name"], "PipelineStatus": "Active",
                "CreationTime": p["created"], "Tags": list(p["tags"])}

    @staticmethod
    def _execution_record(e):
        return {"PipelineArn": e["pipelineArn"], "PipelineExecutionArn": e["arn"],
                "PipelineExecutionDisplayName": e["displayName"], "PipelineExecutionStatus": e["status"],
                "CreationTime": e["started"], "LastModifiedTime": e["modified"]}

    @staticmethod
    def _matches(record, f):
        name, op, value = f.get("Name"), f.get("Operator"), f.get("Value")
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise validation("Filter.Name is required (1 to 255 characters)")
        if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 1024):
            raise validation("Filter.Value must be 1 to 1024 characters")
        if op is None:
            op = "Equals" if value is not None else "Exists"
        if op not in State.SEARCH_OPERATORS:
            raise validation(f"Value '{op}' at 'searchExpression.filters.1.member.operator' failed to satisfy constraint")
        if name.startswith("Tags."):
            tags = {t["Key"]: t["Value"] for t in record.get("Tags", [])}
            have = tags.get(name[5:])
        elif name in record and name not in ("Tags",):
            have = record[name]
        else:
            raise validation(f"Unsupported search property {name} for this resource")
        if op == "Exists":
            return have is not None
        if op == "NotExists":
            return have is None
        if value is None:
            raise validation(f"Operator {op} needs a Value")
        if op in ("Equals", "NotEquals"):
            return (have is not None and str(have) == value) == (op == "Equals")
        if op == "Contains":
            return have is not None and value in str(have)
        if op == "In":
            return have is not None and str(have) in value.split(",")
        if name != "CreationTime":
            raise validation(f"Operator {op} is not modelled for {name}")
        try:
            bound = float(value)
        except ValueError:
            raise validation("CreationTime values are epoch seconds here")
        return {"GreaterThan": have > bound, "GreaterThanOrEqualTo": have >= bound,
                "LessThan": have < bound, "LessThanOrEqualTo": have <= bound}[op]

    def Search(self, body):
        resource = body.get("Resource")
        if resource not in self.SEARCH_RESOURCES:
            raise validation(f"Resource {resource!r} is not one the emulator models (Pipeline, PipelineExecution)")
        expression = body.get("SearchExpression") or {}
        if set(expression) - {"Filters"} or expression.get("Operator") not in (None, "And"):
            raise validation("only SearchExpression.Filters (And) is modelled")
        filters = expression.get("Filters") or []
        if not isinstance(filters, list) or len(filters) > 20:
            raise validation("Filters must be a list of at most 20")
        if resource == "Pipeline":
            records = [self._pipeline_record(p) for p in self.pipelines.values()]
            stale = {name.lower(): tags for name, tags in (self._faulty("Search").get("indexTags") or {}).items()}
            records = [dict(r, Tags=[{"Key": k, "Value": v} for k, v in stale[r["PipelineName"].lower()].items()])
                       if r["PipelineName"].lower() in stale else r for r in records]
        else:
            for e in self.executions.values():
                self.advance(e)
            records = [self._execution_record(e) for e in self.executions.values()]
            stale = self._faulty("Search").get("indexStale") or {}
            for r in records:
                r["PipelineExecutionStatus"] = stale.get(r["PipelineExecutionArn"], r["PipelineExecutionStatus"])
        records = [r for r in records if all(self._matches(r, f) for f in filters)]
        sort_by = body.get("SortBy")
        if sort_by is not None:
            if sort_by not in ("CreationTime", "PipelineName", "PipelineExecutionStatus"):
                raise validation(f"SortBy {sort_by} is not modelled")
            order = body.get("SortOrder", "Descending")
            if order not in ("Ascending", "Descending"):
                raise validation("SortOrder must be Ascending or Descending")
            records.sort(key=lambda r: r.get(sort_by, ""), reverse=order == "Descending")
        faults = self._faulty("Search")
        if resource == "Pipeline":
            hidden = {name.lower() for name in faults.get("indexHides", [])}
            records = list(faults.get("indexExtra", [])) + [r for r in records if r["PipelineName"].lower() not in hidden]
        elif faults.get("indexOrder") == "reversed":
            records.sort(key=lambda r: r["CreationTime"], reverse=True)
        chunk, nxt = self._page(records, body, 10, "Search")
        out = {"Results": [{resource: r} for r in chunk], "TotalHits": {"Value": len(records), "Relation": "EqualTo"}}
        if nxt:
            out["NextToken"] = nxt
        return out

    def ListPipelines(self, body):
        pipelines = sorted(self.pipelines.values(), key=lambda p: p["name"])
        chunk, nxt = self._page(pipelines, body, 50)
        out = {"PipelineSummaries": [{"PipelineArn": p["arn"], "PipelineName": p["name"],
                                      "CreationTime": p["created"]} for p in chunk]}
        if nxt:
            out["NextToken"] = nxt
        return out

    def ListTags(self, body):
        arn = body.get("ResourceArn")
        if not isinstance(arn, str) or not arn:
            raise validation("ResourceArn is required")
        size = body.get("MaxResults", 50)
        if not isinstance(size, int) or size < 50:
            raise validation("MaxResults must be at least 50")
        p = next((p for p in self.pipelines.values() if p["arn"] == arn), None)
        if p is None:
            raise ApiError("ResourceNotFound", f"Resource '{arn}' does not exist.")
        start = int(body["NextToken"].removeprefix("page-")) if body.get("NextToken") else 0
        chunk = p["tags"][start:start + size]
        out = {"Tags": chunk}
        if start + size < len(p["tags"]):
            out["NextToken"] = f"page-{start + size}"
        return out

    OPERATIONS = (
        "Search",
        "ListPipelines",
        "ListTags",
        "StopPipelineExecution",
        "DescribePipelineExecution",
        "UpdatePipelineExecution",
        "ListPipelineExecutions",
        "ListPipelineExecutionSteps",
        "SendPipelineExecutionStepSuccess",
        "SendPipelineExecutionStepFailure",
    )

    # -- faults ----------------------------------------------------------------
    def fault_for(self, operation):
        """The fault this request meets, if any (called under the lock)."""
        f = self.faults
        if f.get("operations") and operation not in f["operations"]:
            return None
        rate = f.get("rateLimitPerSecond")
        if rate:
            now = time.monotonic()
            if self.bucket is None:
                self.bucket = [float(rate), now]
            tokens, last = self.bucket
            tokens = min(float(rate), tokens + (now - last) * rate)
            if tokens < 1:
                self.bucket = [tokens, now]
                self.throttled += 1
                return "throttle"
            self.bucket = [tokens - 1, now]
        for kind in ("throttle", "error5xx", "accessDenied", "truncate"):
            if f.get(kind, 0) > 0:
                f[kind] -= 1
                return kind
        return None

    def snapshot(self):
        for ex in self.executions.values():
            self.advance(ex)
        stop_calls, stop_tokens = {}, {}
        for r in self.stop_requests:
            stop_calls[r["arn"]] = stop_calls.get(r["arn"], 0) + 1
            per_token = stop_tokens.setdefault(r["arn"], {})
            per_token[r["token"]] = per_token.get(r["token"], 0) + 1
        return {
            "executions": {a: {"status": e["status"], "steps": {s["name"]: s["status"] for s in e["steps"]},
                               "description": e["description"]} for a, e in self.executions.items()},
            "stopCalls": stop_calls,
            "stopTokens": stop_tokens,
            "stopRequests": list(self.stop_requests),
            "sqsMessages": self.sqs_messages,
            "calls": [{"operation": op, "body": b} for op, b in self.calls],
            "stsCalls": getattr(self, "sts_calls", 0),
            "notifications": list(self.notifications),
            "notificationCalls": list(self.notification_calls),
        }


class Gate:
    """Holds the replies of the first `parties` requests of `operation` until
    they have all arrived (or GATE_SECONDS pass); later requests pass."""

    GATE_SECONDS = 10

    def __init__(self, operation, parties, match=None):
        self.operation, self.parties, self.match = operation, parties, match or {}
        self.arrived = 0
        self.lock = threading.Lock()
        self.open = threading.Event()

    def hold(self, operation, body):
        if operation != self.operation or any(body.get(k) != v for k, v in self.match.items()):
            return
        with self.lock:
            self.arrived += 1
            if self.arrived >= self.parties:
                self.open.set()
        self.open.wait(self.GATE_SECONDS)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State = None
    # Headers and body go out in separate writes: without this, Nagle's
    # algorithm and the client's delayed ACK add ~40 ms to some replies.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet; the call log is in /_admin/state
        pass

    def _send(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", JSON_TYPE)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return raw

    def do_GET(self):
        if self.path == "/_admin/state":
            with self.state.lock:
                return self._send(200, self.state.snapshot())
        self._send(404, {"__type": "UnknownOperationException"})

    def _sts(self, raw):
        """STS GetCallerIdentity (awsQuery), which the command line asks for
        its credentials' account: the seeded account, or `stsAccount` from
        the faults, so a test can make the credentials belong elsewhere."""
        import urllib.parse
        form = urllib.parse.parse_qs(raw.decode(errors="replace"))
        if form.get("Action") != ["GetCallerIdentity"]:
            self.send_response(400)
            self.end_headers()
            return
        with self.state.lock:
            self.state.sts_calls = getattr(self.state, "sts_calls", 0) + 1
            account = self.state.faults.get("stsAccount", self.state.account)
        body = (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<GetCallerIdentityResult>"
            f"<Arn>arn:aws:iam::{account}:user/local-operator</Arn>"
            "<UserId>AIDALOCALOPERATOR</UserId>"
            f"<Account>{account}</Account>"
            "</GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _notification_fault(self, operation, record):
        """Records a notification request and returns the fault it meets."""
        with self.state.lock:
            self.state.notification_calls.append(record)
            return self.state.fault_for(operation), self.state.faults.get("notifyLatencyMs", 0) / 1000

    def _put_events(self, target, raw):
        """EventBridge PutEvents (awsJson1_1), for stop notifications: entries
        checked against the API's bounds (1 to 10 entries; Source, DetailType
        and a JSON-object Detail required; 256 KB in all), then recorded."""
        try:
            if target != "AWSEvents.PutEvents":
                raise ApiError("UnknownOperationException", f"Unknown operation {target}")
            if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
                raise ApiError("MissingAuthenticationTokenException", "Missing Authentication Token")
            body = json.loads(raw or b"{}")
            entries = body.get("Entries")
            fault, latency = self._notification_fault("PutEvents", {"operation": "PutEvents", "body": body})
            if latency:
                time.sleep(latency)
            if fault == "accessDenied":
                raise ApiError("AccessDeniedException", "not authorized to perform: events:PutEvents")
            if fault in ("throttle", "error5xx"):
                raise ApiError("ThrottlingException", "Rate exceeded")
            if not isinstance(entries, list) or not 1 <= len(entries) <= 10:
                raise ApiError("ValidationException", "Entries must have 1 to 10 members")
            if len(raw) > 256 * 1024:
                raise ApiError("ValidationException", "Total size of the entries in the request is over the limit.")
            results = []
            for entry in entries:
                for field in ("Source", "DetailType", "Detail"):
                    if not isinstance(entry.get(field), str) or not entry[field]:
                        raise ApiError("ValidationException", f"{field} is required")
                detail = json.loads(entry["Detail"])
                if not isinstance(detail, dict):
                    raise ApiError("ValidationException", "Detail must be a JSON object")
                with self.state.lock:
                    self.state.notifications.append({
                        "service": "events", "eventBusName": entry.get("EventBusName", "default"),
                        "source": entry["Source"], "detailType": entry["DetailType"],
                        "detail": detail, "resources": entry.get("Resources", [])})
                results.append({"EventId": str(uuid.uuid4())})
            self._send(200, {"FailedEntryCount": 0, "Entries": results})
        except ApiError as e:
            self._send(e.status, {"__type": e.code, "Message": e.message})
        except ValueError:
            self._send(400, {"__type": "SerializationException", "Message": "not JSON"})

    def _sns_publish(self, raw):
        """SNS Publish (awsQuery), for stop notifications: TopicArn, Message,
        Subject (ASCII, under 100 characters, no line breaks) and message
        attributes, recorded; errors in SNS's XML shape."""
        import urllib.parse
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode(errors="replace")).items()}
        attributes = {}
        for key, value in form.items():
            if key.startswith("MessageAttributes.entry.") and key.endswith(".Name"):
                n = key.split(".")[2]
                attributes[value] = {
                    "DataType": form.get(f"MessageAttributes.entry.{n}.Value.DataType"),
                    "StringValue": form.get(f"MessageAttributes.entry.{n}.Value.StringValue")}
        record = {"operation": "Publish", "body": form}
        fault, latency = self._notification_fault("Publish", record)
        if latency:
            time.sleep(latency)
        subject = form.get("Subject")
        if fault == "accessDenied":
            return self._sns_error(403, "AuthorizationError", "not authorized to perform: SNS:Publish")
        if fault in ("throttle", "error5xx"):
            return self._sns_error(400, "Throttled", "Rate exceeded")
        if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return self._sns_error(403, "MissingAuthenticationToken", "Missing Authentication Token")
        if not form.get("TopicArn") or "Message" not in form:
            return self._sns_error(400, "InvalidParameter", "TopicArn and Message are required")
        if len(form["Message"].encode()) > 256 * 1024:
            return self._sns_error(400, "InvalidParameter", "Message too long")
        if subject is not None and (len(subject) >= 100 or not subject.isascii() or "\n" in subject):
            return self._sns_error(400, "InvalidParameter", "Subject must be ASCII, under 100 characters")
        with self.state.lock:
            self.state.notifications.append({
                "service": "sns", "topicArn": form["TopicArn"], "subject": subject,
                "message": json.loads(form["Message"]), "attributes": attributes})
        body = (
            '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
            f"<PublishResult><MessageId>{uuid.uuid4()}</MessageId></PublishResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</PublishResponse>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _sns_error(self, status, code, message):
        body = (
            '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
            f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        raw = self._read()
        if self.path.startswith("/_admin/"):
            return self._admin(raw)
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            if b"Action=Publish" in raw:
                return self._sns_publish(raw)
            return self._sts(raw)
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith("AWSEvents."):
            return self._put_events(target, raw)
        operation = target.removeprefix("SageMaker.")
        try:
            if not target.startswith("SageMaker.") or operation not in State.OPERATIONS:
                raise ApiError("UnknownOperationException", f"Unknown operation {target}")
            if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
                raise ApiError("MissingAuthenticationTokenException", "Missing Authentication Token")
            if self.headers.get("Content-Type", "").split(";")[0] != JSON_TYPE:
                raise ApiError("SerializationException", f"Content-Type must be {JSON_TYPE}")
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise ApiError("SerializationException", "Request body is not valid JSON")
            if not isinstance(body, dict):
                raise ApiError("SerializationException", "Request body must be a JSON object")
            with self.state.lock:
                self.state.calls.append((operation, body))
                fault = self.state.fault_for(operation)
                applying = self.state._faulty(operation)
                latency = applying.get("latencyMs", 0) / 1000
                hang = applying.get("hangMs", 0) / 1000
                # SageMaker's own text for injected errors: a test sets a marker
                # to show it never reaches a reply or a log line.
                message = self.state.faults.get("message")
                generation = self.state.generation
            if latency or hang:
                time.sleep(latency + hang)
                if self.state.generation != generation:
                    self.close_connection = True
                    return
            if fault == "throttle":
                raise ApiError("ThrottlingException", message or "Rate exceeded")
            if fault == "error5xx":
                raise ApiError("InternalFailure", message or "We encountered an internal error. Please try again.", 500)
            if fault == "accessDenied":
                raise ApiError("AccessDeniedException", message or (
                    f"User: arn:aws:sts::{self.state.account}:assumed-role/stopper/fn is not authorized "
                    f"to perform: sagemaker:{operation}"))
            with self.state.lock:
                result = getattr(self.state, operation)(body)
                gate = self.state.gate
            if gate is not None:
                gate.hold(operation, body)
            if fault == "truncate":
                return self._truncated(result)
            self._send(200, result)
        except ApiError as e:
            self._send(e.status, {"__type": e.code, "Message": e.message})

    def _truncated(self, result):
        """A reply cut mid-body: headers promise more than is sent."""
        body = json.dumps(result).encode()
        self.send_response(200)
        self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Content-Length", str(len(body) + 100))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _admin(self, raw):
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, {"error": "not JSON"})
        with self.state.lock:
            if self.path == "/_admin/seed":
                self.state.seed(payload)
            elif self.path == "/_admin/faults":
                self.state.faults = payload
                self.state.bucket = None
                gate = payload.get("gate")
                self.state.gate = Gate(gate["operation"], int(gate["parties"]), gate.get("match")) if gate else None
            else:
                return self._send(404, {"error": "unknown admin call"})
            return self._send(200, {"ok": True})


class QuietServer(ThreadingHTTPServer):
    """Clients that go away mid-connection (a function process stopped, a TLS
    handshake cut) are normal here, not tracebacks."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


def serve(port=0, seed=None, stop_settle_seconds=0.5, tls_cert=None, tls_key=None):
    """Starts the emulator in a background thread; returns (server, url)."""
    state = State(stop_settle_seconds)
    if seed:
        state.seed(seed)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = QuietServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    scheme = "http"
    if tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_cert, tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", help="JSON file with pipelines and executions")
    parser.add_argument("--stop-settle-seconds", type=float, default=0.5)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    seed = json.load(open(args.seed)) if args.seed else None
    server, url = serve(args.port, seed, args.stop_settle_seconds, args.tls_cert, args.tls_key)
    print(f"listening on {url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
