"""A current ClickHouse (chdb, embedded) behind a small stand-in for ClickHouse's HTTP interface, for the tests of
the modern schema dialect: DateTime64, LowCardinality, TTL, and RowBinary rows laid out for them.

usage: chdb_server.py DATA_DIR      prints "listening PORT" once ready

Understands what Vantage sends: GET /ping; POST / with a query in the body (answers in TSV); POST /?query=INSERT
INTO db.table (columns) FORMAT RowBinary with the rows in the body (gzip or not), which it loads through
file(..., 'RowBinary', structure) using the table's own column types. Errors answer 500 with ClickHouse's message.
"""
import gzip
import http.server
import os
import re
import signal
import sys
import tempfile
import threading
import time
import urllib.parse

import chdb.session

session = chdb.session.Session(sys.argv[1])
# The embedded ClickHouse installs signal handlers of its own that ignore SIGTERM: take it back, so the test that
# started this server can stop it. And never outlive that test: exit when the parent process is gone.
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
signal.signal(signal.SIGINT, lambda *_: os._exit(0))
parent = os.getppid()


def watch_parent():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


threading.Thread(target=watch_parent, daemon=True).start()
lock = threading.Lock()
INSERT = re.compile(r"^\s*INSERT INTO (\w+)\.(\w+) \(([^)]*)\) FORMAT RowBinary\s*$", re.I)


def run(sql):
    with lock:
        return str(session.query(sql, "TSV"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200, "Ok.\n") if self.path.startswith("/ping") else self.answer(404, "not found\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("query", [None])[0]
        try:
            if query is None:
                self.answer(200, run(body.decode()))
                return
            match = INSERT.match(query)
            if not match:
                self.answer(400, "Code: 62, e.displayText() = DB::Exception: only RowBinary inserts are supported here\n")
                return
            database, table, columns = match.group(1), match.group(2), [c.strip() for c in match.group(3).split(",")]
            types = dict(line.split("\t")[:2] for line in run(f"DESCRIBE TABLE {database}.{table}").splitlines())
            structure = ", ".join(f"{c} {types[c]}" for c in columns)
            with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as rows:
                rows.write(body)
            try:
                run(f"INSERT INTO {database}.{table} ({', '.join(columns)}) "
                    f"SELECT * FROM file('{rows.name}', 'RowBinary', '{structure}')")
            finally:
                os.unlink(rows.name)
            self.answer(200, "")
        except Exception as error:  # chdb raises with ClickHouse's own "Code: NN ..." text
            self.answer(500, str(error) + "\n")


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
