#!/usr/bin/env python3
"""Which b-trees the commits in an SQLite write-ahead log wrote, in pages per commit.

Reads the valid frames of DB-wal (those carrying the log header's salts), groups them into commits (a frame with a
database size closes one), and names each frame's page from SQLite's `dbstat` table on a copy of DB and its log.
Run it on a data directory after `kill -9` of a server under load, so the log still holds the last commits:

    acgs up --data-dir /var/tmp/acgs-frames & ...load with acgs bench...; kill -9 %1
    python3 scripts/wal-frames.py /var/tmp/acgs-frames/acgs.db

With `--window N` it also prints what a checkpoint pass copying N commits at a time writes back to the database
file: its distinct pages, and how many separate runs of 4 KiB blocks they make (each run is a write request of
its own; at 5,000 decisions/s a 10 ms pass covers about 40 commits).
"""
import argparse
import collections
import shutil
import sqlite3
import struct
import tempfile
from pathlib import Path


def commits(wal: bytes) -> tuple[int, list[list[int]]]:
    """The page size and, per commit, the page numbers of its frames."""
    _magic, _version, page_size, _seq, salt1, salt2 = struct.unpack(">IIIIII", wal[:24])
    done, current, offset = [], [], 32
    while offset + 24 + page_size <= len(wal):
        page, db_size, s1, s2 = struct.unpack(">IIII", wal[offset:offset + 16])
        if (s1, s2) != (salt1, salt2):
            break
        current.append(page)
        if db_size:
            done.append(current)
            current = []
        offset += 24 + page_size
    return page_size, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, help="the database file; its log is DB-wal")
    parser.add_argument("--window", type=int, default=0, metavar="N",
                        help="also print the pages and 4 KiB block runs of every N commits taken together")
    args = parser.parse_args()
    db = args.db
    page_size, log = commits(Path(f"{db}-wal").read_bytes())
    if not log:
        raise SystemExit(f"{db}-wal holds no committed frames")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.db"
        shutil.copy(db, copy)
        shutil.copy(f"{db}-wal", f"{copy}-wal")
        with sqlite3.connect(copy) as conn:
            owner = {
                page: name + (" (overflow)" if kind == "overflow" else "")
                for name, page, kind in conn.execute("SELECT name, pageno, pagetype FROM dbstat")
            }
    frames = sum(map(len, log))
    print(f"page size {page_size}, {len(log)} commits, {frames} frames, {frames / len(log):.2f} frames per commit")
    per_tree = collections.Counter(owner.get(page, "(freed since)") for commit in log for page in commit)
    for name, count in per_tree.most_common():
        print(f"  {name:36s} {count / len(log):.2f} per commit")
    if args.window > 0:
        windows = [log[i:i + args.window] for i in range(0, len(log) - args.window + 1, args.window)]
        if not windows:
            raise SystemExit(f"the log holds {len(log)} commits, fewer than one window of {args.window}")
        pages = runs = 0
        for window in windows:
            distinct = sorted({page for commit in window for page in commit})
            blocks = sorted({(page - 1) * page_size // 4096 for page in distinct})
            pages += len(distinct)
            runs += 1 + sum(1 for a, b in zip(blocks, blocks[1:]) if b != a + 1)
        print(f"per {args.window} commits ({len(windows)} windows): {pages / len(windows):.0f} distinct pages "
              f"in {runs / len(windows):.0f} runs of 4 KiB blocks")


if __name__ == "__main__":
    main()
