#!/usr/bin/env python3
"""Latency of reading the decision log over HTTP, one request after another (e.g. while `acgs bench` loads the
server): times N sequential GETs of PATH on one keep-alive connection, authenticated with BEARER (an API key
with the auditor role, or an access token), and prints p50, p90 and the maximum.

    python3 scripts/read-latency.py http://127.0.0.1:18099 acgs_... '/v1/decisions?limit=5' 100
"""
import http.client
import sys
import time
import urllib.parse


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    url, token, path, count = sys.argv[1:]
    target = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    times = []
    for _ in range(int(count)):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            print(f"GET {path}: {response.status}", file=sys.stderr)
            return 1
    times.sort()
    print(f"{len(times)} GET {path}: p50 {times[len(times) // 2]:.2f} ms, "
          f"p90 {times[int(len(times) * 0.9)]:.2f} ms, max {times[-1]:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
