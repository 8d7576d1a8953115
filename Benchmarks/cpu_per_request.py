#!/usr/bin/env python3
"""CPU time per request (user and system, microseconds) for one or more Vantage builds and nginx, on compare.py's
tree, certificate, backend and pinning (it imports ../shared/bench/compare.py for all of that).

Throughput on this 2-core VM swings about ±15% from run to run; the server's own CPU time per request over a fixed
load moves far less, so it is how a change to the request path is judged (two builds side by side, alternating).
The figures are the server's user and system ticks (/proc/<pid>/stat of the server and its children, e.g. nginx's
worker) over a timed load, divided by the requests the load generator completed.

Usage: Benchmarks/cpu_per_request.py --vantage A [--vantage B ...] [--config Benchmarks/compare.yaml.template]
       [--scenarios static-1k,h2-1k] [--rounds 3] [--seconds 8] [--no-nginx] [--bare] [--variant NAME=TEMPLATE ...]
Each figure is the median over rounds. --bare adds, for each build, a run of the same config with tracking and the
access log off: the difference is what recording a request costs. --variant adds a run of each build on another
config template (e.g. the access log off, or the spool without fsync), paired round by round like the builds.
"""
import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "bench"))
import compare  # noqa: E402  (the harness we are judged by: its servers, tree and pinning)

TICKS = os.sysconf("SC_CLK_TCK")


def tree_ticks(root):
    """User and system clock ticks of `root` and its descendants."""
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]), int(fields[12]))
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    return tuple(sum(times.get(pid, (0, 0))[i] for pid in members) for i in range(2))


def bare_template(template, work):
    """`template` with tracking and the access log off (the `tracking:` block and `access_log:` line replaced)."""
    with open(template) as f:
        text = f.read()
    text = re.sub(r"^access_log:.*$", "access_log: off", text, flags=re.M)
    text, found = re.subn(r"^tracking:\n(?:[ \t]+.*\n?)*", "tracking: { enabled: false }\n", text, flags=re.M)
    if not found:
        text += "\ntracking: { enabled: false }\n"
    path = os.path.join(work, "bare.yaml.template")
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vantage", action="append", required=True, help="a release binary (repeatable)")
    ap.add_argument("--config", default=os.path.join(ROOT, "Benchmarks", "compare.yaml.template"))
    ap.add_argument("--scenarios", default="static-1k,h2-1k")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--bare", action="store_true", help="also run each build with tracking and the access log off")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=TEMPLATE",
                    help="also run each build on this config template (repeatable)")
    a = ap.parse_args()
    pin = (os.cpu_count() or 1) >= 2
    work = tempfile.mkdtemp(prefix="vantage-cpu-")
    os.chmod(work, 0o755)
    www, cert, key = compare.make_tree(work)
    backend_proc, backend_port = compare.start_backend(work, pin)
    backend = f"127.0.0.1:{backend_port}"
    servers = [] if a.no_nginx else [compare.nginx_server(work, www, cert, key, backend)]
    configs = [(a.config, "")]
    if a.bare:
        configs.append((bare_template(a.config, work), " bare"))
    for variant in a.variant:
        name, _, template = variant.partition("=")
        if not template or not os.path.exists(template):
            sys.exit(f"--variant {variant}: expected NAME=TEMPLATE with an existing template file")
        configs.append((template, " " + name))
    for index, binary in enumerate(a.vantage):
        for template, suffix in configs:
            own = os.path.join(work, f"build{index}{suffix.strip()}")  # each run its own config, spool and logs
            os.makedirs(own)
            server = compare.vantage_server(own, www, cert, key, backend, binary, template, ["run", "--config", "{CONFIG}"])
            name = f"{os.path.basename(binary)}#{index}" if len(a.vantage) > 1 else "vantage"
            server["name"] = name + suffix
            servers.append(server)
    results = {}
    try:
        for scenario in [s for s in a.scenarios.split(",") if s]:
            for round_index in range(a.rounds):
                # Every other round in reverse, so no build always runs right after the same one.
                for server in servers if round_index % 2 == 0 else servers[::-1]:
                    p, ok = compare.start(server, pin)
                    if ok:
                        compare.load(server, scenario, 2, pin)
                        before = tree_ticks(p.pid)
                        rps, _, bad = compare.load(server, scenario, a.seconds, pin)
                        after = tree_ticks(p.pid)
                        requests = rps * a.seconds
                        if requests > 0 and bad == 0:
                            per = [(after[i] - before[i]) / TICKS * 1e6 / requests for i in range(2)]
                            results.setdefault((scenario, server["name"]), []).append((per[0], per[1], rps, round_index))
                    compare.stop(p)
    finally:
        compare.stop(backend_proc)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'scenario':12} {'server':28} {'user us/req':>12} {'sys us/req':>11} {'req/s':>9}")
    for (scenario, name), runs in results.items():
        user, system, rps = (statistics.median(run[i] for run in runs) for i in range(3))
        print(f"{scenario:12} {name:28} {user:12.2f} {system:11.2f} {rps:9.0f}")
    # The machine's speed drifts between rounds (a VM's neighbours): a build against the first, round by round
    # (each round runs them back to back), is steadier than the medians above.
    names = list(dict.fromkeys(name for (_, name) in results))
    vantages = [n for n in names if n != "nginx"]
    if len(vantages) > 1:
        print(f"\npaired against {vantages[0]}: median of the per-round ratios (rounds with both runs)")
        for scenario in dict.fromkeys(s for (s, _) in results):
            base = {run[3]: run for run in results.get((scenario, vantages[0]), [])}
            for name in vantages[1:]:
                pairs = [(base[run[3]], run) for run in results.get((scenario, name), []) if run[3] in base]
                if not pairs:
                    continue
                user = statistics.median(o[0] / b[0] for b, o in pairs)
                total = statistics.median((o[0] + o[1]) / (b[0] + b[1]) for b, o in pairs)
                print(f"{scenario:12} {name:28} user {user:6.3f}  user+sys {total:6.3f}  ({len(pairs)} rounds)")


if __name__ == "__main__":
    main()
