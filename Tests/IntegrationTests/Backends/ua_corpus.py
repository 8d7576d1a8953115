#!/usr/bin/env python3
"""Builds the user-agent corpora of the classifier's corpus tests from public packages, as TSV on stdout.

Sources (none of it is committed): the crawler-user-agents list (PyPI `crawler-user-agents`: every pattern's
instances are crawlers) and Matomo Device Detector's test fixtures (PyPI `device_detector`, which ships them:
`bots.yml`, and for everything else the client's type and name, the OS and the device type). Lines:

    crawler <TAB> user agent
    bot <TAB> user agent
    client <TAB> client type <TAB> user agent <TAB> client name <TAB> OS name <TAB> device type
"""
import glob
import json
import os
import sys

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def package_dir(name):
    for path in sys.path:
        candidate = os.path.join(path, name)
        if os.path.isdir(candidate):
            return candidate
    sys.exit(f"the Python package {name} is not installed (scripts/test.sh installs it)")


def clean(text):
    return " ".join(str(text or "").split())


out = sys.stdout
crawlers = os.path.join(package_dir("crawleruseragents"), "crawler-user-agents.json")
for entry in json.load(open(crawlers, encoding="utf-8")):
    for instance in entry.get("instances", []):
        out.write(f"crawler\t{clean(instance)}\n")

fixtures = os.path.join(package_dir("device_detector"), "tests", "fixtures", "upstream")
for path in sorted(glob.glob(os.path.join(fixtures, "*.yml"))):
    for item in yaml.load(open(path, encoding="utf-8"), Loader=Loader) or []:
        agent = clean(item.get("user_agent"))
        if not agent:
            continue
        if os.path.basename(path) == "bots.yml":
            out.write(f"bot\t{agent}\n")
            continue
        client = item.get("client") or {}
        os_info = item.get("os") or {}
        device = item.get("device") or {}
        out.write("\t".join(["client", clean(client.get("type")), agent, clean(client.get("name")),
                             clean(os_info.get("name") if isinstance(os_info, dict) else ""),
                             clean(device.get("type"))]) + "\n")
