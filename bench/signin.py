#!/usr/bin/env python3
"""Sign-in under a flood, and the memory sign-ins leave behind (issue 24, points 5 and 7).

Starts `careq serve` on a free port with a new SQLite file and prints figures; nothing is
asserted about time. Two parts, each on a server of its own:

(a) --threads threads post wrong sign-ins (random unknown usernames) from 127.0.0.2 for
    --flood-seconds; meanwhile --visitors sign-ins with the right password come one after
    another from 127.0.0.3. Printed: the flood's answers by status, and the visitors' successes
    and latencies.
(b) --bursts bursts of --burst-size sign-ins at once (right password, each from an address of
    its own in 127.0.1.0/24; a 503 or 429 is retried after its Retry-After, so every sign-in of
    a burst is hashed). Printed: the server's VmRSS (/proc/PID/status) at the start and after
    each burst, and its peak (VmHWM).

    bench/signin.py [BINARY] [--flood-seconds 8] [--threads 32] [--visitors 10]
                    [--bursts 10] [--burst-size 32]

BINARY defaults to target/release/careq, built first (`cargo build --release -p careq`) when it
is missing. CAREQ_PASSWORD_HASH_SLOTS and CAREQ_PASSWORD_HASH_PER_ADDRESS are passed on to the
server; every other CAREQ_* variable is ignored. Exits 1 when a visitor's sign-in failed during
the flood or the server died. Python 3 standard library only; Linux (reads /proc).
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-signin-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, work, name):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAREQ_")}
        for keep in ("CAREQ_PASSWORD_HASH_SLOTS", "CAREQ_PASSWORD_HASH_PER_ADDRESS"):
            if keep in os.environ:
                env[keep] = os.environ[keep]
        env.update(
            CAREQ_LISTEN=f"127.0.0.1:{self.port}",
            CAREQ_DATABASE_URL=f"sqlite://{work}/{name}.db",
            CAREQ_EXPORT_DIR=f"{work}/{name}-exports",
            CAREQ_ADMIN_PASSWORD=PASSWORD,
            CAREQ_LOG="warn",
        )
        self.log = open(f"{work}/{name}.log", "wb")
        self.proc = subprocess.Popen(
            [binary, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        for _ in range(600):
            if self.proc.poll() is not None:
                break
            try:
                status, _, _ = request("127.0.0.1", self.port, "GET", "/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        with open(f"{work}/{name}.log", "rb") as log:
            sys.stderr.write(log.read().decode(errors="replace"))
        sys.exit("signin: the server did not start")

    def alive(self):
        return self.proc.poll() is None

    def memory_kb(self):
        """(VmRSS, VmHWM) in kB."""
        found = {}
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
        return found["VmRSS"], found["VmHWM"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def request(source, port, method, path, body=None, conn=None):
    """(status, headers, body); a new connection from `source` unless one is given."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=60, source_address=(source, 0)
        )
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        payload = res.read()
        return res.status, dict(res.getheaders()), payload
    finally:
        if own:
            conn.close()


def sign_in(source, port, username, password, conn=None):
    return request(
        source,
        port,
        "POST",
        "/v1/auth/token",
        {"username": username, "password": password},
        conn,
    )


def flood(binary, work, args):
    server = Server(binary, work, "flood")
    port = server.port
    stop = threading.Event()
    counts = {}
    lock = threading.Lock()

    def flooder():
        conn = None
        while not stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=60, source_address=("127.0.0.2", 0)
                )
            try:
                status, _, _ = sign_in(
                    "127.0.0.2", port, f"nobody-{uuid.uuid4().hex[:12]}", "a wrong password", conn
                )
                key = status if status in (401, 429, 503) else "other"
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                key = "error"
            with lock:
                counts[key] = counts.get(key, 0) + 1
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=flooder, daemon=True) for _ in range(args.threads)]
    started = time.monotonic()
    for t in threads:
        t.start()
    # The visitors come spread over the flood, the first after a tenth of it.
    visitors = []
    gap = args.flood_seconds / (args.visitors + 1)
    time.sleep(min(gap, args.flood_seconds / 10))
    for _ in range(args.visitors):
        t0 = time.monotonic()
        try:
            status, _, _ = sign_in("127.0.0.3", port, "admin", PASSWORD)
        except (OSError, http.client.HTTPException):
            status = "error"
        visitors.append((status, (time.monotonic() - t0) * 1000))
        rest = gap - (time.monotonic() - t0)
        if rest > 0:
            time.sleep(rest)
    rest = args.flood_seconds - (time.monotonic() - started)
    if rest > 0:
        time.sleep(rest)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    alive = server.alive()
    server.stop()

    total = sum(counts.values())
    print(f"(a) flood: {args.threads} threads from 127.0.0.2 for {elapsed:.1f} s, "
          f"{total} wrong sign-ins ({total / elapsed:.0f}/s)")
    for key in (401, 429, 503, "other", "error"):
        print(f"    {key!s:>5}: {counts.get(key, 0)}")
    ok = [ms for status, ms in visitors if status == 200]
    print(f"    other address (127.0.0.3), right password: {len(ok)} of {len(visitors)} signed in"
          + ("" if len(ok) == len(visitors)
             else f"; answers {[status for status, _ in visitors]}"))
    if ok:
        print(f"    their latency: min {min(ok):.0f} ms, median {statistics.median(ok):.0f} ms, "
              f"max {max(ok):.0f} ms")
    return alive and len(ok) == len(visitors)


def bursts(binary, work, args):
    server = Server(binary, work, "bursts")
    port = server.port
    # One sign-in first, so the start figure is a server that has served.
    sign_in("127.0.0.1", port, "admin", PASSWORD)
    rss, _ = server.memory_kb()
    print(f"(b) RSS after start and one sign-in: {rss / 1024:.1f} MB")
    alive = True

    def one(source, tally, lock):
        for _ in range(120):
            try:
                status, headers, _ = sign_in(source, port, "admin", PASSWORD)
            except (OSError, http.client.HTTPException):
                status, headers = "error", {}
            with lock:
                tally[status] = tally.get(status, 0) + 1
            if status in (429, 503):
                time.sleep(float(headers.get("retry-after", headers.get("Retry-After", "1"))))
                continue
            return

    for burst in range(1, args.bursts + 1):
        tally, lock = {}, threading.Lock()
        threads = [
            threading.Thread(target=one, args=(f"127.0.1.{1 + i}", tally, lock), daemon=True)
            for i in range(args.burst_size)
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not server.alive():
            alive = False
            print(f"    burst {burst}: the server died")
            break
        rss, hwm = server.memory_kb()
        answers = ", ".join(f"{k}×{v}" for k, v in sorted(tally.items(), key=str))
        print(f"    after burst {burst:>2} of {args.burst_size}: RSS {rss / 1024:6.1f} MB "
              f"(peak {hwm / 1024:.1f} MB; {time.monotonic() - t0:.1f} s; answers {answers})")
    server.stop()
    return alive


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary", nargs="?", default=os.path.join(ROOT, "target/release/careq"))
    parser.add_argument("--flood-seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--visitors", type=int, default=10)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--burst-size", type=int, default=32)
    args = parser.parse_args()
    for name in ("threads", "visitors", "bursts", "burst_size"):
        if getattr(args, name) < 1 or (name == "burst_size" and args.burst_size > 254):
            parser.error(f"--{name.replace('_', '-')} out of range")
    binary = os.path.abspath(args.binary)
    if not os.path.exists(binary):
        if args.binary != parser.get_default("binary"):
            sys.exit(f"signin: no binary at {binary}")
        print("signin: building the release binary", flush=True)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "careq"], cwd=ROOT, check=True)
    slots = os.environ.get("CAREQ_PASSWORD_HASH_SLOTS", "default")
    share = os.environ.get("CAREQ_PASSWORD_HASH_PER_ADDRESS", "default")
    print(f"signin: {binary} (hash slots: {slots}, per address: {share}; "
          f"{os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="careq-signin.") as work:
        ok = flood(binary, work, args)
        ok = bursts(binary, work, args) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
