#!/usr/bin/env python3
"""Attacks on a running Vantage, one at a time, while a normal client keeps asking: what the attack costs the
normal client (p99 latency, failures), and whether the server's memory and descriptors come back afterwards.

Each attack runs for --seconds against a Vantage started here (release build) on loopback ports, with its own
certificate, a 4 MB static file, a fixed answer and a spool. Before, during and 15 s after each attack the script
samples Vantage's RSS (/proc/PID/status) and open descriptors (/proc/PID/fd); the normal client sends one
keep-alive GET every 20 ms and times it.

Attacks (all bounded in time and connections, loopback only):
  slowloris           500 connections sending a request head one byte every second
  slow-body           500 uploads declaring 1 MB and sending a byte every two seconds
  pipelined-refusals  connections sending 200 pipelined requests behind a refused one, over and over
  h2-zero-window      50 HTTP/2 connections announcing a zero window, each asking for the 4 MB file 100 times
  h2-settings-flood   HTTP/2 SETTINGS frames as fast as they go (server must ACK each), reading nothing back
  h2-ping-flood       PING frames, reading nothing back
  h2-continuation-flood  an endless CONTINUATION chain on one stream
  h2-empty-data-flood    empty DATA frames on an open stream

Targets (issue 15): the normal client's p99 stays under 50 ms during every attack; RSS and descriptors return to
their level before the attack (within 20%) within 15 s after it.

Usage: Benchmarks/abuse.py [--binary PATH] [--seconds 10] [--attacks slowloris,h2-ping-flood] [--json FILE]
(run from the repository root; without --binary it builds the release binary with scripts/build-release.sh)
"""
import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import free_port, rss_kib  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


# HPACK: indexed :method GET (2), :scheme https (7), :path / (4); literal :authority (index 1) "localhost".
HEAD_GET = bytes([0x82, 0x87, 0x84, 0x41, 0x09]) + b"localhost"
# :method POST (3).
HEAD_POST = bytes([0x83, 0x87, 0x84, 0x41, 0x09]) + b"localhost"


def descriptors(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def tls_h2(port, settings=b""):
    """A TLS connection that agreed on h2, with the preface and a SETTINGS frame sent."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock = context.wrap_socket(raw, server_hostname="localhost")
    sock.sendall(PREFACE + frame(4, 0, 0, settings))
    return sock


def until(deadline, body):
    """Runs body() (one connection's attack) again and again until the deadline; errors mean the server hung up."""
    while time.time() < deadline:
        try:
            body()
        except (OSError, ssl.SSLError):
            time.sleep(0.05)


# MARK: - Attacks (each runs in its own process until `deadline`)

def hold(open_one, trickle, interval, deadline, count=500):
    """Keeps `count` connections open (reopening the ones the server closes), sending `trickle` on each every
    `interval` seconds until the deadline."""
    socks = []

    def replace():
        try:
            s = socket.create_connection(("127.0.0.1", open_one.port), timeout=5)
            s.sendall(open_one.head)
            socks.append(s)
        except OSError:
            pass

    for _ in range(count):
        replace()
    while time.time() < deadline:
        for s in list(socks):
            try:
                s.sendall(trickle)
            except OSError:
                socks.remove(s)
                replace()
        time.sleep(interval)
    for s in socks:
        s.close()


class Opening:
    def __init__(self, port, head):
        self.port, self.head = port, head


def slowloris(http, https, deadline):
    hold(Opening(http, b"GET /ok HTTP/1.1\r\n"), b"X", 1, deadline)


def slow_body(http, https, deadline):
    hold(Opening(http, b"POST /ok HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n"), b"x", 2, deadline)


def pipelined_refusals(http, https, deadline):
    burst = b"GET /%2F HTTP/1.1\r\nHost: localhost\r\n\r\n" + b"GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n" * 200

    def once():
        with socket.create_connection(("127.0.0.1", http), timeout=5) as s:
            s.sendall(burst)
            while s.recv(65536):
                pass
    until(deadline, once)


def h2_zero_window(http, https, deadline):
    socks = []
    # SETTINGS_INITIAL_WINDOW_SIZE (4) = 0: no stream may receive a byte of DATA.
    for _ in range(50):
        try:
            s = tls_h2(https, settings=(4).to_bytes(2, "big") + (0).to_bytes(4, "big"))
            head = bytes([0x82, 0x87, 0x44, 0x0c]) + b"/big/big.bin" + bytes([0x41, 0x09]) + b"localhost"
            s.sendall(b"".join(frame(1, 0x5, 2 * i + 1, head) for i in range(100)))
            socks.append(s)
        except (OSError, ssl.SSLError):
            break
    while time.time() < deadline:
        time.sleep(0.5)
    for s in socks:
        s.close()


def drain(sock):
    """Reads until the peer closes; a timeout, reset or TLS error ends it quietly (the verdict is the server's)."""
    try:
        while sock.recv(65536):
            pass
    except (OSError, ssl.SSLError):
        pass


def flood(https, deadline, opening, unit, reading):
    def once():
        s = tls_h2(https)
        s.sendall(opening)
        chunk = unit * max(1, 16384 // len(unit))
        if reading:
            threading.Thread(target=drain, args=(s,), daemon=True).start()
        while time.time() < deadline:
            s.sendall(chunk)
        s.close()
    until(deadline, once)


def h2_settings_flood(http, https, deadline):
    flood(https, deadline, b"", frame(4, 0, 0), reading=False)


def h2_ping_flood(http, https, deadline):
    flood(https, deadline, b"", frame(6, 0, 0, b"12345678"), reading=False)


def h2_continuation_flood(http, https, deadline):
    opening = frame(1, 0x0, 1, HEAD_GET)  # HEADERS without END_HEADERS
    flood(https, deadline, opening, frame(9, 0x0, 1, bytes([0x40, 0x01]) + b"x" + bytes([0x01]) + b"y"), reading=True)


def h2_empty_data_flood(http, https, deadline):
    opening = frame(1, 0x4, 1, HEAD_POST)  # HEADERS with END_HEADERS, no END_STREAM
    flood(https, deadline, opening, frame(0, 0, 1), reading=True)


ATTACKS = {
    "slowloris": (slowloris, 1),
    "slow-body": (slow_body, 1),
    "pipelined-refusals": (pipelined_refusals, 4),
    "h2-zero-window": (h2_zero_window, 1),
    "h2-settings-flood": (h2_settings_flood, 4),
    "h2-ping-flood": (h2_ping_flood, 4),
    "h2-continuation-flood": (h2_continuation_flood, 4),
    "h2-empty-data-flood": (h2_empty_data_flood, 4),
}


# MARK: - The normal client and the samples

class NormalClient(threading.Thread):
    """One keep-alive GET /ok every 20 ms; records each latency, and failures (a reconnect counts its time)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.latencies = []
        self.failures = 0
        self.running = True
        self.sock = None

    def exchange(self):
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.sock.sendall(b"GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while not data.endswith(b"ok"):
            piece = self.sock.recv(4096)
            if not piece:
                raise OSError("closed")
            data += piece

    def run(self):
        while self.running:
            started = time.perf_counter()
            try:
                self.exchange()
                self.latencies.append((time.perf_counter() - started) * 1000)
            except OSError:
                self.failures += 1
                if self.sock:
                    self.sock.close()
                self.sock = None
            time.sleep(max(0, 0.02 - (time.perf_counter() - started)))

    def take(self):
        values, self.latencies = self.latencies, []
        failures, self.failures = self.failures, 0
        return values, failures


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def sample(pid):
    return rss_kib(pid) / 1024, descriptors(pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--settle", type=float, default=15, help="seconds after an attack before the 'after' sample")
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--json")
    a = ap.parse_args()
    binary = a.binary or subprocess.check_output([os.path.join(ROOT, "scripts", "build-release.sh")], text=True).strip()
    folder = tempfile.mkdtemp(prefix="vantage-abuse-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", f"{folder}/key.pem", "-out", f"{folder}/cert.pem"], check=True, capture_output=True)
    os.makedirs(f"{folder}/www/big")
    with open(f"{folder}/www/big/big.bin", "wb") as f:
        f.write(b"a" * (4 << 20))
    http, https, admin = free_port(), free_port(), free_port()
    with open(f"{folder}/vantage.yaml", "w") as f:
        f.write(f"""listen: {{ http: "127.0.0.1:{http}", https: "127.0.0.1:{https}" }}
admin: {{ listen: "127.0.0.1:{admin}" }}
access_log: off
tls: {{ certificates: [{{ cert: "{folder}/cert.pem", key: "{folder}/key.pem" }}] }}
limits: {{ header_timeout: 10s, body_timeout: 10s, send_timeout: 10s }}
tracking: {{ spool: {{ dir: "{folder}/spool" }} }}
sites:
  - routes:
      - {{ path: /ok, respond: "ok", track: false }}
      - {{ path: /big/, static: {{ root: "{folder}/www/big", strip_prefix: true }}, track: false }}
""")
    server = subprocess.Popen([binary, "run", "--config", f"{folder}/vantage.yaml"], stdout=subprocess.DEVNULL,
                              stderr=open(f"{folder}/vantage.log", "w"))
    results = []
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", http), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        client = NormalClient(http)
        client.start()
        time.sleep(2)
        print(f"{'attack':24} {'p99 ms':>7} {'max ms':>7} {'fail':>5} {'RSS MB before/peak/after':>26} "
              f"{'fds before/peak/after':>22}  verdict", flush=True)
        for name in a.attacks.split(","):
            attack, processes = ATTACKS[name]
            client.take()
            before = sample(server.pid)
            end = time.time() + a.seconds
            workers = [multiprocessing.Process(target=attack, args=(http, https, end)) for _ in range(processes)]
            for worker in workers:
                worker.start()
            peak_rss, peak_fds = before
            while time.time() < end:
                rss, fds = sample(server.pid)
                peak_rss, peak_fds = max(peak_rss, rss), max(peak_fds, fds)
                time.sleep(0.25)
            latencies, failures = client.take()
            for worker in workers:
                worker.join(timeout=5)
                if worker.is_alive():
                    worker.kill()
            settle_end = time.time() + a.settle
            while time.time() < settle_end:
                rss, fds = sample(server.pid)
                peak_rss, peak_fds = max(peak_rss, rss), max(peak_fds, fds)
                time.sleep(0.5)
            after = sample(server.pid)
            p99 = percentile(latencies, 0.99)
            ok = (p99 < 50 and failures == 0 and after[0] <= before[0] * 1.2 + 2
                  and after[1] <= before[1] * 1.2 + 2 and server.poll() is None)
            row = {"attack": name, "p99_ms": round(p99, 2), "max_ms": round(max(latencies or [0]), 2),
                   "requests": len(latencies), "failures": failures, "rss_mb": [round(before[0], 1),
                   round(peak_rss, 1), round(after[0], 1)], "fds": [before[1], peak_fds, after[1]], "ok": ok}
            results.append(row)
            print(f"{name:24} {p99:7.2f} {row['max_ms']:7.2f} {failures:5d} "
                  f"{before[0]:8.1f} /{peak_rss:7.1f} /{after[0]:7.1f} {before[1]:8d} /{peak_fds:6d} /{after[1]:5d}"
                  f"  {'ok' if ok else 'MISSED'}", flush=True)
        client.running = False
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
