"""What the trust-hardening choices cost on this machine, measured in isolation.

    python3 benches/costs.py [COMMITS]

1. SQLite in WAL mode, one small row per transaction (how the TSA's token log and a
   single `gpki cert issue` commit): commits/s with `synchronous = NORMAL` against
   `FULL`, on the same disk, in the same run. FULL syncs the WAL on every commit.
2. PBKDF2-HMAC-SHA256 (OpenSSL, through Python's hashlib): the time to open one key
   file at OpenSSL's default 2,048 iterations against gpki's 600,000.
"""
import hashlib
import os
import sqlite3
import sys
import tempfile
import time


def commits_per_second(mode: str, n: int) -> float:
    d = tempfile.mkdtemp(prefix="gpki-costs-", dir=os.environ.get("TMPDIR", "/tmp"))
    db = sqlite3.connect(os.path.join(d, "t.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {mode}")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    payload = os.urandom(200)
    start = time.perf_counter()
    for _ in range(n):
        db.execute("BEGIN")
        db.execute("INSERT INTO t (v) VALUES (?)", (payload,))
        db.execute("COMMIT")
    took = time.perf_counter() - start
    db.close()
    return n / took


def pbkdf2_seconds(iterations: int) -> float:
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        hashlib.pbkdf2_hmac("sha256", b"correct horse battery staple", os.urandom(16), iterations, 32)
        runs.append(time.perf_counter() - start)
    return sorted(runs)[1]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    results = {}
    for mode in ("NORMAL", "FULL", "NORMAL", "FULL"):
        results.setdefault(mode, []).append(commits_per_second(mode, n))
    normal, full = max(results["NORMAL"]), max(results["FULL"])
    print(f"sqlite WAL, one row per commit, {n} commits (best of 2): "
          f"NORMAL {normal:,.0f}/s, FULL {full:,.0f}/s, FULL/NORMAL = {full / normal:.2f}; "
          f"a FULL commit costs {1000 / full - 1000 / normal:.3f} ms more")
    low, high = pbkdf2_seconds(2048), pbkdf2_seconds(600_000)
    print(f"pbkdf2-hmac-sha256 (median of 3): 2,048 iterations {low * 1000:.2f} ms, "
          f"600,000 iterations {high * 1000:.1f} ms ({high / low:.0f}x)")


if __name__ == "__main__":
    main()
