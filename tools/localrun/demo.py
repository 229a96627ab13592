#!/usr/bin/env python3
"""Runs sagemaker-pipeline-stopper locally and shows what it does.

Starts the SageMaker emulator seeded with demo pipelines, runs the function
binary under a local Lambda Runtime API, sends it a scheduled stop, an alarm and
an HTTP request from events/, and prints each reply, the executions' states
before and after, and the reason each stop wrote on its execution. Everything runs on 127.0.0.1; nothing calls AWS.

Usage: demo.py BINARY
"""

import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import lambda_runtime  # noqa: E402
import sagemaker_emulator  # noqa: E402

SEED = json.loads((HERE / "demo-seed.json").read_text())

SCENES = [
    ("A schedule fires: EventBridge Scheduler's input names the pipeline",
     "scheduler-input.json"),
    ("The runtime guard runs: nightly-training is tagged pipeline-stopper:max-runtime=4h",
     "guard-schedule.json"),
    ("An alarm goes off: 'nightly-training has run longer than 4 hours' (EventBridge alarm event)",
     "alarm-eventbridge.json"),
    ("Someone presses 'stop' on a dashboard: POST /stop through an HTTP API",
     "http-api.json"),
    ("The same alarm returns to OK: nothing to do",
     "alarm-eventbridge-ok.json"),
]


def short(arn):
    return arn.split(":pipeline/")[1]


def show_states(before, after):
    for arn in sorted(after):
        b, a = before.get(arn, "-"), after[arn]
        mark = "  <- changed" if a != b else ""
        print(f"    {short(arn):48} {b:>10} -> {a:<10}{mark}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    server, url = sagemaker_emulator.serve(stop_settle_seconds=0.3)
    state = server.RequestHandlerClass.state
    api = lambda_runtime.RuntimeApi()
    proc = lambda_runtime.FunctionProcess([sys.argv[1]], api, lambda_runtime.function_env(api, url))
    try:
        init_ms = proc.wait_ready()
        print(f"SageMaker emulator on {url}; function started in {init_ms:.1f} ms "
              f"(Lambda Runtime API on {api.address})")
        for title, file in SCENES:
            with state.lock:
                state.seed(SEED)
                seeded = state.snapshot()["executions"]
                before = {a: e["status"] for a, e in seeded.items()}
            event = json.loads((ROOT / "events" / file).read_text())
            print(f"\n== {title}\n   event: events/{file}")
            inv = api.invoke(event)
            reply = inv.payload
            if isinstance(reply, dict) and "statusCode" in reply:
                print(f"   reply: HTTP {reply['statusCode']} {reply.get('body')}")
            else:
                kind = "reply" if inv.ok else f"error ({inv.error_type})"
                print(f"   {kind} in {inv.duration_ms:.1f} ms:")
                print("     " + json.dumps(reply, indent=2).replace("\n", "\n     "))
            time.sleep(0.5)
            with state.lock:
                snap = state.snapshot()
            show_states(before, {a: e["status"] for a, e in snap["executions"].items()})
            for arn, execution in sorted(snap["executions"].items()):
                if execution["description"] != seeded[arn]["description"]:
                    print(f"    description of {short(arn)}, as SageMaker Studio shows it:\n"
                          f"      {execution['description']}")
            for msg in snap["sqsMessages"]:
                print(f"    (callback step still running: SageMaker sent {json.dumps(msg['Body'])} "
                      f"to {msg['QueueUrl']}; the execution stays Stopping until the step is answered)")
        print("\nFunction log (JSON lines with AWS_LAMBDA_LOG_FORMAT=JSON; text here):")
        for line in proc.logs[-8:]:
            print("   ", line)
    finally:
        proc.stop()
        api.close()
        server.shutdown()
    print("\nDone: emulator and function stopped. Poke at it yourself: docs/local.md, 'Run it by hand'.")


if __name__ == "__main__":
    main()
