"""The Go tracker's WebSocket client, as its JS client talks to /tr/v1/ws: JSON events as text frames, or as
binary frames holding a size-prefixed LZ4 block (what lz4_flex's compress_prepend_size makes).

Usage: python ws_ingest_client.py ws://127.0.0.1:PORT/tr/v1/ws MESSAGE...
A MESSAGE is a JSON text sent as a text frame; "lz4:" before it sends it compressed in a binary frame;
"@sleep:SECONDS" pauses on the open connection; "@burst:N:JSON" sends N text frames at once.
Prints "sent N" and the close code once the server closes or after the last message. Extra headers come from
the WS_HEADERS environment variable as "Name: value" lines.
"""
import asyncio
import os
import sys

import lz4.block
import websockets


async def main(url, messages):
    headers = [tuple(line.split(": ", 1)) for line in os.environ.get("WS_HEADERS", "").splitlines() if ": " in line]
    sent = 0
    async with websockets.connect(url, open_timeout=10, additional_headers=headers, compression=None) as socket:
        for message in messages:
            if message.startswith("@sleep:"):
                await asyncio.sleep(float(message[len("@sleep:"):]))
            elif message.startswith("@burst:"):
                _, count, body = message.split(":", 2)
                for _ in range(int(count)):
                    await socket.send(body)
                    sent += 1
            elif message.startswith("lz4:"):
                await socket.send(lz4.block.compress(message[4:].encode(), store_size=True))
                sent += 1
            else:
                await socket.send(message)
                sent += 1
        await socket.close()
        print(f"sent {sent} close {socket.close_code}", flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2:]))
