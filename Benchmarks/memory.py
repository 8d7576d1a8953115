#!/usr/bin/env python3
"""Memory figures for a running Vantage: RSS idle, with N idle keep-alive connections, and after they close.

Usage: Benchmarks/memory.py --port 8080 --pid $(pgrep -f 'vantage run') [--connections 10000] [--path /]

Each connection sends one request, reads the answer and then stays open and idle (keep-alive), which is what a
crowd of browsers looks like to the server. The limit on open files is raised to 20000 for this process; the server
needs the same (ulimit -n).
"""
import argparse
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import rss_kib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--path", default="/")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.connections + 1000), hard))
    request = f"GET {a.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    print(f"idle RSS: {rss_kib(a.pid) / 1024:.1f} MB")
    sockets = []
    for index in range(a.connections):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.sendall(request)
        sockets.append(s)
        if len(sockets) % 500 == 0:
            for pending in sockets[-500:]:
                pending.recv(65536)
    for pending in sockets[len(sockets) // 500 * 500:]:
        pending.recv(65536)
    time.sleep(2)
    print(f"RSS with {a.connections} idle keep-alive connections: {rss_kib(a.pid) / 1024:.1f} MB")
    answered = 0
    for s in sockets[:100]:
        s.sendall(request)
        answered += len(s.recv(65536)) > 0
    print(f"connections still answering (of 100 tried): {answered}")
    for s in sockets:
        s.close()
    time.sleep(2)
    print(f"RSS after they closed: {rss_kib(a.pid) / 1024:.1f} MB")


if __name__ == "__main__":
    main()
