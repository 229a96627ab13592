"""The run-to-run noise of the benchmark's measures on this machine: runs the
full benchmark RUNS times in a row against the same build and records, for
each measure a budget checks, its spread (max - min) / median. bench.py then
fails a budget only when it is missed by more than that (bench/noise.json).

Run through bench/noise, which builds the function as bench/run does."""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--function", required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(bench.NOISE_FILE))
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            out = pathlib.Path(tmp) / f"run{i}.json"
            print(f"== run {i + 1} of {args.runs}", flush=True)
            # Exit 3 (a budget missed) is a measurement like any other here.
            status = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--function", args.function,
                                     "--python", args.python, "--out", str(out)], stdout=subprocess.DEVNULL).returncode
            if status not in (0, bench.BUDGET_MISSED):
                sys.exit(f"run {i + 1} broke (exit {status})")
            runs.append(json.loads(out.read_text()))
    measures = [bench.noise_measures(run) for run in runs]
    noise, values = {}, {}
    for key in bench.NOISE_KEYS:
        series = [m[key] for m in measures if key in m]
        if len(series) < 2:
            continue
        values[key] = series
        noise[key] = round((max(series) - min(series)) / statistics.median(series), 3)
    record = {"runs": args.runs, "commit": runs[0].get("commit"), "date": runs[0].get("date"),
              "machine": runs[0].get("machine"), "noise": noise, "values": values}
    pathlib.Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print("\n| measure | runs | noise |\n|---|---|---:|")
    for key, series in values.items():
        print(f"| {key} | {', '.join(f'{v:.2f}' for v in series)} | {noise[key]:.1%} |")
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
