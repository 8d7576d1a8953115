#!/usr/bin/env python3
"""What the reports cost with ClickHouse 18.16 (Debian's), or with a current ClickHouse (`--server chdb`: chdb from
PyPI behind the tests' stand-in for the HTTP interface, which runs one statement at a time): --events events over
the last 30 days, then the dashboard and each panel as the API answers them, cold (every report is asked once, so
ReportCache never answers).

1. A throwaway server; Vantage starts once against it to make the schema, then stops.
2. --events rows written straight into the events table by ClickHouse (`numbers()`): 30 days, three counted
   events a visit (page views and a custom event now and then), 500,000 visitors, 40 pages, five browsers and
   systems, eight countries, a few referrers and campaigns, 5% plain requests, 1% answered 404, machines.
3. The visits table dropped and its migration forgotten, so the next start runs the real migration: the visits of
   the events already stored, written into the visits table (timed).
4. The dashboard page for 30 days, 7 days and today (first request of each: cold), then each panel through
   `/api/v1/stats` with the panel's metrics, and `/api/v1/activity`, each once.

Usage: Benchmarks/insights_clickhouse.py [--events 10000000] [--server clickhouse|chdb]
(from the repository root, after scripts/build-release.sh; chdb needs scripts/test.sh's venv, .build/test-venv)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracking import ROOT, ClickHouse, start_vantage  # noqa: E402

# The dashboard's panels (Dashboard.panels): dimension and metrics.
PANELS = [("page", "visitors,pageviews"), ("entry_page", "visits,bounce_rate"), ("exit_page", "visits"),
          ("channel", "visitors,bounce_rate"), ("source", "visitors,bounce_rate"), ("utm_campaign", "visitors,visits"),
          ("country", "visitors"), ("device", "visitors"), ("browser", "visitors"), ("os", "visitors"),
          ("event", "visitors,events")]

GENERATE = """
INSERT INTO bench.events (id, {time_columns}, site, host, kind, method, scheme, path, query, status, bytes_in, bytes_out,
  duration_us, upstream, upstream_us, referrer, user_agent, http_version, tls_version, request_id, client_ip, ename,
  etyp, vid, sid, session_start, uid, browser, browser_version, os, os_version, device, bot_reason, country, region,
  city, lat, lon, referrer_host, source, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id, cflags,
  revenue, currency, props, channel, session_channel)
SELECT generateUUIDv4(), {time_values}, 'bench.test',
  'bench.test', multiIf(n % 20 = 0, 'request', n % 50 = 1, 'track', 'pageview'), 'GET', 'https',
  concat('/page', toString((n * 7) % 40), '.html'), '', if(n % 97 = 0, 404, 200), 300, 1200, 500,
  if(n % 20 = 0, 'app:3000', ''), if(n % 20 = 0, 2000 + n % 5000, 0), '', 'Mozilla/5.0', 'HTTP/1.1', 'TLSv1.3',
  toString(n), '10.0.0.1', if(n % 50 = 1, concat('signup', toString(n % 3)), ''), '',
  toString(intDiv(n, 3) % 500000), toString(intDiv(n, 3)), n % 3 = 0, '',
  ['Chrome', 'Safari', 'Firefox', 'Edge', 'Samsung Internet'][intDiv(n, 3) % 5 + 1], '131',
  ['Windows', 'iOS', 'macOS', 'Android', 'Linux'][intDiv(n, 3) % 5 + 1], '10',
  ['desktop', 'mobile', 'desktop', 'mobile', 'desktop'][intDiv(n, 3) % 5 + 1], if(intDiv(n, 3) % 40 = 0, 'crawler', ''),
  ['FR', 'DE', 'US', 'GB', 'ES', 'IT', 'NL', 'SE'][intDiv(n, 3) % 8 + 1], '', '', NULL, NULL,
  ['google.com', 't.co', '', 'news.ycombinator.com', ''][intDiv(n, 3) % 5 + 1],
  ['search', 'social', 'direct', 'referral', 'direct'][intDiv(n, 3) % 5 + 1],
  if(intDiv(n, 3) % 11 = 0, 'newsletter', ''), if(intDiv(n, 3) % 11 = 0, 'email', ''),
  if(intDiv(n, 3) % 11 = 0, concat('c', toString(intDiv(n, 3) % 4)), ''), '', '', '', 0, 0, '', '',
  ['Organic Search', 'Organic Social', 'Direct', 'Referral', 'Direct'][intDiv(n, 3) % 5 + 1],
  ['Organic Search', 'Organic Social', 'Direct', 'Referral', 'Direct'][intDiv(n, 3) % 5 + 1]
FROM (SELECT number AS n FROM numbers({events}))
"""


def config(folder, clickhouse, trace=False):
    path = os.path.join(folder, "insights.yaml")
    with open(path, "w") as f:
        f.write(("log_level: debug\n" if trace else "") + f"""listen: {{ http: "127.0.0.1:0" }}
sites:
  - hosts: [bench.test]
    routes:
      - {{ path: /, respond: "ok" }}
access_log: off
admin: {{ listen: "127.0.0.1:0" }}
tracking:
  spool: {{ dir: "{folder}/spool" }}
  clickhouse: {{ endpoints: ["{clickhouse.url}"], database: bench }}
""")
    return path


class Chdb:
    """A current ClickHouse: chdb behind the tests' stand-in for the HTTP interface."""

    def __init__(self, folder):
        python = os.path.join(ROOT, ".build", "test-venv", "bin", "python")
        server = os.path.join(ROOT, "Tests", "IntegrationTests", "Backends", "chdb_server.py")
        self.process = subprocess.Popen([python, server, folder], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening "):
            raise SystemExit("the chdb stand-in did not start (run scripts/test.sh once to make .build/test-venv)")
        self.url = f"http://127.0.0.1:{line.split()[1]}"

    def query(self, sql):
        return urllib.request.urlopen(self.url + "/", data=sql.encode(), timeout=1800).read().decode().strip()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def timed(url):
    started = time.time()
    body = urllib.request.urlopen(url, timeout=600).read().decode()
    return time.time() - started, body


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vantage", default=os.path.join(ROOT, ".build", "x86_64-unknown-linux-gnu", "release", "vantage"))
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--server", choices=["clickhouse", "chdb"], default="clickhouse")
    parser.add_argument("--trace", action="store_true", help="print each statement of the 30-day page and its time")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="vantage-insights-ch-")
    clickhouse = ClickHouse(os.path.join(scratch, "clickhouse")) if args.server == "clickhouse" else Chdb(os.path.join(scratch, "chdb"))
    try:
        path = config(scratch, clickhouse, args.trace)
        process, _, _ = start_vantage(args.vantage, path, scratch)
        while clickhouse.query("SELECT count() FROM system.tables WHERE database = 'bench' AND name = 'events_visits'") != "1":
            time.sleep(0.2)
        process.terminate()
        process.wait(timeout=60)

        started = time.time()
        step = 30 * 86_400_000 // args.events
        start = "(toUInt64(toUInt32(now()) - 30 * 86400) * 1000 + n * {step})".format(step=step)
        if args.server == "chdb":
            columns, values = "ts", f"fromUnixTimestamp64Milli(toInt64({start}))"
        else:
            columns, values = "ts, ts_ms", f"toDateTime(intDiv({start}, 1000)), {start} % 1000"
        clickhouse.query(GENERATE.format(events=args.events, time_columns=columns, time_values=values))
        print(f"{args.events:,} events written in {time.time() - started:.1f} s", flush=True)
        clickhouse.query("DROP TABLE bench.events_visits")
        clickhouse.query("ALTER TABLE bench.vantage_schema_migrations DELETE WHERE version = 4")
        while clickhouse.query("SELECT count() FROM bench.vantage_schema_migrations WHERE version = 4") != "0":
            time.sleep(0.2)

        started = time.time()
        process, _, admin = start_vantage(args.vantage, path, scratch)
        log = os.path.join(scratch, "insights.yaml.log")
        while "schema version 4 applied" not in open(log).read():
            if time.time() - started > 1800:
                raise SystemExit("the visits table's migration did not finish:\n" + open(log).read()[-2000:])
            time.sleep(0.2)
        visits = clickhouse.query("SELECT sum(sign) FROM bench.events_visits")
        print(f"migration to the visits table: {time.time() - started:.1f} s ({int(visits):,} visits)", flush=True)
        try:
            base = f"http://127.0.0.1:{admin}"
            for period in ("30d", "7d", "today"):
                seconds, page = timed(f"{base}/?period={period}")
                visitors = re.search(r"<dt>Visitors</dt><dd>([\d,]+)", page)
                print(f"dashboard page, {period}, cold: {seconds:.2f} s (visitors {visitors.group(1) if visitors else '?'})",
                      flush=True)
                if args.trace and period == "30d":
                    for line in sorted(re.findall(r"insights: ([\d.]+) seconds for (.{0,110})", open(log).read()), key=lambda x: -float(x[0])):
                        print(f"  {float(line[0]) * 1000:6.0f} ms  {line[1]}", flush=True)
            for dimension, metrics in PANELS:
                seconds, _ = timed(f"{base}/api/v1/stats?period=30d&dimension={dimension}&metrics={metrics}&limit=10")
                print(f"panel {dimension} ({metrics}), 30 days, API: {seconds * 1000:.0f} ms", flush=True)
            seconds, _ = timed(f"{base}/api/v1/stats?period=30d&metrics=visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration")
            print(f"headline, 30 days, API: {seconds * 1000:.0f} ms", flush=True)
            seconds, _ = timed(f"{base}/api/v1/activity?period=30d")
            print(f"links, emails and money, 30 days, API: {seconds * 1000:.0f} ms", flush=True)
            seconds, _ = timed(f"{base}/api/v1/stats?period=30d&dimension=source&filters=page%3D%3D/page3.html")
            print(f"sources of the visits that saw one page (a page filter: from the events), 30 days: {seconds:.2f} s",
                  flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
    finally:
        clickhouse.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
