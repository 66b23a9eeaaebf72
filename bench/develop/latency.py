#!/usr/bin/env python3
"""Latency driver of bench/develop_bench.sh: ingest-to-table latency through `develop`.

Usage: latency.py URL DB SECONDS RATE

Sends RATE requests a second for SECONDS over one keep-alive HTTP connection (PUT /ingest,
one document each, ids 1..N), while another thread polls the SQLite table `events` of DB
for new ids every millisecond. For each document, the latency is the time from receiving
its ingest response to the poller first seeing its row (0 when the row was visible first).
Prints `latency: N docs, p50 X ms, p99 Y ms, max Z ms, sent R docs/s` and exits 1 if a row
never appears.
"""
import http.client
import json
import sqlite3
import sys
import threading
import time
import urllib.parse

url, db, seconds, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
n = int(seconds * rate)
parsed = urllib.parse.urlparse(url)
responded = [0.0] * (n + 1)
visible = [0.0] * (n + 1)
done = threading.Event()


def poll():
    conn = None
    last = 0
    while last < n and not done.is_set():
        try:
            if conn is None:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            rows = conn.execute("SELECT id FROM events WHERE id > ? ORDER BY id", (last,)).fetchall()
        except sqlite3.Error:
            rows = []  # the table is not created yet
        now = time.monotonic()
        for (i,) in rows:
            if 0 < i <= n and not visible[i]:
                visible[i] = now
            last = max(last, i)
        time.sleep(0.001)


poller = threading.Thread(target=poll, daemon=True)
poller.start()
conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
start = time.monotonic()
for i in range(1, n + 1):
    due = start + (i - 1) / rate
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    body = json.dumps({"bench/events": [{"id": i, "body": "x" * 200}]})
    conn.request("PUT", "/ingest", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    responded[i] = time.monotonic()
    if response.status != 200:
        print(f"FAIL: request {i}: HTTP {response.status}", file=sys.stderr)
        sys.exit(1)
elapsed = time.monotonic() - start
poller.join(timeout=10)
done.set()
missing = [i for i in range(1, n + 1) if not visible[i]]
if missing:
    print(f"FAIL: {len(missing)} rows never appeared (first: id {missing[0]})", file=sys.stderr)
    sys.exit(1)
lat = sorted(max(0.0, visible[i] - responded[i]) * 1000 for i in range(1, n + 1))


def pct(p):
    return lat[min(len(lat) - 1, int(p / 100 * len(lat)))]


print(f"latency: {n} docs, p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms, max {lat[-1]:.1f} ms, "
      f"sent {n / elapsed:.0f} docs/s")
