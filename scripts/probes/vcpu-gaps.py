#!/usr/bin/env python3
"""How often this machine's vCPUs stop running: a probe for a shared VM before judging a millisecond tail.

Runs one busy thread per vCPU (as processes, so Python's lock does not serialise them), each reading the clock in a
tight loop for SECONDS, and reports the gaps between consecutive readings: a gap of more than 0.2 ms on an
otherwise idle machine is time the host (or the kernel) took the vCPU away. At 5,000 requests/s, a gap of g ms on
the vCPU that runs the log writer or an HTTP worker holds up about 5·g requests; an HTTP p99 of 2 ms allows 1 % of
requests over 2 ms, i.e. about 50 a second. Run it with nothing else running:

    python3 scripts/probes/vcpu-gaps.py --seconds 5
"""
import argparse
import multiprocessing
import os
import time


def probe(seconds: float) -> list[float]:
    """Gaps over 0.2 ms, in seconds, seen by one busy loop."""
    gaps = []
    last = time.perf_counter()
    end = last + seconds
    while last < end:
        now = time.perf_counter()
        if now - last > 0.0002:
            gaps.append(now - last)
        last = now
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="busy loops (default: one per vCPU)")
    args = parser.parse_args()
    with multiprocessing.Pool(args.threads) as pool:
        results = pool.map(probe, [args.seconds] * args.threads)
    for i, gaps in enumerate(results):
        over = {ms: sum(g > ms / 1000 for g in gaps) for ms in (1, 2, 5)}
        print(
            f"vCPU loop {i}: {len(gaps)} gaps over 0.2 ms, {over[1]} over 1 ms, {over[2]} over 2 ms, {over[5]} over 5 ms; "
            f"longest {max(gaps, default=0) * 1000:.2f} ms; {100 * sum(gaps) / args.seconds:.2f} % of the time lost"
        )


if __name__ == "__main__":
    main()
