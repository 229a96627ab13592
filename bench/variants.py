"""Prints the table of bench/variants' results (bench/variant-results/*.json)."""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    print("| variant | commit | sweep 20 ms/call | sweep under 100 req/s | cold init | first invocation | "
          "peak RSS | binary |\n|---|---|---|---|---:|---:|---:|---:|")
    for path in sorted((ROOT / "bench" / "variant-results").glob("*.json")):
        run = json.loads(path.read_text())
        results = run["results"]
        r = results.get("rust") or results.get("rust_sweeps") or {}

        def sweep(key):
            s = r.get(key)
            if not s:
                return ""
            return f"{s['wall_s']:.2f} s, {s['stopped']} stopped{'' if s['ok'] else ', ' + str(s['error'])}"

        rss = r.get("peak_rss_mb") or max((r.get("rss_mb") or {}).values(), default=None)
        cells = [path.stem, run.get("commit") or "", sweep("sweep_20ms"), sweep("sweep_rate_limited"),
                 f"{r['cold_init_ms']:.1f} ms" if "cold_init_ms" in r else "",
                 f"{r['first_invocation_ms']:.1f} ms" if "first_invocation_ms" in r else "",
                 f"{rss:.1f} MB" if rss else "", f"{run['binary_bytes'] / 1e6:.2f} MB"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
