"""HTTP/2 and HPACK conformance of a server, case by case, over TLS with ALPN h2.

The cases follow the sections of RFC 9113 (and RFC 7540 where h2spec still holds a server to it) and RFC 7541 that
h2spec checks: the connection preface, frame format and sizes, header block framing, stream states and identifiers,
concurrency, priority, error handling, extension frames, each frame type's rules, SETTINGS and its synchronisation,
flow control, CONTINUATION, error codes, request header rules, server push, and HPACK's index space, table size
updates, string literals and representations; plus the ordinary exchanges a conforming client makes (GET, HEAD,
POST, trailers, every HPACK representation). Every case opens its own connection.

Frames are written by hand (most cases send what a conforming client never would); incoming frames are read with
`hyperframe`, header blocks are encoded and decoded with `hpack`, and the ordinary exchanges are driven by the `h2`
package's client state machine, all three from the `h2` distribution in the test venv.

The server must answer `GET /` with a body of at least 5 bytes; any status is fine for `POST /`.

Usage: python h2_conformance.py PORT [--host NAME] [--timeout SECONDS] [--only PREFIX] [--json]
Prints one line per case (or, with --json, one JSON object: {"cases": [{"id", "title", "passed", "detail"}]}) and
exits 0 when every case passed.
"""
import argparse
import json
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import hpack
from hpack.hpack import encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame,
                              RstStreamFrame, SettingsFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Error codes (RFC 9113 §7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 5, 6, 7, 8, 9

# SETTINGS parameters.
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 1, 2, 3, 4, 5

HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def frame(kind, flags, stream, payload=b""):
    """One frame's bytes, exactly as given (lengths and fields are not checked)."""
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def settings_payload(pairs):
    return b"".join(struct.pack(">HI", key, value) for key, value in pairs)


def priority_payload(depends_on, weight=16, exclusive=False):
    return struct.pack(">I", depends_on | (0x80000000 if exclusive else 0)) + bytes([weight - 1])


def literal(data, huffman=False):
    """An HPACK string literal (RFC 7541 §5.2)."""
    if huffman:
        data = HUFFMAN.encode(data)
    length = encode_integer(len(data), 7)
    if huffman:
        length[0] |= 0x80
    return bytes(length) + data


def indexed_name(pattern, prefix, index, value, huffman=False):
    """A literal field with an indexed name: `pattern` is the representation's high bits."""
    head = encode_integer(index, prefix)
    head[0] |= pattern
    return bytes(head) + literal(value, huffman)


def new_name(pattern, name, value, huffman=False):
    return bytes([pattern]) + literal(name, huffman) + literal(value, huffman)


class Closed(Exception):
    pass


class Event:
    """A frame the server sent; a complete header block carries its decoded fields."""

    def __init__(self, frame_, headers=None):
        self.frame = frame_
        self.headers = headers

    @property
    def kind(self):
        return self.frame.type

    def describe(self):
        f = self.frame
        name = type(f).__name__.replace("Frame", "").upper()
        if isinstance(f, GoAwayFrame):
            return f"GOAWAY(error {f.error_code}, last stream {f.last_stream_id})"
        if isinstance(f, RstStreamFrame):
            return f"RST_STREAM(stream {f.stream_id}, error {f.error_code})"
        if isinstance(f, DataFrame):
            return f"DATA(stream {f.stream_id}, {len(f.data)} bytes, flags {sorted(f.flags)})"
        if self.headers is not None:
            return f"HEADERS(stream {f.stream_id}, {dict(self.headers).get(':status')})"
        return f"{name}(stream {f.stream_id}, flags {sorted(f.flags)})"


class Conn:
    """One TLS connection to the server, read frame by frame."""

    def __init__(self, args):
        self.timeout = args.timeout
        raw = socket.create_connection((args.address, args.port), timeout=self.timeout)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        self.sock = context.wrap_socket(raw, server_hostname=args.host)
        if self.sock.selected_alpn_protocol() != "h2":
            raise RuntimeError("the server did not agree to h2")
        self.host = args.host
        self.buffer = b""
        self.closed = False
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.block = None  # (stream, bytes) of a header block awaiting CONTINUATION
        self.server_settings = {}
        self.seen = []

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def _fill(self, size, deadline):
        while len(self.buffer) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                raise TimeoutError
            except (OSError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self.closed = True
                raise Closed
            self.buffer += chunk

    def next_event(self, deadline):
        """The next frame the server sent, or Closed / TimeoutError."""
        while True:
            self._fill(9, deadline)
            parsed, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
            self._fill(9 + length, deadline)
            body = self.buffer[9:9 + length]
            self.buffer = self.buffer[9 + length:]
            parsed.parse_body(memoryview(body))
            if isinstance(parsed, (HeadersFrame, ContinuationFrame)):
                stream = parsed.stream_id
                fragment = (self.block[1] if self.block else b"") + parsed.data
                if "END_HEADERS" not in parsed.flags:
                    self.block = (stream, fragment)
                    continue
                self.block = None
                event = Event(parsed, self.decoder.decode(fragment, raw=False))
            else:
                event = Event(parsed)
            self.seen.append(event.describe())
            return event

    def events(self):
        """Frames until the case's deadline; ends quietly when the server closes."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                yield self.next_event(deadline)
            except Closed:
                return
            except TimeoutError:
                raise

    def handshake(self, settings=()):
        """Preface and SETTINGS both ways; returns once the server acknowledged ours."""
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings_payload(settings)))
        got_settings = got_ack = False
        for event in self.events():
            if isinstance(event.frame, SettingsFrame):
                if "ACK" in event.frame.flags:
                    got_ack = True
                else:
                    got_settings = True
                    self.server_settings.update(event.frame.settings)
                    self.send(frame(SETTINGS, ACK, 0))
            if got_settings and got_ack:
                return
        raise Closed

    def headers(self, path="/", method="GET", extra=()):
        fields = [(":method", method), (":scheme", "https"), (":path", path), (":authority", self.host)]
        return self.encoder.encode(fields + list(extra))

    def request(self, stream, method="GET", end_stream=True, extra=()):
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(frame(HEADERS, flags, stream, self.headers(method=method, extra=extra)))

    @property
    def max_frame_size(self):
        return self.server_settings.get(MAX_FRAME_SIZE, 16384)


# MARK: - Verdicts

class Fail(Exception):
    pass


def _observed(conn):
    return "; saw " + (", ".join(conn.seen[-6:]) if conn.seen else "nothing") + (" then close" if conn.closed else "")


def expect_connection_error(conn, *codes):
    """GOAWAY with one of `codes`, or the connection closed."""
    try:
        for event in conn.events():
            if isinstance(event.frame, GoAwayFrame):
                if event.frame.error_code in codes:
                    return
                raise Fail(f"expected GOAWAY with error {codes}{_observed(conn)}")
    except TimeoutError:
        raise Fail(f"expected GOAWAY with error {codes} or a close{_observed(conn)}")


def expect_stream_error(conn, stream, *codes):
    """RST_STREAM on `stream` with one of `codes` (or the same as a connection error, or a close)."""
    try:
        for event in conn.events():
            f = event.frame
            if isinstance(f, RstStreamFrame) and f.stream_id == stream:
                if f.error_code in codes:
                    return
                raise Fail(f"expected RST_STREAM with error {codes}{_observed(conn)}")
            if isinstance(f, GoAwayFrame):
                if f.error_code in codes:
                    return
                raise Fail(f"expected error {codes}{_observed(conn)}")
    except TimeoutError:
        raise Fail(f"expected RST_STREAM or GOAWAY with error {codes}{_observed(conn)}")


def expect_ping_ack(conn, payload=b"h2check"):
    """The connection is still usable: a PING is answered."""
    payload = payload.ljust(8, b"!")
    conn.send(frame(PING, 0, 0, payload))
    try:
        for event in conn.events():
            f = event.frame
            if isinstance(f, PingFrame) and "ACK" in f.flags:
                if f.opaque_data == payload:
                    return
                raise Fail(f"PING acknowledged with other data{_observed(conn)}")
            if isinstance(f, GoAwayFrame) and f.error_code != NO_ERROR:
                raise Fail(f"expected the PING answered{_observed(conn)}")
    except TimeoutError:
        pass
    raise Fail(f"expected a PING acknowledgement{_observed(conn)}")


def expect_response(conn, stream):
    """A response header block (with :status) on `stream`."""
    try:
        for event in conn.events():
            f = event.frame
            if event.headers is not None and f.stream_id == stream:
                if any(name == ":status" for name, _ in event.headers):
                    return event
            if isinstance(f, RstStreamFrame) and f.stream_id == stream and f.error_code != NO_ERROR:
                break
            if isinstance(f, GoAwayFrame) and f.error_code != NO_ERROR:
                break
    except TimeoutError:
        pass
    raise Fail(f"expected a response on stream {stream}{_observed(conn)}")


def expect_response_end(conn, stream):
    """The whole response on `stream`, up to END_STREAM."""
    try:
        for event in conn.events():
            f = event.frame
            if f.stream_id == stream and isinstance(f, (HeadersFrame, DataFrame)) and "END_STREAM" in f.flags:
                return
            if isinstance(f, (RstStreamFrame, GoAwayFrame)):
                break
    except TimeoutError:
        pass
    raise Fail(f"expected the response on stream {stream} to end{_observed(conn)}")


def expect_data(conn, stream, length):
    """A DATA frame on `stream` of exactly `length` bytes (flow control holds the server to it)."""
    try:
        for event in conn.events():
            f = event.frame
            if isinstance(f, DataFrame) and f.stream_id == stream:
                if len(f.data) == length:
                    return
                raise Fail(f"expected a DATA frame of {length} bytes{_observed(conn)}")
            if isinstance(f, (RstStreamFrame, GoAwayFrame)):
                break
    except TimeoutError:
        pass
    raise Fail(f"expected a DATA frame of {length} bytes on stream {stream}{_observed(conn)}")


def expect_settings_ack(conn):
    try:
        for event in conn.events():
            if isinstance(event.frame, SettingsFrame) and "ACK" in event.frame.flags:
                return
            if isinstance(event.frame, GoAwayFrame):
                break
    except TimeoutError:
        pass
    raise Fail(f"expected a SETTINGS acknowledgement{_observed(conn)}")


# MARK: - Cases

CASES = []


def case(identifier, title):
    def register(function):
        CASES.append((identifier, title, function))
        return function
    return register


def open_stream(conn, stream=1):
    """A request whose body has not ended: the stream stays open."""
    conn.request(stream, method="POST", end_stream=False)


# Generic exchanges, driven by the h2 package's client.

def h2_exchange(conn, method, body=None, trailers=None):
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    client = h2.connection.H2Connection(config=config)
    client.initiate_connection()
    conn.send(client.data_to_send())
    stream = client.get_next_available_stream_id()
    fields = [(":method", method), (":scheme", "https"), (":path", "/"), (":authority", conn.host)]
    client.send_headers(stream, fields, end_stream=body is None and trailers is None)
    if body is not None:
        client.send_data(stream, body, end_stream=trailers is None)
    if trailers:
        client.send_headers(stream, trailers, end_stream=True)
    conn.send(client.data_to_send())
    status, data, ended = None, b"", False
    deadline = time.monotonic() + conn.timeout
    while not ended and time.monotonic() < deadline:
        conn.sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = conn.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        if not chunk:
            break
        for event in client.receive_data(chunk):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(":status")
            elif isinstance(event, h2.events.DataReceived):
                data += event.data
                client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
            elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise Fail(f"the exchange was cut: {event}")
        conn.send(client.data_to_send())
    if status is None or not ended:
        raise Fail(f"no complete response (status {status})")
    return status, data


@case("generic/1/1", "client connection preface")
def _(conn):
    conn.handshake()


@case("generic/2/1", "PRIORITY on an idle stream, then a request on it")
def _(conn):
    conn.handshake()
    conn.send(frame(PRIORITY, 0, 1, priority_payload(0)))
    conn.request(1)
    expect_response(conn, 1)


@case("generic/2/2", "WINDOW_UPDATE on a half-closed (remote) stream")
def _(conn):
    conn.handshake()
    conn.request(1)
    conn.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1)))
    expect_response(conn, 1)


@case("generic/2/3", "PRIORITY on a half-closed (remote) stream")
def _(conn):
    conn.handshake()
    conn.request(1)
    conn.send(frame(PRIORITY, 0, 1, priority_payload(0)))
    expect_response(conn, 1)


@case("generic/2/4", "RST_STREAM on a half-closed (remote) stream")
def _(conn):
    conn.handshake()
    conn.request(1)
    conn.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
    expect_ping_ack(conn)


@case("generic/2/5", "PRIORITY on a closed stream")
def _(conn):
    conn.handshake()
    conn.request(1)
    expect_response_end(conn, 1)
    conn.send(frame(PRIORITY, 0, 1, priority_payload(0)))
    expect_ping_ack(conn)


@case("generic/3.1/1", "a DATA frame")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, END_STREAM, 1, b"test"))
    expect_response(conn, 1)


@case("generic/3.1/2", "several DATA frames")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, 0, 1, b"te") + frame(DATA, END_STREAM, 1, b"st"))
    expect_response(conn, 1)


@case("generic/3.1/3", "a DATA frame with padding")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, END_STREAM | PADDED, 1, bytes([8]) + b"test" + bytes(8)))
    expect_response(conn, 1)


@case("generic/3.2/1", "a HEADERS frame")
def _(conn):
    conn.handshake()
    conn.request(1)
    expect_response(conn, 1)


@case("generic/3.2/2", "a HEADERS frame with padding")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1, bytes([8]) + conn.headers() + bytes(8)))
    expect_response(conn, 1)


@case("generic/3.2/3", "a HEADERS frame with priority")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 1, priority_payload(0, 255) + conn.headers()))
    expect_response(conn, 1)


for index, (weight, depends, exclusive, title) in enumerate([
        (1, 0, False, "a PRIORITY frame with weight 1"),
        (256, 0, False, "a PRIORITY frame with weight 256"),
        (16, 3, False, "a PRIORITY frame with a stream dependency"),
        (16, 3, True, "a PRIORITY frame with the exclusive flag")]):
    def _priority(conn, weight=weight, depends=depends, exclusive=exclusive):
        conn.handshake()
        conn.send(frame(PRIORITY, 0, 1, priority_payload(depends, weight, exclusive)))
        conn.request(1)
        expect_response(conn, 1)
    case(f"generic/3.3/{index + 1}", title)(_priority)


@case("generic/3.3/5", "PRIORITY for an idle stream, then a request on a lower stream ID")
def _(conn):
    conn.handshake()
    conn.send(frame(PRIORITY, 0, 3, priority_payload(0)))
    conn.request(1)
    expect_response(conn, 1)


@case("generic/3.4/1", "a RST_STREAM frame")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
    expect_ping_ack(conn)


@case("generic/3.5/1", "a SETTINGS frame")
def _(conn):
    conn.handshake()
    conn.send(frame(SETTINGS, 0, 0, settings_payload([(INITIAL_WINDOW_SIZE, 65535)])))
    expect_settings_ack(conn)


@case("generic/3.7/1", "a PING frame")
def _(conn):
    conn.handshake()
    expect_ping_ack(conn)


@case("generic/3.8/1", "a GOAWAY frame")
def _(conn):
    conn.handshake()
    conn.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, NO_ERROR)))
    try:
        expect_ping_ack(conn)
    except Fail:
        # A server may also close after the client's GOAWAY; it must not call it an error.
        if not conn.closed or any("GOAWAY(error" in s and "error 0," not in s for s in conn.seen):
            raise


@case("generic/3.9/1", "WINDOW_UPDATE on stream 0")
def _(conn):
    conn.handshake()
    conn.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)))
    expect_ping_ack(conn)


@case("generic/3.9/2", "WINDOW_UPDATE on stream 1")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1)))
    expect_ping_ack(conn)


def split_block(block, parts):
    size = max(1, len(block) // parts)
    pieces = [block[i:i + size] for i in range(0, len(block), size)]
    return pieces


def continued(block, parts, stream=1):
    """A request's header block as HEADERS (with END_STREAM) and CONTINUATION frames, the last one ending it."""
    pieces = split_block(block, parts)
    data = frame(HEADERS, END_STREAM, stream, pieces[0])
    for i, piece in enumerate(pieces[1:]):
        data += frame(CONTINUATION, END_HEADERS if i == len(pieces) - 2 else 0, stream, piece)
    return data


@case("generic/3.10/1", "a CONTINUATION frame")
def _(conn):
    conn.handshake()
    first, *rest = split_block(conn.headers(), 2)
    conn.send(frame(HEADERS, END_STREAM, 1, first) + frame(CONTINUATION, END_HEADERS, 1, b"".join(rest)))
    expect_response(conn, 1)


@case("generic/3.10/2", "several CONTINUATION frames")
def _(conn):
    conn.handshake()
    conn.send(continued(conn.headers(extra=[("x-pad", "p" * 40)]), 5))
    expect_response(conn, 1)


@case("generic/4/1", "a GET request")
def _(conn):
    status, _ = h2_exchange(conn, "GET")
    if not status:
        raise Fail("no status")


@case("generic/4/2", "a HEAD request")
def _(conn):
    _, data = h2_exchange(conn, "HEAD")
    if data:
        raise Fail(f"a HEAD response carried {len(data)} body bytes")


@case("generic/4/3", "a POST request")
def _(conn):
    h2_exchange(conn, "POST", body=b"test")


@case("generic/4/4", "a POST request with trailers")
def _(conn):
    h2_exchange(conn, "POST", body=b"test", trailers=[("x-trailer", "yes")])


def hpack_case(number, title, block):
    def run(conn):
        conn.handshake()
        conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        expect_response(conn, 1)
    case(f"generic/5/{number}", title)(run)


def request_block(extra=b""):
    """:method GET, :scheme https, :path / (static indexes 2, 7, 4), :authority as a literal, then `extra`."""
    return bytes([0x82, 0x87, 0x84]) + indexed_name(0x00, 4, 1, b"localhost") + extra


USER_AGENT = 58  # the static table's index of user-agent: a name for the indexed-name representations
for number, (title, field) in enumerate([
        ("indexed fields", b""),
        ("literal with incremental indexing, indexed name", indexed_name(0x40, 6, USER_AGENT, b"h2check")),
        ("literal with incremental indexing, indexed name, Huffman", indexed_name(0x40, 6, USER_AGENT, b"h2check", True)),
        ("literal with incremental indexing, new name", new_name(0x40, b"x-test", b"value")),
        ("literal with incremental indexing, new name, Huffman", new_name(0x40, b"x-test", b"value", True)),
        ("literal without indexing, indexed name", indexed_name(0x00, 4, USER_AGENT, b"h2check")),
        ("literal without indexing, indexed name, Huffman", indexed_name(0x00, 4, USER_AGENT, b"h2check", True)),
        ("literal without indexing, new name", new_name(0x00, b"x-test", b"value")),
        ("literal without indexing, new name, Huffman", new_name(0x00, b"x-test", b"value", True)),
        ("literal never indexed, indexed name", indexed_name(0x10, 4, USER_AGENT, b"h2check")),
        ("literal never indexed, indexed name, Huffman", indexed_name(0x10, 4, USER_AGENT, b"h2check", True)),
        ("literal never indexed, new name", new_name(0x10, b"x-test", b"value")),
        ("literal never indexed, new name, Huffman", new_name(0x10, b"x-test", b"value", True))], start=1):
    hpack_case(number, title, request_block(field))


def table_size_update(size):
    head = encode_integer(size, 5)
    head[0] |= 0x20
    return bytes(head)


hpack_case(14, "dynamic table size update", table_size_update(4096) + request_block())
hpack_case(15, "several dynamic table size updates",
           table_size_update(0) + table_size_update(4096) + request_block())


# RFC 9113 §3.4: connection preface.

@case("http2/3.5/1", "client connection preface")
def _(conn):
    conn.handshake()


@case("http2/3.5/2", "an invalid connection preface")
def _(conn):
    conn.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
    expect_connection_error(conn, PROTOCOL_ERROR)


# §4: frame format and size, header compression.

@case("http2/4.1/1", "a frame of unknown type is ignored")
def _(conn):
    conn.handshake()
    conn.send(frame(0x16, 0, 0, b"unknown!"))
    expect_ping_ack(conn)


@case("http2/4.1/2", "undefined flags are ignored")
def _(conn):
    conn.handshake()
    payload = b"flagged!"
    conn.send(frame(PING, 0x16, 0, payload))
    expect_ping_ack(conn, payload)


@case("http2/4.1/3", "the reserved bit of the stream identifier is ignored")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 0x80000001, conn.headers()))
    expect_response(conn, 1)


@case("http2/4.2/1", "a DATA frame of 2^14 octets")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, END_STREAM, 1, b"x" * 16384))
    expect_response(conn, 1)


@case("http2/4.2/2", "a DATA frame larger than SETTINGS_MAX_FRAME_SIZE")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, END_STREAM, 1, b"x" * (conn.max_frame_size + 1)))
    expect_stream_error(conn, 1, FRAME_SIZE_ERROR)


@case("http2/4.2/3", "a HEADERS frame larger than SETTINGS_MAX_FRAME_SIZE")
def _(conn):
    conn.handshake()
    # Written without Huffman coding, so the frame is as long as the value.
    block = conn.headers() + new_name(0x00, b"x-large", b"x" * conn.max_frame_size)
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    expect_connection_error(conn, FRAME_SIZE_ERROR)


@case("http2/4.3/1", "an invalid header block fragment")
def _(conn):
    conn.handshake()
    # A literal whose name claims 10 bytes and has 1.
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, bytes([0x40, 0x0a]) + b"a"))
    expect_connection_error(conn, COMPRESSION_ERROR)


@case("http2/4.3/2", "a PRIORITY frame inside a header block")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_STREAM, 1, conn.headers()) + frame(PRIORITY, 0, 1, priority_payload(0)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/4.3/3", "HEADERS of another stream inside a header block")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_STREAM, 1, conn.headers()) + frame(HEADERS, END_HEADERS | END_STREAM, 3, conn.headers()))
    expect_connection_error(conn, PROTOCOL_ERROR)


# §5.1: stream states.

@case("http2/5.1/1", "idle: DATA")
def _(conn):
    conn.handshake()
    conn.send(frame(DATA, END_STREAM, 1, b"test"))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/5.1/2", "idle: RST_STREAM")
def _(conn):
    conn.handshake()
    conn.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/5.1/3", "idle: WINDOW_UPDATE")
def _(conn):
    conn.handshake()
    conn.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 100)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/5.1/4", "idle: CONTINUATION")
def _(conn):
    conn.handshake()
    conn.send(frame(CONTINUATION, END_HEADERS, 1, conn.headers()))
    expect_connection_error(conn, PROTOCOL_ERROR)


def half_closed(conn):
    conn.handshake()
    conn.request(1)


def reset_by_client(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))


def closed_after_response(conn):
    conn.handshake()
    conn.request(1)
    expect_response_end(conn, 1)


for state, (number, setup) in {"half closed (remote)": (5, half_closed),
                               "closed after RST_STREAM": (8, reset_by_client),
                               "closed": (11, closed_after_response)}.items():
    def _data(conn, setup=setup):
        setup(conn)
        conn.send(frame(DATA, END_STREAM, 1, b"test"))
        expect_stream_error(conn, 1, STREAM_CLOSED)

    def _headers(conn, setup=setup):
        setup(conn)
        conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, conn.headers()))
        expect_stream_error(conn, 1, STREAM_CLOSED)

    def _continuation(conn, setup=setup):
        setup(conn)
        conn.send(frame(CONTINUATION, END_HEADERS, 1, conn.headers()))
        expect_stream_error(conn, 1, STREAM_CLOSED, PROTOCOL_ERROR)

    case(f"http2/5.1/{number}", f"{state}: DATA")(_data)
    case(f"http2/5.1/{number + 1}", f"{state}: HEADERS")(_headers)
    case(f"http2/5.1/{number + 2}", f"{state}: CONTINUATION")(_continuation)


@case("http2/5.1.1/1", "an even-numbered stream identifier")
def _(conn):
    conn.handshake()
    conn.request(2)
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/5.1.1/2", "a stream identifier lower than a previous one")
def _(conn):
    conn.handshake()
    conn.request(5)
    conn.request(3)
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/5.1.2/1", "more streams than SETTINGS_MAX_CONCURRENT_STREAMS")
def _(conn):
    conn.handshake()
    limit = conn.server_settings.get(MAX_CONCURRENT_STREAMS)
    if limit is None:
        raise Fail("the server sets no SETTINGS_MAX_CONCURRENT_STREAMS (unbounded streams)")
    data = b""
    for index in range(limit + 1):
        data += frame(HEADERS, END_HEADERS, 1 + 2 * index, conn.headers(method="POST"))
    conn.send(data)
    try:
        for event in conn.events():
            f = event.frame
            if isinstance(f, RstStreamFrame) and f.error_code in (PROTOCOL_ERROR, REFUSED_STREAM):
                return
            if isinstance(f, GoAwayFrame) and f.error_code == PROTOCOL_ERROR:
                return
    except TimeoutError:
        pass
    raise Fail(f"expected the stream over the limit ({limit}) refused{_observed(conn)}")


@case("http2/5.3.1/1", "HEADERS depending on its own stream")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 1, priority_payload(1) + conn.headers()))
    expect_stream_error(conn, 1, PROTOCOL_ERROR)


@case("http2/5.3.1/2", "PRIORITY depending on its own stream")
def _(conn):
    conn.handshake()
    conn.send(frame(PRIORITY, 0, 1, priority_payload(1)))
    expect_stream_error(conn, 1, PROTOCOL_ERROR)


@case("http2/5.4.1/1", "an invalid PING closes the connection with GOAWAY")
def _(conn):
    conn.handshake()
    conn.send(frame(PING, 0, 0, b"short"))
    try:
        for event in conn.events():
            if isinstance(event.frame, GoAwayFrame):
                return
    except TimeoutError:
        pass
    raise Fail(f"expected GOAWAY before the close{_observed(conn)}")


@case("http2/5.5/1", "an unknown extension frame is ignored")
def _(conn):
    conn.handshake()
    conn.send(frame(0xff, 0, 0, b"extension"))
    expect_ping_ack(conn)


@case("http2/5.5/2", "an unknown extension frame inside a header block")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_STREAM, 1, conn.headers()) + frame(0xff, 0, 1, b"extension"))
    expect_connection_error(conn, PROTOCOL_ERROR)


# §6: frame definitions.

@case("http2/6.1/1", "DATA on stream 0")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, END_STREAM, 0, b"test"))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.1/2", "DATA on a stream neither open nor half-closed (local)")
def _(conn):
    half_closed(conn)
    conn.send(frame(DATA, END_STREAM, 1, b"test"))
    expect_stream_error(conn, 1, STREAM_CLOSED)


@case("http2/6.1/3", "DATA with a pad length beyond the payload")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, END_STREAM | PADDED, 1, bytes([6]) + b"test"))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.2/1", "HEADERS without END_HEADERS, then PRIORITY")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_STREAM, 1, conn.headers()) + frame(PRIORITY, 0, 3, priority_payload(0)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.2/2", "HEADERS of another stream while a header block is open")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_STREAM, 1, conn.headers()) + frame(HEADERS, END_HEADERS | END_STREAM, 3, conn.headers()))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.2/3", "HEADERS on stream 0")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 0, conn.headers()))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.2/4", "HEADERS with a pad length beyond the payload")
def _(conn):
    conn.handshake()
    block = conn.headers()
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1, bytes([len(block) + 1]) + block))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.3/1", "PRIORITY on stream 0")
def _(conn):
    conn.handshake()
    conn.send(frame(PRIORITY, 0, 0, priority_payload(1)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.3/2", "PRIORITY of a length other than 5")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(PRIORITY, 0, 1, priority_payload(0)[:4]))
    expect_stream_error(conn, 1, FRAME_SIZE_ERROR)


@case("http2/6.4/1", "RST_STREAM on stream 0")
def _(conn):
    conn.handshake()
    conn.send(frame(RST_STREAM, 0, 0, struct.pack(">I", CANCEL)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.4/2", "RST_STREAM on an idle stream")
def _(conn):
    conn.handshake()
    conn.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.4/3", "RST_STREAM of a length other than 4")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(RST_STREAM, 0, 1, b"\x00\x00\x08"))
    expect_connection_error(conn, FRAME_SIZE_ERROR)


@case("http2/6.5/1", "SETTINGS with ACK and a payload")
def _(conn):
    conn.handshake()
    conn.send(frame(SETTINGS, ACK, 0, settings_payload([(INITIAL_WINDOW_SIZE, 65535)])))
    expect_connection_error(conn, FRAME_SIZE_ERROR)


@case("http2/6.5/2", "SETTINGS on a stream other than 0")
def _(conn):
    conn.handshake()
    conn.send(frame(SETTINGS, 0, 1, settings_payload([(INITIAL_WINDOW_SIZE, 65535)])))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.5/3", "SETTINGS of a length not a multiple of 6")
def _(conn):
    conn.handshake()
    conn.send(frame(SETTINGS, 0, 0, settings_payload([(INITIAL_WINDOW_SIZE, 65535)])[:3]))
    expect_connection_error(conn, FRAME_SIZE_ERROR)


for number, (title, setting, code) in enumerate([
        ("SETTINGS_ENABLE_PUSH other than 0 or 1", (ENABLE_PUSH, 2), PROTOCOL_ERROR),
        ("SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1", (INITIAL_WINDOW_SIZE, 2 ** 31), FLOW_CONTROL_ERROR),
        ("SETTINGS_MAX_FRAME_SIZE below 2^14", (MAX_FRAME_SIZE, 16383), PROTOCOL_ERROR),
        ("SETTINGS_MAX_FRAME_SIZE above 2^24-1", (MAX_FRAME_SIZE, 2 ** 24), PROTOCOL_ERROR)], start=1):
    def _setting(conn, setting=setting, code=code):
        conn.handshake()
        conn.send(frame(SETTINGS, 0, 0, settings_payload([setting])))
        expect_connection_error(conn, code)
    case(f"http2/6.5.2/{number}", title)(_setting)


@case("http2/6.5.2/5", "an unknown SETTINGS identifier is ignored")
def _(conn):
    conn.handshake()
    conn.send(frame(SETTINGS, 0, 0, settings_payload([(0xff, 1)])))
    expect_settings_ack(conn)


@case("http2/6.5.3/1", "several values of SETTINGS_INITIAL_WINDOW_SIZE: the last one holds")
def _(conn):
    conn.handshake()
    conn.send(frame(SETTINGS, 0, 0, settings_payload([(INITIAL_WINDOW_SIZE, 100), (INITIAL_WINDOW_SIZE, 1)])))
    expect_settings_ack(conn)
    conn.request(1)
    expect_data(conn, 1, 1)


@case("http2/6.5.3/2", "SETTINGS without ACK is acknowledged")
def _(conn):
    conn.handshake()
    conn.send(frame(SETTINGS, 0, 0, settings_payload([(ENABLE_PUSH, 0)])))
    expect_settings_ack(conn)


@case("http2/6.7/1", "PING is answered with the same data")
def _(conn):
    conn.handshake()
    expect_ping_ack(conn, b"pingdata")


@case("http2/6.7/2", "PING with ACK is not answered")
def _(conn):
    conn.handshake()
    conn.send(frame(PING, ACK, 0, b"unasked!"))
    expect_ping_ack(conn, b"asked!!!")


@case("http2/6.7/3", "PING on a stream other than 0")
def _(conn):
    conn.handshake()
    conn.send(frame(PING, 0, 1, b"pingdata"))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.7/4", "PING of a length other than 8")
def _(conn):
    conn.handshake()
    conn.send(frame(PING, 0, 0, b"pingda"))
    expect_connection_error(conn, FRAME_SIZE_ERROR)


@case("http2/6.8/1", "GOAWAY on a stream other than 0")
def _(conn):
    conn.handshake()
    conn.send(frame(GOAWAY, 0, 1, struct.pack(">II", 0, NO_ERROR)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.9/1", "WINDOW_UPDATE of 0 on the connection")
def _(conn):
    conn.handshake()
    conn.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.9/2", "WINDOW_UPDATE of 0 on a stream")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0)))
    expect_stream_error(conn, 1, PROTOCOL_ERROR)


@case("http2/6.9/3", "WINDOW_UPDATE of a length other than 4")
def _(conn):
    conn.handshake()
    conn.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)[:3]))
    expect_connection_error(conn, FRAME_SIZE_ERROR)


@case("http2/6.9.1/1", "an initial window of 1: DATA comes one byte at a time")
def _(conn):
    conn.handshake([(INITIAL_WINDOW_SIZE, 1)])
    conn.request(1)
    expect_data(conn, 1, 1)


@case("http2/6.9.1/2", "WINDOW_UPDATE past 2^31-1 on the connection")
def _(conn):
    conn.handshake()
    conn.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2 ** 31 - 1)) * 2)
    expect_connection_error(conn, FLOW_CONTROL_ERROR)


@case("http2/6.9.1/3", "WINDOW_UPDATE past 2^31-1 on a stream")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 2 ** 31 - 1)) * 2)
    expect_stream_error(conn, 1, FLOW_CONTROL_ERROR)


@case("http2/6.9.2/1", "SETTINGS_INITIAL_WINDOW_SIZE raised after the request")
def _(conn):
    conn.handshake([(INITIAL_WINDOW_SIZE, 0)])
    conn.request(1)
    expect_response(conn, 1)
    conn.send(frame(SETTINGS, 0, 0, settings_payload([(INITIAL_WINDOW_SIZE, 1)])))
    expect_data(conn, 1, 1)


@case("http2/6.9.2/2", "a window made negative by SETTINGS is tracked")
def _(conn):
    conn.handshake()
    conn.send(frame(SETTINGS, 0, 0, settings_payload([(INITIAL_WINDOW_SIZE, 3)])))
    expect_settings_ack(conn)
    conn.request(1)
    expect_data(conn, 1, 3)
    conn.send(frame(SETTINGS, 0, 0, settings_payload([(INITIAL_WINDOW_SIZE, 2)])))
    expect_settings_ack(conn)
    # The stream's window is now -1: an increment of 2 allows exactly one byte.
    conn.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 2)))
    expect_data(conn, 1, 1)


@case("http2/6.9.2/3", "SETTINGS_INITIAL_WINDOW_SIZE above the maximum window")
def _(conn):
    conn.handshake()
    conn.send(frame(SETTINGS, 0, 0, settings_payload([(INITIAL_WINDOW_SIZE, 2 ** 31)])))
    expect_connection_error(conn, FLOW_CONTROL_ERROR)


@case("http2/6.10/1", "HEADERS followed by several CONTINUATION frames")
def _(conn):
    conn.handshake()
    conn.send(continued(conn.headers(extra=[("x-pad", "p" * 60)]), 4))
    expect_response(conn, 1)


@case("http2/6.10/2", "CONTINUATION followed by a frame of another type")
def _(conn):
    conn.handshake()
    first, *rest = split_block(conn.headers(), 2)
    conn.send(frame(HEADERS, 0, 1, first) + frame(CONTINUATION, 0, 1, b"".join(rest)) + frame(DATA, END_STREAM, 1, b"x"))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.10/3", "CONTINUATION on stream 0")
def _(conn):
    conn.handshake()
    first, *rest = split_block(conn.headers(), 2)
    conn.send(frame(HEADERS, END_STREAM, 1, first) + frame(CONTINUATION, END_HEADERS, 0, b"".join(rest)))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.10/4", "CONTINUATION after HEADERS that ended the block")
def _(conn):
    conn.handshake()
    conn.send(frame(HEADERS, END_HEADERS, 1, conn.headers(method="POST")) + frame(CONTINUATION, END_HEADERS, 1, conn.headers()))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.10/5", "CONTINUATION after a CONTINUATION that ended the block")
def _(conn):
    conn.handshake()
    first, *rest = split_block(conn.headers(method="POST"), 2)
    conn.send(frame(HEADERS, 0, 1, first) + frame(CONTINUATION, END_HEADERS, 1, b"".join(rest))
              + frame(CONTINUATION, END_HEADERS, 1, conn.headers()))
    expect_connection_error(conn, PROTOCOL_ERROR)


@case("http2/6.10/6", "CONTINUATION after DATA")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, 0, 1, b"test") + frame(CONTINUATION, END_HEADERS, 1, conn.headers()))
    expect_connection_error(conn, PROTOCOL_ERROR)


# §7: error codes.

@case("http2/7/1", "GOAWAY with an unknown error code")
def _(conn):
    conn.handshake()
    conn.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0xff)))
    try:
        expect_ping_ack(conn)
    except Fail:
        if not conn.closed:
            raise


@case("http2/7/2", "RST_STREAM with an unknown error code")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 0xff)))
    expect_ping_ack(conn)


# §8: HTTP message exchanges.

def malformed(title, identifier, fields, end_stream=True):
    """A request whose header block breaks a rule of RFC 9113 §8: a stream error of type PROTOCOL_ERROR."""
    def run(conn):
        conn.handshake()
        encoder = hpack.Encoder()
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        conn.send(frame(HEADERS, flags, 1, encoder.encode(fields)))
        expect_stream_error(conn, 1, PROTOCOL_ERROR)
    case(identifier, title)(run)


@case("http2/8.1/1", "a second HEADERS without END_STREAM")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, 0, 1, b"test"))
    conn.send(frame(HEADERS, END_HEADERS, 1, conn.encoder.encode([("x-trailer", "yes")])))
    expect_stream_error(conn, 1, PROTOCOL_ERROR)


def base(**overrides):
    fields = {":method": "GET", ":scheme": "https", ":path": "/", ":authority": "localhost"}
    fields.update(overrides)
    return [(name, value) for name, value in fields.items() if value is not None]


malformed("a field name in upper case", "http2/8.1.2/1", base() + [("X-Test", "ok")])
malformed("an unknown pseudo-header", "http2/8.1.2.1/1", base() + [(":test", "ok")])
malformed("a response pseudo-header in a request", "http2/8.1.2.1/2", base() + [(":status", "200")])
malformed("a pseudo-header after a regular field", "http2/8.1.2.1/4", base()[:3] + [("x-test", "ok")] + base()[3:])
malformed("a connection-specific field", "http2/8.1.2.2/1", base() + [("connection", "keep-alive")])
malformed("TE other than trailers", "http2/8.1.2.2/2", base() + [("te", "trailers, deflate")])
malformed("an empty :path", "http2/8.1.2.3/1", base(**{":path": ""}))
malformed("no :method", "http2/8.1.2.3/2", base(**{":method": None}))
malformed("no :scheme", "http2/8.1.2.3/3", base(**{":scheme": None}))
malformed("no :path", "http2/8.1.2.3/4", base(**{":path": None}))
malformed("a repeated :method", "http2/8.1.2.3/5", base() + [(":method", "GET")])
malformed("a repeated :scheme", "http2/8.1.2.3/6", base() + [(":scheme", "https")])
malformed("a repeated :path", "http2/8.1.2.3/7", base() + [(":path", "/")])


@case("http2/8.1.2.1/3", "a pseudo-header in trailers")
def _(conn):
    conn.handshake()
    open_stream(conn)
    conn.send(frame(DATA, 0, 1, b"test"))
    conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, conn.encoder.encode([(":method", "POST")])))
    expect_stream_error(conn, 1, PROTOCOL_ERROR)


@case("http2/8.1.2.6/1", "content-length unlike the DATA length")
def _(conn):
    conn.handshake()
    conn.request(1, method="POST", end_stream=False, extra=[("content-length", "1")])
    conn.send(frame(DATA, END_STREAM, 1, b"test"))
    expect_stream_error(conn, 1, PROTOCOL_ERROR)


@case("http2/8.1.2.6/2", "content-length unlike the sum of several DATA frames")
def _(conn):
    conn.handshake()
    conn.request(1, method="POST", end_stream=False, extra=[("content-length", "1")])
    conn.send(frame(DATA, 0, 1, b"test") + frame(DATA, END_STREAM, 1, b"test"))
    expect_stream_error(conn, 1, PROTOCOL_ERROR)


@case("http2/8.2/1", "PUSH_PROMISE from a client")
def _(conn):
    conn.handshake()
    conn.send(frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 3) + conn.headers()))
    expect_connection_error(conn, PROTOCOL_ERROR)


# RFC 7541: HPACK decoding errors are connection errors of type COMPRESSION_ERROR.

def compression(identifier, title, block):
    def run(conn):
        conn.handshake()
        conn.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        expect_connection_error(conn, COMPRESSION_ERROR)
    case(identifier, title)(run)


GET_BLOCK = request_block()
compression("hpack/2.3.3/1", "an indexed field beyond the tables", GET_BLOCK + bytes([0xbe]))
compression("hpack/2.3.3/2", "a literal whose name index is beyond the tables", GET_BLOCK + indexed_name(0x40, 6, 62, b"x"))
compression("hpack/4.2/1", "a table size update at the end of a block", GET_BLOCK + table_size_update(0))
huffman_name = HUFFMAN.encode(b"x-test")
compression("hpack/5.2/1", "Huffman padding longer than 7 bits",
            GET_BLOCK + bytes([0x40, 0x80 | (len(huffman_name) + 1)]) + huffman_name + b"\xff" + literal(b"v"))
# "a" is 00011 in the Huffman code: padding it with zeros instead of ones.
compression("hpack/5.2/2", "Huffman padding of zeros", GET_BLOCK + bytes([0x40, 0x81, 0x18]) + literal(b"v"))
compression("hpack/5.2/3", "the EOS symbol inside a Huffman string",
            GET_BLOCK + bytes([0x40, 0x85, 0x18 | 0x07, 0xff, 0xff, 0xff, 0xff]) + literal(b"v"))
compression("hpack/6.1/1", "an indexed field with index 0", GET_BLOCK + bytes([0x80]))
compression("hpack/6.3/1", "a table size update above SETTINGS_HEADER_TABLE_SIZE",
            table_size_update(4097) + GET_BLOCK)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--host", default="localhost", help="SNI and :authority")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each expected frame")
    parser.add_argument("--only", default="", help="run the cases whose id starts with this")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for identifier, title, run in CASES:
        if not identifier.startswith(args.only):
            continue
        detail = ""
        try:
            conn = Conn(args)
        except (OSError, RuntimeError) as error:
            results.append({"id": identifier, "title": title, "passed": False, "detail": f"no connection: {error}"})
            continue
        try:
            run(conn)
            passed = True
        except Fail as failure:
            passed, detail = False, str(failure)
        except Closed:
            passed, detail = False, "the server closed the connection" + _observed(conn)
        except Exception as error:  # a bug in the case or an unreadable frame from the server
            passed, detail = False, f"{type(error).__name__}: {error}" + _observed(conn)
        finally:
            conn.close()
        results.append({"id": identifier, "title": title, "passed": passed, "detail": detail})
    if args.json:
        print(json.dumps({"cases": results}))
    else:
        for result in results:
            mark = "ok  " if result["passed"] else "FAIL"
            print(f"{mark} {result['id']}: {result['title']}" + (f" ({result['detail']})" if result["detail"] else ""))
        failed = sum(not r["passed"] for r in results)
        print(f"{len(results)} cases, {len(results) - failed} passed, {failed} failed")
    sys.exit(0 if results and all(r["passed"] for r in results) else 1)


if __name__ == "__main__":
    main()
