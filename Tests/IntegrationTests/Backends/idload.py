"""Keep-alive HTTP/1.1 load with one X-Request-Id per request, recording which requests got a complete answer.

usage: idload.py HOST PORT PATH PREFIX CONNECTIONS SECONDS OUT_FILE

Runs until SECONDS pass or the server goes away (connections refused or reset), then writes the ids of the
requests answered 200 in full, one per line, and prints a JSON summary.
"""
import json
import socket
import sys
import threading
import time

host, port, path, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
connections, seconds, out_file = int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]

completed = []
lock = threading.Lock()
deadline = time.time() + seconds
stop = threading.Event()


def read_response(sock, pending):
    """Reads one response with a Content-Length body; returns (status, rest) or raises."""
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    return status, rest[length:]


def worker(index):
    serial = 0
    while not stop.is_set() and time.time() < deadline:
        try:
            sock = socket.create_connection((host, port), timeout=5)
        except OSError:
            stop.set()
            return
        pending = b""
        try:
            while not stop.is_set() and time.time() < deadline:
                serial += 1
                request_id = "%s-%d-%d" % (prefix, index, serial)
                sock.sendall(("GET %s HTTP/1.1\r\nHost: idload.test\r\nX-Request-Id: %s\r\n\r\n" % (path, request_id)).encode())
                status, pending = read_response(sock, pending)
                if status == 200:
                    with lock:
                        completed.append(request_id)
        except (OSError, ConnectionError, ValueError, IndexError):
            stop.set()
        finally:
            sock.close()


threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with open(out_file, "w") as handle:
    handle.write("\n".join(completed))
print(json.dumps({"completed": len(completed)}))
