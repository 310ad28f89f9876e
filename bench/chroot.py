#!/usr/bin/env python3
"""The chroot builder against the bsu builder: the same image, built both
ways, one run each, with the simulator at the same latency scale.

Run by hand as root (the chroot build links a volume to this machine and
mounts it; the bsu build's VM answers SSH on port 22), after
`cargo build --release` and with the test venv:

    .venv/bin/python bench/chroot.py [--osci target/release/osci] [--scale 1]

Both builds start from the same catalogue image and run the same shell
provisioner; a third, chroot again, starts from the bsu build's OMI (of
the account: no copy of the source). Each prints its wall time and its API
calls by operation.
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from graph import ROOT, calls_between, environment, osci_run, serve, stats  # noqa: E402

PROVISIONERS = [{"type": "shell", "inline": ["echo 'golden' > /etc/motd", "mkdir -p /opt/app"]}]
SOURCE = {"filters": {"image-name": "Debian-12-*"}, "owners": ["Outscale"], "most_recent": True}


def builds(sim, work):
    return {
        "osc-bsu": {
            "type": "outscale-bsu", "name": "golden", "custom_endpoint_oapi": sim["endpoint"],
            "vm_type": "tinav5.c2r4p2", "source_omi_filter": SOURCE, "omi_name": "golden-bsu",
            "communicator": "ssh", "ssh_username": "outscale", "ssh_timeout": "2m",
        },
        "osc-chroot": {
            "type": "outscale-chroot", "name": "golden", "custom_endpoint_oapi": sim["endpoint"],
            "source_omi_filter": SOURCE, "omi_name": "golden-chroot",
            "mount_path": os.path.join(work, "mnt", "{{.Device}}"),
        },
        # From an OMI of the account (the bsu build's): no copy of the source.
        "osc-chroot (own source)": {
            "type": "outscale-chroot", "name": "golden", "custom_endpoint_oapi": sim["endpoint"],
            "source_omi_filter": {"filters": {"image-name": "golden-bsu"},
                                  "owners": [sim["account_id"]]},
            "omi_name": "golden-chroot-own",
            "mount_path": os.path.join(work, "mnt", "{{.Device}}"),
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--osci", default=os.path.join(ROOT, "target", "release", "osci"))
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/chroot.py needs root: the chroot build mounts a volume on this machine")
    with tempfile.TemporaryDirectory() as tmp:
        proc, sim = serve(args.osci, os.path.join(tmp, "sim"), args.scale)
        try:
            print(f"The same image built twice, simulator at latency scale {args.scale}")
            for kind, builder in builds(sim, tmp).items():
                work = os.path.join(tmp, kind.split()[0] + str(len(os.listdir(tmp))))
                os.makedirs(work)
                builder = builds(sim, work)[kind]
                env = environment(sim, work)
                env["OSCI_METADATA_URL"] = sim["metadata_url"]
                with open(os.path.join(work, "t.json"), "w") as f:
                    json.dump({"builders": [builder], "provisioners": PROVISIONERS}, f)
                before = stats(sim)
                started = time.monotonic()
                osci_run(args.osci, ["apply", "--auto-approve", "t.json"], work, env)
                wall = time.monotonic() - started
                calls = calls_between(before, stats(sim))
                print(f"  {kind:24} wall {wall:6.1f} s, {sum(calls.values()):3} API calls: "
                      f"{json.dumps(dict(sorted(calls.items())))}")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
