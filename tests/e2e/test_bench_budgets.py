"""The benchmark's verdicts (bench/bench.py): a budget missed within its
recorded noise is told apart from one missed beyond it, and a sweep whose
invocation failed, or that left an execution running, misses its budget
whatever its time. No benchmark is run here: the verdicts are computed from
made-up measurements."""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import bench  # noqa: E402

QUIET = {key: 0.05 for key in bench.NOISE_KEYS}


def rust(**changes):
    sweep = {"wall_s": 2.6, "ok": True, "stopped": 1000, "error": None}
    measured = {"cold_init_ms": 2.4, "first_invocation_ms": 2.6, "cold_start_ms": 5.0, "warm_p50_ms": 0.95,
                "peak_rss_mb": 10.9, "sweep_20ms": dict(sweep), "sweep_rate_limited": dict(sweep)}
    for key, value in changes.items():
        if isinstance(value, dict):
            measured[key].update(value)
        else:
            measured[key] = value
    return measured


def verdicts(measured, peer=None):
    return {budget: verdict for budget, _, verdict in
            bench.budgets(measured, peer, 7_490_000, 1000, noise_of=QUIET)}


def verdict(measured, starts_with, peer=None):
    [found] = [v for b, v in verdicts(measured, peer).items() if b.startswith(starts_with)]
    return found


def test_every_budget_is_met_by_the_recorded_figures():
    recorded = json.loads((ROOT / "bench" / "results.json").read_text())
    checks = bench.budgets(recorded["results"]["rust"], recorded["results"]["boto3"], recorded["binary_bytes"],
                           recorded["settings"]["sweep"], recorded["largest_events"],
                           floor=recorded["results"]["floor"])
    assert all(v == "ok" for _, _, v in checks), checks
    assert any(b.startswith("cold init <= 3x the bare runtime") for b, _, _ in checks)


def test_init_is_judged_against_the_bare_runtime_and_the_felt_cold_start_against_30x():
    floor = {"cold_init_ms": 2.0}
    assert verdict_with_floor(rust(cold_init_ms=6.0), floor) == "ok"
    assert verdict_with_floor(rust(cold_init_ms=6.2), floor) == "missed within noise"  # 3.1x, noise 5%
    assert verdict_with_floor(rust(cold_init_ms=6.4), floor) == "MISSED"
    peer = {"cold_init_ms": 240.0, "cold_start_ms": 250.0, "peak_rss_mb": 53.0}
    # 250 / 8.3 = 30.1x; 250 / 8.6 = 29.1x, within 5%; 250 / 8.9 = 28.1x, beyond it.
    assert verdict(rust(cold_start_ms=8.3), "cold start (init + first) >= 30x", peer) == "ok"
    assert verdict(rust(cold_start_ms=8.6), "cold start (init + first) >= 30x", peer) == "missed within noise"
    assert verdict(rust(cold_start_ms=8.9), "cold start (init + first) >= 30x", peer) == "MISSED"


def verdict_with_floor(measured, floor):
    [found] = [v for b, _, v in bench.budgets(measured, None, 7_490_000, 1000, noise_of=QUIET, floor=floor)
               if b.startswith("cold init <= 3x the bare runtime")]
    return found


def test_a_miss_within_the_noise_is_told_apart_from_a_miss_beyond_it():
    assert verdict(rust(warm_p50_ms=1.99), "warm p50") == "ok"
    assert verdict(rust(warm_p50_ms=2.09), "warm p50") == "missed within noise"
    assert verdict(rust(warm_p50_ms=2.11), "warm p50") == "MISSED"
    peer = {"cold_init_ms": 240.0, "cold_start_ms": 250.0, "peak_rss_mb": 53.0}
    # 48 / 10.9 = 4.40x: within 5% of the 4.5x budget; 45 / 10.9 = 4.13x: beyond it.
    assert verdict(rust(), "peak RSS >= 4.5x", {**peer, "peak_rss_mb": 48.0}) == "missed within noise"
    assert verdict(rust(), "peak RSS >= 4.5x", {**peer, "peak_rss_mb": 45.0}) == "MISSED"


def test_counts_and_the_binary_have_no_tolerance():
    assert verdict(rust(sweep_rate_limited={"stopped": 999}), "all 1000 stopped") == "MISSED"
    checks = bench.budgets(rust(), None, 11_000_001, 1000, noise_of=QUIET)
    assert [v for b, _, v in checks if b.startswith("stripped binary")] == ["MISSED"]


def test_a_sweep_that_failed_or_left_executions_running_misses_whatever_its_time():
    assert verdict(rust(sweep_20ms={"ok": False, "error": "PartialFailure"}), "1000-execution sweep") == "MISSED"
    assert verdict(rust(sweep_20ms={"stopped": 998}), "1000-execution sweep") == "MISSED"
    assert verdict(rust(sweep_rate_limited={"ok": False, "error": "PartialFailure"}),
                   "all 1000 stopped") == "MISSED"
