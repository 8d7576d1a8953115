"""WebSocket client for the proxy tests: connects, sends each argument as a text message, prints each reply.

Usage: python ws_client.py ws://127.0.0.1:PORT/ws hello @sleep:1.5 world
An argument @sleep:SECONDS pauses on the open connection instead of sending.
Exit status 0 when every message got its echo.
"""
import asyncio
import sys

import websockets


async def main(url, messages):
    async with websockets.connect(url, open_timeout=10) as socket:
        for message in messages:
            if message.startswith("@sleep:"):
                await asyncio.sleep(float(message[len("@sleep:"):]))
                continue
            await socket.send(message)
            reply = await asyncio.wait_for(socket.recv(), timeout=10)
            print(reply, flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2:]))
