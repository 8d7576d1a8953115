#!/usr/bin/env python3
"""Writes crawler-user-agents.json (the crawler-user-agents list, MIT, from its PyPI package) to the path given.

Reads PyPI's JSON API for the newest wheel, checks its SHA-256 against PyPI's, and copies the one data file out of
it. Standard library only, so it runs before any virtual environment exists.
"""
import hashlib
import io
import json
import sys
import urllib.parse
import urllib.request
import zipfile

target = sys.argv[1]
index = "https://pypi.org/pypi/crawler-user-agents/json"
with urllib.request.urlopen(index, timeout=60) as answer:
    meta = json.load(answer)
wheel = next(f for f in meta["urls"] if f["filename"].endswith(".whl"))
# A mirror may answer with links relative to the API's address.
with urllib.request.urlopen(urllib.parse.urljoin(index, wheel["url"]), timeout=120) as answer:
    data = answer.read()
if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
    sys.exit(f"crawler-user-agents {meta['info']['version']}: the wheel's SHA-256 does not match PyPI's")
with zipfile.ZipFile(io.BytesIO(data)) as archive:
    listing = archive.read("crawleruseragents/crawler-user-agents.json")
json.loads(listing)  # a list, or fail here rather than at Vantage's start
with open(target, "wb") as out:
    out.write(listing)
print(f"crawler-user-agents {meta['info']['version']}: {target}")
