#!/usr/bin/env python3
"""Short links at scale: one million links in the journal, then

1. startup: the time Vantage reports for loading them, and the time until it listens;
2. memory: RSS with the million links loaded, minus RSS with none;
3. speed: wrk on a link redirect (random-looking slugs spread over the million) against wrk on /1k.html, same
   Vantage, interleaved rounds, both driven through a Lua request() function (the slugs need one, and the static
   run pays the same client cost); the ratio of medians is the verdict (target 0.9).

Usage: Benchmarks/links.py [--links 1000000] [--rounds 5] [--seconds 10]   (after scripts/build-release.sh)
"""
import argparse
import os
import random
import re
import shutil
import statistics
import string
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import ROOT, rss_kib, start_vantage  # noqa: E402


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def text(value):
    data = value.encode()
    return varint(len(data)) + data


def put_record(link_id, host, slug, destination, now):
    # LinkCodec .put: op, id, host, slug, destination, status, flags, deny list, add query, tags, created, updated.
    return (b"\x01" + text(link_id) + text(host) + text(slug) + text(destination) + varint(302) + b"\x00"
            + varint(0) + varint(0) + varint(0) + varint(now) + varint(now))


def write_journal(folder, count, host):
    os.makedirs(folder, exist_ok=True)
    now = int(time.time() * 1000)
    rng = random.Random(7)
    slugs = []
    alphabet = string.ascii_letters + string.digits
    with open(os.path.join(folder, "links.journal"), "wb") as f:
        f.write(b"VLINKS1\n")
        chunk = bytearray()
        for index in range(count):
            slug = "".join(rng.choice(alphabet) for _ in range(7))
            slugs.append(slug)
            payload = put_record(f"{index:08x}-0000-4000-8000-{index:012x}", host, slug, f"https://www.example.org/campaign/{index}?utm_source=qr", now)
            chunk += struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
            if len(chunk) > 1 << 20:
                f.write(chunk)
                chunk = bytearray()
        f.write(chunk)
    return slugs


def config(folder, links_dir):
    os.makedirs(os.path.join(folder, "www"), exist_ok=True)
    with open(os.path.join(folder, "www", "1k.html"), "w") as f:
        f.write("<html>" + "x" * 1011 + "</html>")
    path = os.path.join(folder, "vantage.yaml")
    with open(path, "w") as f:
        f.write(f"""listen: {{ http: "127.0.0.1:0" }}
sites:
  - hosts: [go.bench]
    routes:
      - {{ path: /, links: true }}
  - hosts: ["*"]
    routes:
      - {{ path: /, static: {{ root: "{folder}/www" }} }}
access_log: off
admin: {{ listen: "127.0.0.1:0" }}
tracking: {{ spool: {{ dir: "{folder}/spool", max_size: 8GB }} }}
links: {{ dir: "{links_dir}" }}
""")
    return path


def wrk(url, seconds, host, script=None):
    argv = ["wrk", "-t1", "-c64", f"-d{seconds}s", "-H", f"Host: {host}"]
    if script:
        argv += ["-s", script]
    out = subprocess.run(argv + [url], check=True, capture_output=True, text=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} failed answers:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vantage", default=None)
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    binary = os.path.abspath(args.vantage) if args.vantage else subprocess.run(
        [os.path.join(ROOT, "scripts", "build-release.sh")], check=True, capture_output=True, text=True).stdout.strip()
    scratch = tempfile.mkdtemp(prefix="vantage-links-bench-")
    try:
        empty = os.path.join(scratch, "empty")
        process, _, _ = start_vantage(binary, config(empty, os.path.join(empty, "links")), empty)
        time.sleep(1)
        baseline = rss_kib(process.pid)
        process.terminate()
        process.wait(timeout=30)

        folder = os.path.join(scratch, "million")
        links_dir = os.path.join(folder, "links")
        started = time.time()
        slugs = write_journal(links_dir, args.links, "go.bench")
        size = os.path.getsize(os.path.join(links_dir, "links.journal"))
        print(f"journal: {args.links:,} links, {size / 1048576:.0f} MiB, written in {time.time() - started:.1f} s", flush=True)
        launched = time.time()
        process, http, _ = start_vantage(binary, config(folder, links_dir), folder)
        listening = time.time() - launched
        log = open(os.path.join(folder, "vantage.yaml.log")).read()
        loaded = re.search(r"links: (\d+) link\(s\) loaded from .* in (\d+) ms", log)
        time.sleep(1)
        loaded_rss = rss_kib(process.pid)
        print(f"startup: {int(loaded.group(1)):,} links loaded in {int(loaded.group(2)) / 1000:.2f} s; listening "
              f"{listening:.2f} s after launch", flush=True)
        print(f"memory: RSS {loaded_rss / 1024:.0f} MiB with the links, {baseline / 1024:.0f} MiB without: "
              f"index {(loaded_rss - baseline) / 1024:.0f} MiB", flush=True)
        # wrk walks through 10,000 of the slugs (a Lua list), so lookups spread over the table.
        script = os.path.join(scratch, "slugs.lua")
        sample = random.Random(3).sample(slugs, 10_000)
        with open(script, "w") as f:
            f.write("slugs = {" + ",".join(f'"{s}"' for s in sample) + "}\n")
            f.write("i = 0\nrequest = function()\n  i = i % #slugs + 1\n  return wrk.format(nil, \"/\" .. slugs[i])\nend\n")
        # The static run goes through a Lua request() too, so both runs cost wrk the same per request.
        static_script = os.path.join(scratch, "static.lua")
        with open(static_script, "w") as f:
            f.write("request = function()\n  return wrk.format(nil, \"/1k.html\")\nend\n")
        rates = {"static-1k": [], "link": []}
        for round_number in range(args.rounds):
            rates["static-1k"].append(wrk(f"http://127.0.0.1:{http}/1k.html", args.seconds, "static.bench", static_script))
            rates["link"].append(wrk(f"http://127.0.0.1:{http}/", args.seconds, "go.bench", script))
            print(f"round {round_number + 1}: static-1k {rates['static-1k'][-1]:,.0f} req/s, link redirect "
                  f"{rates['link'][-1]:,.0f} req/s", flush=True)
        process.terminate()
        process.wait(timeout=60)
        ratio = statistics.median(rates["link"]) / statistics.median(rates["static-1k"])
        print(f"link resolution vs static-1k (medians of {args.rounds} interleaved rounds, same Vantage, "
              f"{args.links:,} links): {ratio:.3f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
