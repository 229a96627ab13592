"""The runtime guard's benchmark (issue 14): finding the executions over
their pipeline's limit without a call per pipeline per run. One account of
500 pipelines, 100 of them tagged; 2,000 running executions, 50 of them past
their limit; every SageMaker call answered after 20 ms, under a request-rate
limit shared by all operations.

The release bootstrap's whole guard run ({"Guard": true}) under the local
Runtime API, stops included, checked against the budgets:
discovery in at most 30 calls, the run in at most 10 s, the 50 stopped once
and nothing else.

Run through bench/run (after bench.py), or:
  .venv-bench/bin/python bench/guard.py --function target/lambda/sagemaker-pipeline-stopper/bootstrap
Writes bench/guard-results.json. Exit 3: a budget missed. Nothing calls AWS."""

import argparse
import datetime
import json
import os
import pathlib
import platform
import random
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "localrun"))
sys.path.insert(0, str(ROOT / "bench"))

import lambda_runtime  # noqa: E402
import sagemaker_emulator  # noqa: E402
from bench import BUDGET_MISSED, make_ca  # noqa: E402

ACCOUNT, REGION = "123456789012", "us-east-1"
TAG = "pipeline-stopper:max-runtime"
PIPELINES, TAGGED, RUNNING, OVER = 500, 100, 2000, 50
LATENCY_MS = 20
DISCOVERY_CALLS_BUDGET, RUN_SECONDS_BUDGET = 30, 10.0


def account_seed(rng):
    """500 pipelines, the first 100 tagged 4h; 4 running executions each.
    Tagged pipelines' executions: 50 past 4h (241-600 minutes), the rest
    younger. Untagged pipelines' executions: any age up to 10 h, so many are
    older than every limit and must be left alone."""
    limit = 240
    over = set(rng.sample(range(TAGGED * 4), OVER))
    pipelines = []
    for p in range(PIPELINES):
        tagged = p < TAGGED
        executions = []
        for e in range(RUNNING // PIPELINES):
            if tagged:
                i = p * 4 + e
                age = rng.uniform(limit + 1, 600) if i in over else rng.uniform(1, limit - 1)
            else:
                age = rng.uniform(1, 600)
            executions.append({"id": f"x{p:03d}e{e}", "startedMinutesAgo": age})
        executions.append({"id": f"x{p:03d}done", "startedMinutesAgo": 2000, "status": "Succeeded"})
        pipelines.append({"name": f"pipeline-{p:03d}", "tags": {TAG: "4h"} if tagged else {"team": "ml"},
                          "executions": executions})
    expected = {f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/pipeline-{i // 4:03d}/execution/x{i // 4:03d}e{i % 4}"
                for i in over}
    return {"account": ACCOUNT, "region": REGION, "pipelines": pipelines}, expected


class Emulator:
    def __init__(self, server):
        self.state = server.RequestHandlerClass.state

    def reset(self, seed, rate):
        with self.state.lock:
            self.state.seed(seed)
            self.state.faults, self.state.bucket = {"latencyMs": LATENCY_MS, "rateLimitPerSecond": rate}, None
            self.state.throttled = 0

    def calls(self):
        with self.state.lock:
            ops = [op for op, _ in self.state.calls]
            stops = list(self.state.stop_requests)
        return {op: ops.count(op) for op in sorted(set(ops))}, stops, self.state.throttled


def measure_function(emu, function, url, ca, seed, expected, rate):
    emu.reset(seed, rate)
    api = lambda_runtime.RuntimeApi(timeout_seconds=60)
    env = lambda_runtime.function_env(api, url, {"AWS_CA_BUNDLE": ca,
                                                 "AWS_LAMBDA_LOG_LEVEL": "WARN", "MAX_CONCURRENCY": "16"})
    proc = lambda_runtime.FunctionProcess([function], api, env)
    try:
        proc.wait_ready(60)
        inv = api.invoke({"Guard": True}, wait_seconds=60)
    finally:
        proc.stop()
        api.close()
    calls, stops, throttled = emu.calls()
    reply = inv.payload if inv.ok else {}
    stopped = {e["PipelineExecutionArn"] for e in reply.get("Executions", []) if e["Outcome"] == "StopRequested"}
    per_execution = {}
    for s in stops:
        per_execution.setdefault(s["arn"], set()).add(s["token"])
    return {"ok": inv.ok, "error": None if inv.ok else inv.payload, "wall_s": round(inv.duration_ms / 1000, 3),
            "calls": sum(calls.values()), "by_operation": calls, "discovery_calls": calls.get("Search", 0),
            "throttled": throttled, "stopped": len(stopped), "stopped_exactly_the_50": stopped == expected,
            "one_token_each": set(per_execution) == expected and all(len(t) == 1 for t in per_execution.values()),
            "summary": reply.get("Guard")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--function", required=True, help="the release bootstrap")
    parser.add_argument("--rate", type=float, default=50, help="requests per second the emulator allows (all operations)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "guard-results.json"))
    args = parser.parse_args()
    seed, expected = account_seed(random.Random(14))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tls = make_ca(tmp)
        server, url = sagemaker_emulator.serve(stop_settle_seconds=0.2, tls_cert=str(tls["cert"]),
                                               tls_key=str(tls["key"]))
        emu, ca = Emulator(server), str(tls["ca"])
        results["function"] = measure_function(emu, args.function, url, ca, seed, expected, args.rate)
        server.shutdown()

    f = results["function"]
    checks = [
        (f"discovery in at most {DISCOVERY_CALLS_BUDGET} calls", f["discovery_calls"],
         f["discovery_calls"] <= DISCOVERY_CALLS_BUDGET),
        (f"the whole guard run in at most {RUN_SECONDS_BUDGET:.0f} s", f"{f['wall_s']:.2f} s",
         f["ok"] and f["wall_s"] <= RUN_SECONDS_BUDGET),
        ("the 50 over their limit stopped, once each, and nothing else", f["stopped"],
         f["ok"] and f["stopped_exactly_the_50"] and f["one_token_each"]),
    ]
    report = {"date": datetime.date.today().isoformat(),
              "commit": os.popen(f"git -C {ROOT} rev-parse --short HEAD 2>/dev/null").read().strip() or None,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "setup": {"pipelines": PIPELINES, "tagged": TAGGED, "running": RUNNING, "over_limit": OVER,
                        "latency_ms": LATENCY_MS, "rate_per_second": args.rate},
              "results": results,
              "budgets": [{"budget": b, "measured": m, "verdict": "ok" if ok else "MISSED"} for b, m, ok in checks]}
    pathlib.Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")

    print(f"\nGuard discovery: {PIPELINES} pipelines ({TAGGED} tagged), {RUNNING} running executions "
          f"({OVER} over their limit), {LATENCY_MS} ms per call, {args.rate:.0f} requests/s\n")
    ops = ", ".join(f"{op} {n}" for op, n in f["by_operation"].items())
    print(f"The function ({{\"Guard\": true}}, release build): {f['wall_s']:.2f} s, {f['calls']} calls ({ops}), "
          f"{f['throttled']} throttled, {f['stopped']} stopped")
    print("\n| budget | measured | |\n|---|---:|---|")
    for budget, measured, ok in checks:
        print(f"| {budget} | {measured} | {'ok' if ok else 'MISSED'} |")
    print(f"\nJSON: {args.out}")
    return 0 if all(ok for *_, ok in checks) else BUDGET_MISSED


if __name__ == "__main__":
    sys.exit(main())
