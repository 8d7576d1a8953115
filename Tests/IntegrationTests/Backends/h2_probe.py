"""An HTTP/2 client for the hostile-input tests, built on the `h2` package: it sends exactly what it is told
(raw :path and :method values, odd header fields, bodies that stall, windows that never open) over TLS with ALPN
h2 (certificates are not checked: the tests make their own), and prints what came back as one JSON object.

Usage: python h2_probe.py PORT < spec.json

spec: {
  "requests": [{"method": "GET", "path": "/", "authority": "a", "headers": [["x", "y"]],
                "body": "text", "end_stream": true, "trailers": [["x", "y"]]}],
  "initial_window": 65535,       # SETTINGS_INITIAL_WINDOW_SIZE we announce (0: a reader that never reads)
  "read_body": true,             # return flow-control credit for response bodies as they arrive
  "wait": 5.0                    # seconds to wait for every stream to end (or for the server to close)
}
output: {"streams": [{"status": 200, "headers": [[n, v]], "body": "...", "reset": null|code, "ended": bool}],
         "goaway": null|code, "closed": bool, "seconds": float}
"""
import json
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def main():
    port = int(sys.argv[1])
    spec = json.load(sys.stdin)
    wait = float(spec.get("wait", 5.0))
    read_body = spec.get("read_body", True)
    raw = socket.create_connection(("127.0.0.1", port))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    sni = spec.get("sni", "localhost")
    sock = context.wrap_socket(raw, server_hostname=sni)
    if sock.selected_alpn_protocol() != "h2":
        print(json.dumps({"error": "the server did not agree to h2"}))
        return
    sock.settimeout(0.2)
    # The probe must be able to send what a hostile client sends: no validation of our own headers.
    config = h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
        normalize_outbound_headers=False, validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    if "initial_window" in spec:
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: int(spec["initial_window"])})
    sock.sendall(conn.data_to_send())

    streams = {}
    order = []
    for request in spec.get("requests", []):
        stream_id = conn.get_next_available_stream_id()
        headers = [(":method", request.get("method", "GET")), (":scheme", "http"),
                   (":authority", request.get("authority", "localhost")), (":path", request.get("path", "/"))]
        headers += [tuple(pair) for pair in request.get("headers", [])]
        body = request.get("body")
        end_stream = request.get("end_stream", True)
        trailers = request.get("trailers")
        conn.send_headers(stream_id, headers, end_stream=end_stream and body is None and not trailers)
        if body is not None:
            conn.send_data(stream_id, body.encode(), end_stream=end_stream and not trailers)
        if trailers:
            conn.send_headers(stream_id, [tuple(pair) for pair in trailers], end_stream=True)
        streams[stream_id] = {"status": None, "headers": [], "body": b"", "reset": None, "ended": False}
        order.append(stream_id)
        sock.sendall(conn.data_to_send())

    goaway = None
    closed = False
    started = time.monotonic()
    while time.monotonic() - started < wait:
        if all(s["ended"] or s["reset"] is not None for s in streams.values()) and streams:
            break
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionError, ssl.SSLError):
            closed = True
            break
        if not data:
            closed = True
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    for name, value in event.headers:
                        name = name.decode() if isinstance(name, bytes) else name
                        value = value.decode() if isinstance(value, bytes) else value
                        if name == ":status":
                            stream["status"] = int(value)
                        else:
                            stream["headers"].append([name, value])
            elif isinstance(event, h2.events.DataReceived):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream["body"] += event.data
                if read_body and event.flow_controlled_length:
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                if event.stream_id in streams:
                    streams[event.stream_id]["ended"] = True
            elif isinstance(event, h2.events.StreamReset):
                if event.stream_id in streams:
                    streams[event.stream_id]["reset"] = int(event.error_code)
            elif isinstance(event, h2.events.ConnectionTerminated):
                goaway = int(event.error_code)
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            closed = True
            break
    elapsed = time.monotonic() - started
    sock.close()
    out = {"streams": [], "goaway": goaway, "closed": closed, "seconds": round(elapsed, 3)}
    for stream_id in order:
        stream = streams[stream_id]
        stream["body"] = stream["body"].decode("utf-8", "replace")
        out["streams"].append(stream)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
