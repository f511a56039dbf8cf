#!/usr/bin/env python3
"""How long a commit's flush takes on this machine's disk, alone or while other writes are flushed beside it.

The foreground loop does what the decision log's commit does to its write-ahead log: overwrite 13 KiB in place
and fdatasync, back to back, for --seconds. With --background-pages N, a second thread meanwhile writes N
random 1 KiB pages of another (growing) file every --background-interval-ms and fdatasyncs it, which is what
a WAL checkpoint does to the database file. With --writeback-group G, the background thread first starts the
write-back of its pages G blocks at a time (posix_fadvise DONTNEED on each 4 KiB block it dirtied, in file
order), pausing --writeback-pause-us between groups, and flushes after that. Prints the foreground flush latency
distribution.

Usage: python3 scripts/probes/disk-flush-tail.py [--dir /var/tmp] [--seconds 10]
                                          [--background-pages 1500 --background-interval-ms 100]
                                          [--writeback-group 4 --writeback-pause-us 200]
"""
import argparse
import os
import random
import threading
import time


def background(path, pages, interval_s, group, pause_s, stop):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    page = os.urandom(1024)
    end = 0
    try:
        while not stop.is_set():
            blocks = set()
            for _ in range(pages):
                if end == 0 or random.random() < 0.3:  # some pages extend the file, as new rows do
                    offset, end = end, end + 1024
                else:
                    offset = random.randrange(0, end) // 1024 * 1024
                os.pwrite(fd, page, offset)
                blocks.add(offset // 4096)
            if group > 0:
                ordered = sorted(blocks)
                for i in range(0, len(ordered), group):
                    for block in ordered[i:i + group]:
                        os.posix_fadvise(fd, block * 4096, 4096, os.POSIX_FADV_DONTNEED)
                    time.sleep(pause_s)
            os.fdatasync(fd)
            time.sleep(interval_s)
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/var/tmp")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--background-pages", type=int, default=0)
    parser.add_argument("--background-interval-ms", type=float, default=100)
    parser.add_argument("--writeback-group", type=int, default=0)
    parser.add_argument("--writeback-pause-us", type=float, default=200)
    args = parser.parse_args()

    stop = threading.Event()
    worker = None
    if args.background_pages > 0:
        worker = threading.Thread(
            target=background,
            args=(os.path.join(args.dir, "flush-tail.background"), args.background_pages,
                  args.background_interval_ms / 1000, args.writeback_group, args.writeback_pause_us / 1e6,
                  stop),
        )
        worker.start()

    path = os.path.join(args.dir, "flush-tail.log")
    slots, size = 4096, 13 * 1024
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    latencies = []
    try:
        os.write(fd, b"\0" * (slots * size))  # allocated up front: the loop only overwrites
        os.fsync(fd)
        record = os.urandom(size)
        deadline = time.monotonic() + args.seconds
        i = 0
        while time.monotonic() < deadline:
            os.pwrite(fd, record, (i % slots) * size)
            i += 1
            started = time.perf_counter()
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(path)
        stop.set()
        if worker:
            worker.join()

    latencies.sort()
    n = len(latencies)

    def pct(q):
        return latencies[int(q * (n - 1))] * 1e6

    def over(limit):
        return sum(1 for x in latencies if x > limit) / n * 100

    label = (f"background {args.background_pages} pages every {args.background_interval_ms:g} ms"
             if args.background_pages else "no background writes")
    if args.background_pages and args.writeback_group:
        label += f", written back {args.writeback_group} blocks at a time every {args.writeback_pause_us:g} µs"
    print(f"{label}: {n} flushes in {args.seconds:g} s; p50 {pct(.5):.0f} µs, p99 {pct(.99):.0f} µs, "
          f"p99.9 {pct(.999):.0f} µs, max {latencies[-1] * 1e6:.0f} µs; over 1 ms {over(1e-3):.2f} %, "
          f"over 2 ms {over(2e-3):.3f} %")


if __name__ == "__main__":
    main()
