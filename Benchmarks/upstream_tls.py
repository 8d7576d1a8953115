#!/usr/bin/env python3
"""What TLS to upstreams costs: Vantage and nginx proxying to the same nginx backend over plain HTTP and over
HTTPS (verified, SNI, keep-alive pools), measured alternately with wrk in one run.

The backend nginx and wrk share CPU 0; the server under test runs alone on CPU 1. For each server and round:
req/s and p99 through `/plain/` and `/tls/`; then the medians, TLS/plain per server, and Vantage/nginx per path.

Usage: python3 Benchmarks/upstream_tls.py --vantage .build/x86_64-unknown-linux-gnu/release/vantage [--rounds 3]
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import free_port, wait_port  # noqa: E402


def nginx(work, name, body, cpu, port):
    folder = os.path.join(work, name)
    os.makedirs(folder)
    conf = os.path.join(folder, "nginx.conf")
    with open(conf, "w") as f:
        f.write(COMMON.format(dir=folder, body=body))
    process = subprocess.Popen(["taskset", "-c", str(cpu), "nginx", "-c", conf, "-e", os.path.join(folder, "error.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    if not wait_port(port, process):
        sys.exit(f"{name} did not start: " + open(os.path.join(folder, "error.log")).read())
    return process


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wrk(url, seconds):
    out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{url}: {errors.group(1)} failed answers\n{out}")
    return rate, float(p99.group(1)) * scale


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vantage", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    a = parser.parse_args()
    a.vantage = os.path.abspath(a.vantage)
    work = tempfile.mkdtemp(prefix="upstream-tls-")
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    plain_port, tls_port = free_port(), free_port()
    backend = nginx(work, "backend", f"""  ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;
  server {{
    listen 127.0.0.1:{plain_port} backlog=4096;
    listen 127.0.0.1:{tls_port} ssl backlog=4096;
    ssl_certificate {cert}; ssl_certificate_key {key};
    location / {{ return 200 "hello from backend\\n"; }}
  }}""", 0, plain_port)
    front_port = free_port()
    front_body = f"""  upstream plain {{ server 127.0.0.1:{plain_port}; keepalive 64; }}
  upstream secure {{ server 127.0.0.1:{tls_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{front_port} backlog=4096;
    location /plain/ {{ proxy_pass http://plain; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    location /tls/ {{
      proxy_pass https://secure; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_ssl_verify on; proxy_ssl_trusted_certificate {cert}; proxy_ssl_name localhost;
      proxy_ssl_server_name on; proxy_ssl_session_reuse on;
    }}
  }}"""
    vantage_port, admin_port = free_port(), free_port()
    config = os.path.join(work, "vantage.yaml")
    with open(config, "w") as f:
        f.write(f"""listen: {{ http: "127.0.0.1:{vantage_port}" }}
admin: {{ listen: "127.0.0.1:{admin_port}" }}
threads: 1
access_log: off
tracking: {{ enabled: false }}
sites:
  - routes:
      - {{ path: /plain/, proxy: {{ upstreams: ["127.0.0.1:{plain_port}"] }} }}
      - {{ path: /tls/, proxy: {{ upstreams: ["https://localhost:{tls_port}"], tls: {{ ca: "{cert}" }} }} }}
""")
    results = {}
    try:
        for round_number in range(a.rounds):
            for server in ["nginx", "vantage"]:
                if server == "nginx":
                    process = nginx(work, f"front-{round_number}", front_body, 1, front_port)
                    port = front_port
                else:
                    process = subprocess.Popen(["taskset", "-c", "1", a.vantage, "run", "--config", config],
                                               stdout=open(os.path.join(work, "vantage.out"), "a"),
                                               stderr=subprocess.STDOUT, start_new_session=True, cwd=work)
                    if not wait_port(vantage_port, process):
                        sys.exit("vantage did not start: " + open(os.path.join(work, "vantage.out")).read())
                    port = vantage_port
                try:
                    for path in ["plain", "tls"]:
                        url = f"http://127.0.0.1:{port}/{path}/"
                        wrk(url, 2)  # warm the pools
                        results.setdefault((server, path), []).append(wrk(url, a.seconds))
                    if server == "vantage":
                        metrics = subprocess.run(["curl", "-s", f"http://127.0.0.1:{admin_port}/metrics"],
                                                 capture_output=True, text=True).stdout
                        for line in metrics.splitlines():
                            if line.startswith("vantage_upstream_connections_total"):
                                print(f"  round {round_number + 1}: {line}")
                finally:
                    stop(process)
    finally:
        stop(backend)
    print(f"{'server':<8} {'path':<6} {'req/s per round':<32} {'median req/s':>12} {'median p99 ms':>14}")
    medians = {}
    for (server, path), values in sorted(results.items()):
        rate = statistics.median(v[0] for v in values)
        p99 = statistics.median(v[1] for v in values)
        medians[(server, path)] = rate
        print(f"{server:<8} {path:<6} {' '.join(f'{v[0]:.0f}' for v in values):<32} {rate:>12.0f} {p99:>14.2f}")
    for server in ["nginx", "vantage"]:
        print(f"{server}: TLS/plain {medians[(server, 'tls')] / medians[(server, 'plain')]:.3f}")
    for path in ["plain", "tls"]:
        print(f"{path}: Vantage/nginx {medians[('vantage', path)] / medians[('nginx', path)]:.3f}")


if __name__ == "__main__":
    main()
