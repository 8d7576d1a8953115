#!/usr/bin/env python3
"""Heap allocations per request, per compare.py scenario, in the real binary.

Vantage runs from compare.yaml.template (tracking and the access log on, as users run it) with
Benchmarks/alloc_count.c preloaded, so every malloc/calloc/realloc/posix_memalign/aligned_alloc in the process is
counted. The counter is read from the running process's memory (/proc/<pid>/mem at the preloaded library's
`count`) before and after each load run; the difference divided by the requests the load tool completed is the
figure. It covers the whole process per request: the event loop and the threads that write the access log and
the spool.

Usage: Benchmarks/allocations.py --vantage .build/release/vantage [--seconds 5] [--scenarios static-1k,proxy-h1,...]
(from the repository root; needs nginx, wrk, h2load, openssl and a C compiler)
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import ROOT, TEMPLATE, free_port, wait_port  # noqa: E402

# name: (tool, scheme, path)
SCENARIOS = {
    "static-1k": ("wrk", "http", "/1k.html"),
    "https-1k": ("wrk", "https", "/1k.html"),
    "proxy-h1": ("wrk", "http", "/proxy/hello"),
    "https-proxy": ("wrk", "https", "/proxy/hello"),
    "h2-1k": ("h2load", "https", "/1k.html"),
}


class Counter:
    """The preloaded library's allocation counter inside a running process."""

    def __init__(self, pid, library):
        symbols = subprocess.run(["nm", library], check=True, capture_output=True, text=True).stdout
        offset = next(int(line.split()[0], 16) for line in symbols.splitlines() if line.endswith(" count"))
        real = os.path.realpath(library)
        base = None
        for line in open(f"/proc/{pid}/maps"):
            fields = line.split()
            if len(fields) >= 6 and os.path.realpath(fields[5]) == real and int(fields[2], 16) == 0:
                base = int(fields[0].split("-")[0], 16)
                break
        if base is None:
            raise SystemExit("the allocation counter is not loaded in the process (LD_PRELOAD ignored?)")
        self.path, self.address = f"/proc/{pid}/mem", base + offset

    def read(self):
        with open(self.path, "rb") as memory:
            memory.seek(self.address)
            return int.from_bytes(memory.read(8), "little")


def load(tool, url, seconds):
    """Runs the load; returns the requests completed."""
    if tool == "wrk":
        out = subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", url], check=True, capture_output=True, text=True).stdout
        return int(re.search(r"(\d+) requests in", out).group(1))
    out = subprocess.run(["h2load", "-D", str(seconds), "-c", "64", "-m", "1", "-t", "1", url], check=True,
                         capture_output=True, text=True).stdout
    return int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vantage", required=True)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    a = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vantage-alloc-") as work:
        library = os.path.join(work, "alloc_count.so")
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", library, os.path.join(ROOT, "Benchmarks", "alloc_count.c")],
                       check=True)
        www = os.path.join(work, "www")
        os.makedirs(www)
        with open(os.path.join(www, "1k.html"), "w") as f:
            f.write("<html>" + "x" * 1011 + "</html>")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", f"{work}/key.pem",
                        "-out", f"{work}/cert.pem"], check=True, capture_output=True)
        backend_port = free_port()
        with open(f"{work}/backend.conf", "w") as f:
            f.write(f"""worker_processes 1; daemon off; pid {work}/backend.pid; error_log {work}/backend.err;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 127.0.0.1:{backend_port}; location / {{ return 200 "hello from backend\\n"; }} }} }}
""")
        backend = subprocess.Popen(["nginx", "-c", f"{work}/backend.conf"])
        http, https = free_port(), free_port()
        text = open(TEMPLATE).read()
        for key, value in {"HTTP_PORT": http, "HTTPS_PORT": https, "BACKEND": f"127.0.0.1:{backend_port}", "WWW": www,
                           "CERT": f"{work}/cert.pem", "KEY": f"{work}/key.pem", "WORKDIR": work}.items():
            text = text.replace("{{" + key + "}}", str(value))
        config = os.path.join(work, "vantage.yaml")
        with open(config, "w") as f:
            f.write(text)
        log = open(os.path.join(work, "vantage.log"), "w")
        vantage = subprocess.Popen([os.path.abspath(a.vantage), "run", "--config", config], cwd=work, stdout=log, stderr=log,
                                   env=dict(os.environ, LD_PRELOAD=library))
        try:
            if not (wait_port(http, vantage) and wait_port(https, vantage) and wait_port(backend_port, backend)):
                raise SystemExit("vantage or the backend did not start:\n" + open(os.path.join(work, "vantage.log")).read())
            counter = Counter(vantage.pid, library)
            print(f"{'scenario':14} {'requests':>10} {'allocations':>12} {'per request':>12}")
            for name in a.scenarios.split(","):
                tool, scheme, path = SCENARIOS[name]
                url = f"{scheme}://127.0.0.1:{http if scheme == 'http' else https}{path}"
                load(tool, url, 1)  # warm-up: connections, caches, pools
                before = counter.read()
                requests = load(tool, url, a.seconds)
                allocations = counter.read() - before
                print(f"{name:14} {requests:>10} {allocations:>12} {allocations / max(requests, 1):>12.1f}")
        finally:
            vantage.terminate()
            vantage.wait(30)
            backend.terminate()
            backend.wait(10)


if __name__ == "__main__":
    sys.exit(main())
