#!/usr/bin/env python3
"""How fast and how frugal osci's walk of the resource graph is.

Run by hand (not a test), after `cargo build --release` and with the
test venv (`bash tests/run.sh` makes it):

    .venv/bin/python bench/graph.py [--osci target/release/osci] [--builds 1 3 10]

Part 1 serves the simulator at latency scale 1 and applies N bsu builds
with `communicator: none`, each in a fresh state. For each N it prints the
wall time of `osci apply`, the critical path of the plan's graph under the
simulator's latency model (the figures `/_sim/stats` publishes, weighed on
the graph `osci plan --json` prints), their ratio, and the API calls by
operation (the apply plans for itself: its plan is included).

Part 2 makes 1,000 OMIs through the API at latency 0, writes the state
that osci would have written for them, and times `osci plan` of the
1,000-build template, with its `Read*` calls per kind.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def serve(osci, data, scale):
    """`osci sim serve` on a free loopback port; answers (process, its JSON line)."""
    proc = subprocess.Popen(
        [osci, "sim", "serve", "--listen", "127.0.0.1:0", "--data", data,
         "--latency-scale", str(scale)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, json.loads(proc.stdout.readline())


def stats(sim):
    url = sim["endpoint"].replace("/api/v1", "/_sim/stats")
    with urllib.request.urlopen(url) as r:
        return json.load(r)


def calls_between(before, after):
    out = {}
    for op, n in after["calls"].items():
        d = n - before["calls"].get(op, 0)
        if d:
            out[op] = d
    return out


def builder(sim, name, omi_name):
    return {
        "type": "outscale-bsu",
        "name": name,
        "custom_endpoint_oapi": sim["endpoint"],
        "vm_type": "tinav5.c2r4p2",
        "source_omi_filter": {"filters": {"image-name": "Ubuntu-22.04-*"},
                              "owners": ["Outscale"], "most_recent": True},
        "communicator": "none",
        "omi_name": omi_name,
    }


def environment(sim, home):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "NO_COLOR": "1",
           "OSC_ACCESS_KEY": sim["access_key"], "OSC_SECRET_KEY": sim["secret_key"]}
    return env


def osci_run(osci, args, cwd, env, check=True):
    out = subprocess.run([osci, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.exit(f"osci {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    return out


# What each node costs under the latency model, by kind and action.
def node_seconds(node, lat, snapshot_gib):
    kind, action = node["kind"], node["action"]
    if kind == "vm" and action in ("create", "replace"):
        return lat["vm_boot"]
    if kind == "vm" and action == "destroy":
        return lat["vm_terminate"]
    if kind == "stop":
        return lat["vm_stop"]
    if kind == "volume" and action in ("create", "replace") and node.get("makes_volume"):
        return lat["volume_create"]
    if kind == "image" and action in ("create", "replace"):
        sizes = snapshot_gib.get(node["build"], [0])
        snap = max(lat["snapshot_base"] + lat["snapshot_per_gib"] * s for s in sizes)
        return max(lat["image_register"], snap)
    return 0.0


def critical_path(plan, lat, snapshot_gib):
    """The longest path through the plan's graph, nodes weighed by the model."""
    nodes = {n["id"]: n for n in plan["nodes"]}
    preds = {i: [] for i in nodes}
    for a, b in plan["edges"]:
        preds[b].append(a)
    memo = {}

    def finish(i):
        if i not in memo:
            start = max((finish(p) for p in preds[i]), default=0.0)
            memo[i] = start + node_seconds(nodes[i], lat, snapshot_gib)
        return memo[i]

    return max((finish(i) for i in nodes), default=0.0)


def part1(osci, counts):
    with tempfile.TemporaryDirectory() as tmp:
        proc, sim = serve(osci, os.path.join(tmp, "sim"), 1)
        try:
            lat = stats(sim)["latency_seconds_at_scale_1"]
            print("Part 1: N bsu builds, communicator none, simulator at latency scale 1")
            print(f"  latency model (s): {json.dumps(lat)}")
            for n in counts:
                work = os.path.join(tmp, f"n{n}")
                os.makedirs(work)
                env = environment(sim, work)
                template = {"builders": [builder(sim, f"b{i}", f"bench-{n}-{i}") for i in range(n)]}
                with open(os.path.join(work, "t.json"), "w") as f:
                    json.dump(template, f)
                plan = json.loads(osci_run(osci, ["plan", "--json", "t.json"], work, env).stdout)
                before = stats(sim)
                started = time.monotonic()
                osci_run(osci, ["apply", "--auto-approve", "t.json"], work, env)
                wall = time.monotonic() - started
                calls = calls_between(before, stats(sim))
                with open(os.path.join(work, "state", "t.json")) as f:
                    state = json.load(f)
                gib = {}
                for r in state["resources"]:
                    if r["kind"] == "snapshot":
                        gib.setdefault(r["build"], []).append(r["attributes"].get("volume_size", 0))
                if "nodes" in plan:
                    path = critical_path(plan, lat, gib)
                    ratio = f"{wall / path:.2f}x" if path else "-"
                    path_text = f"{path:.1f} s"
                else:
                    path_text, ratio = "(the plan has no graph)", "-"
                total = sum(calls.values())
                print(f"\n  N={n}: wall {wall:.1f} s, critical path {path_text}, ratio {ratio}, "
                      f"{total} calls")
                for op in sorted(calls):
                    print(f"    {op:28} {calls[op]}")
                osci_run(osci, ["destroy", "--auto-approve", "t.json"], work, env)
        finally:
            proc.terminate()
            proc.wait()


def part2(osci, count):
    try:
        from osc_sdk_python import Gateway
        from osc_sdk_python.credentials import Endpoint
    except ImportError:
        sys.exit("part 2 needs osc-sdk-python: run with .venv/bin/python (bash tests/run.sh makes it)")
    with tempfile.TemporaryDirectory() as tmp:
        proc, sim = serve(osci, os.path.join(tmp, "sim"), 0)
        try:
            gw = Gateway(access_key=sim["access_key"], secret_key=sim["secret_key"],
                         region=sim["region"], endpoints=Endpoint(api=sim["endpoint"]))
            # The SDK's own limit (5 per second) is not what is measured here.
            gw.limiter.max_requests = 10**9
            work = os.path.join(tmp, "bulk")
            os.makedirs(work)
            env = environment(sim, work)
            template = {"builders": [builder(sim, f"b{i}", f"bulk-{i}") for i in range(count)]}
            with open(os.path.join(work, "t.json"), "w") as f:
                json.dump(template, f)
            # The digests a plan gives the builds, before their OMIs exist.
            unlimited = dict(env, OSCI_RATE_LIMIT="0")
            plan = json.loads(osci_run(osci, ["plan", "--json", "t.json"], work, unlimited).stdout)
            volume = gw.CreateVolume(SubregionName=sim["region"] + "a", Size=1)["Volume"]
            snapshot = gw.CreateSnapshot(VolumeId=volume["VolumeId"])["Snapshot"]["SnapshotId"]
            made = time.monotonic()
            images = []
            for i in range(count):
                images.append(gw.CreateImage(
                    ImageName=f"bulk-{i}", RootDeviceName="/dev/sda1",
                    BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                          "Bsu": {"SnapshotId": snapshot}}])["Image"]["ImageId"])
            made = time.monotonic() - made
            digests = {b["name"]: b["digest"] for b in plan["builds"]}
            resources = []
            for i, image in enumerate(images):
                build = f"b{i}"

                def entry(kind, key, attributes, deps, ident):
                    address = f"build.{build}.{kind}" + (f'["{key}"]' if key else "")
                    return {"address": address, "build": build, "kind": kind, "id": ident,
                            "status": "created", "ephemeral": False, "attributes": attributes,
                            "input_digest": digests[build], "dependencies": deps}

                image_address = f"build.{build}.image"
                snapshot_address = f'build.{build}.snapshot["/dev/sda1"]'
                perms = {"account_ids": [], "global_permission": False}
                resources += [
                    entry("image", None, {"name": f"bulk-{i}", "description": "", "id": image,
                                          "state": "available"}, [snapshot_address], image),
                    entry("snapshot", "/dev/sda1", {"id": snapshot, "volume_size": 1}, [], snapshot),
                    entry("image_permissions", None, perms, [image_address], image),
                    entry("snapshot_permissions", None, dict(perms, snapshot_ids=[snapshot]),
                          [image_address], image),
                    entry("tags", None, {"tags": {}, "snapshot_tags": {}}, [image_address], image),
                ]
            resources.sort(key=lambda r: r["address"])
            os.makedirs(os.path.join(work, "state"))
            with open(os.path.join(work, "state", "t.json"), "w") as f:
                json.dump({"format_version": 2, "lineage": "00000000-0000-4000-8000-000000000000",
                           "serial": 1, "osci_version": "bench", "resources": resources}, f)
            before = stats(sim)
            started = time.monotonic()
            out = osci_run(osci, ["plan", "t.json"], work, env)
            wall = time.monotonic() - started
            calls = calls_between(before, stats(sim))
            reads = {op: n for op, n in calls.items() if op.startswith("Read")}
            print(f"\nPart 2: plan of a state of {count} OMIs (made in {made:.1f} s at latency 0)")
            print(f"  wall {wall:.2f} s, {sum(calls.values())} calls; plan says: "
                  f"{out.stdout.strip().splitlines()[-1]}")
            for op in sorted(reads):
                print(f"    {op:28} {reads[op]}")
        finally:
            proc.terminate()
            proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--osci", default=os.path.join(ROOT, "target", "release", "osci"))
    parser.add_argument("--builds", type=int, nargs="*", default=[1, 3, 10])
    parser.add_argument("--omis", type=int, default=1000)
    parser.add_argument("--skip-part2", action="store_true")
    args = parser.parse_args()
    args.osci = os.path.abspath(args.osci)
    part1(args.osci, args.builds)
    if not args.skip_part2:
        part2(args.osci, args.omis)


if __name__ == "__main__":
    main()
