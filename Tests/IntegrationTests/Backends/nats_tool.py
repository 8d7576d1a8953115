"""NATS for the tests, through nats-py: make a JetStream stream, count its messages and their distinct ids.

Usage: python nats_tool.py URL create STREAM SUBJECT
       python nats_tool.py URL count STREAM          -> "<messages> <distinct Nats-Msg-Id>"
       python nats_tool.py URL listen SUBJECT SECONDS -> the messages a core subscriber got, one per line
"""
import asyncio
import sys

import nats


async def main(url, command, *args):
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if command == "create":
            await js.add_stream(name=args[0], subjects=[args[1]])
        elif command == "count":
            info = await js.stream_info(args[0])
            ids = set()
            if info.state.messages:
                sub = await js.pull_subscribe(info.config.subjects[0], durable=None, stream=args[0])
                remaining = info.state.messages
                while remaining > 0:
                    batch = await sub.fetch(min(remaining, 500), timeout=5)
                    for message in batch:
                        ids.add((message.headers or {}).get("Nats-Msg-Id"))
                        await message.ack()
                    remaining -= len(batch)
            print(info.state.messages, len(ids))
        elif command == "listen":
            got = []

            async def received(message):
                got.append(message.data.decode())

            await nc.subscribe(args[0], cb=received)
            await nc.flush()
            await asyncio.sleep(float(args[1]))
            for line in got:
                print(line)
    finally:
        await nc.close()


asyncio.run(main(*sys.argv[1:]))
