#!/usr/bin/env python3
"""How long a commit's flush takes on this machine's disk, alone or while other writes are flushed beside it.

The foreground loop does what the decision log's commit does to its write-ahead log: overwrite 13 KiB in place
and fdatasync, back to back, for --seconds. With --background-pages N, a second thread meanwhile writes N
random 1 KiB pages of another (growing) file every --background-interval-ms and fdatasyncs it, which is what
a WAL checkpoint does to the database file. Prints the foreground flush latency distribution.

Usage: python3 scripts/disk-flush-tail.py [--dir /var/tmp] [--seconds 10]
                                          [--background-pages 1500 --background-interval-ms 100]
"""
import argparse
import os
import random
import threading
import time


def background(path, pages, interval_s, stop):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    page = os.urandom(1024)
    end = 0
    try:
        while not stop.is_set():
            for _ in range(pages):
                if end == 0 or random.random() < 0.3:  # some pages extend the file, as new rows do
                    offset, end = end, end + 1024
                else:
                    offset = random.randrange(0, end) // 1024 * 1024
                os.pwrite(fd, page, offset)
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
    args = parser.parse_args()

    stop = threading.Event()
    worker = None
    if args.background_pages > 0:
        worker = threading.Thread(
            target=background,
            args=(os.path.join(args.dir, "flush-tail.background"), args.background_pages,
                  args.background_interval_ms / 1000, stop),
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
    print(f"{label}: {n} flushes in {args.seconds:g} s; p50 {pct(.5):.0f} µs, p99 {pct(.99):.0f} µs, "
          f"p99.9 {pct(.999):.0f} µs, max {latencies[-1] * 1e6:.0f} µs; over 1 ms {over(1e-3):.2f} %, "
          f"over 2 ms {over(2e-3):.3f} %")


if __name__ == "__main__":
    main()
