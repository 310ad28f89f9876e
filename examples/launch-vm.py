#!/usr/bin/env python3
"""Launch a VM from an OMI of the simulator and print how to log into it.

The simulator must be serving (`osci sim serve`, which prints one JSON line
with its endpoint and keys); this uses the official OUTSCALE SDK only:

    cargo run -q -- sim serve > state/sim.json &
    .venv/bin/python examples/launch-vm.py state/sim.json quickstart-1.0.0

It creates a keypair (private key in state/<name>.pem), a security group
open on port 22 from loopback, and a VM from the OMI named on the command
line, then prints the `ssh` command that logs into it.
"""

import json
import os
import sys
import time
import uuid

from osc_sdk_python import Gateway
from osc_sdk_python.credentials import Endpoint


def gateway(ready):
    """An SDK gateway from the simulator's ready line."""
    return Gateway(
        access_key=ready["access_key"],
        secret_key=ready["secret_key"],
        region=ready["region"],
        endpoints=Endpoint(api=ready["endpoint"]),
    )


def launch(gw, image_name, key_dir):
    """Launches a VM from the account's OMI `image_name`; answers the VM (as
    ReadVms shows it, running) and the path of its private key."""
    images = gw.ReadImages(Filters={"ImageNames": [image_name]})["Images"]
    if not images:
        sys.exit(f"no OMI named {image_name}: run `osci apply` first")
    name = f"login-{uuid.uuid4().hex[:8]}"
    keypair = gw.CreateKeypair(KeypairName=name)["Keypair"]
    key_file = os.path.join(key_dir, f"{name}.pem")
    with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(keypair["PrivateKey"])
    group = gw.CreateSecurityGroup(SecurityGroupName=name, Description="ssh from this machine")
    group_id = group["SecurityGroup"]["SecurityGroupId"]
    gw.CreateSecurityGroupRule(
        SecurityGroupId=group_id, Flow="Inbound", IpProtocol="tcp",
        FromPortRange=22, ToPortRange=22, IpRange="127.0.0.0/8",
    )
    vm = gw.CreateVms(
        ImageId=images[0]["ImageId"], KeypairName=name, SecurityGroupIds=[group_id]
    )["Vms"][0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        vm = gw.ReadVms(Filters={"VmIds": [vm["VmId"]]})["Vms"][0]
        if vm["State"] == "running":
            return vm, key_file
        time.sleep(0.5)
    sys.exit(f"{vm['VmId']} did not start within 2 minutes")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        ready = json.loads(f.readline())
    vm, key_file = launch(gateway(ready), sys.argv[2], os.path.dirname(sys.argv[1]) or ".")
    print(f"{vm['VmId']} is running; log in with:")
    print(f"  ssh -i {key_file} -o StrictHostKeyChecking=no outscale@{vm['PublicIp']}")


if __name__ == "__main__":
    main()
