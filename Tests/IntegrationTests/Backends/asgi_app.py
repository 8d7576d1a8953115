"""Test backend for the proxy integration tests: a plain ASGI app served by uvicorn (from PyPI).

HTTP: /echo answers with the request's method, path and headers as JSON; /hello answers a fixed text.
WebSocket: /ws echoes every message back, prefixed with "echo: ".
Run: uvicorn asgi_app:app --uds /path/to.sock   (or --port N)
"""
import json
import os

NAME = os.environ.get("BACKEND_NAME", "uvicorn")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path.endswith("/hello"):
        payload = b"hello from uvicorn"
        content_type = b"text/plain"
    else:
        payload = json.dumps({
            "backend": NAME,
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "bodyBytes": len(body),
            "httpVersion": scope["http_version"],
        }).encode()
        content_type = b"application/json"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", content_type), (b"x-backend", NAME.encode())]})
    await send({"type": "http.response.body", "body": payload})


async def websocket(scope, receive, send):
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": "echo: " + message["text"]})
        elif message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
