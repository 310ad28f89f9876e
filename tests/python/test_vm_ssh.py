"""Simulated VMs are real machines in miniature: with the official SDK as the
only API client and the system OpenSSH client, create a keypair, launch a VM,
log in, run commands, and see the disk carry what was written into an image
and a VM launched from it."""

import importlib.util
import os
import shutil
import subprocess
import uuid

import pytest

from osci_testlib import REPO_ROOT, wait_image_state, wait_vm_state

_spec = importlib.util.spec_from_file_location(
    "launch_vm", os.path.join(REPO_ROOT, "examples", "launch-vm.py")
)
launch_vm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(launch_vm)

pytestmark = [
    pytest.mark.skipif(
        shutil.which("ssh") is None,
        reason="skipped: the OpenSSH client (`ssh`, Debian package openssh-client) is not installed",
    ),
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="skipped: simulated VMs need root (port 22 on loopback, chroot)",
    ),
]


def _ssh(key_file, host, command, timeout=30, user="outscale"):
    return subprocess.run(
        [
            "ssh", "-i", str(key_file),
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=5",
            "-o", "LogLevel=ERROR",
            f"{user}@{host}", command,
        ],
        capture_output=True, text=True, timeout=timeout,
    )


def _keypair(gw, tmp_path, name):
    kp = gw.CreateKeypair(KeypairName=name)["Keypair"]
    path = tmp_path / name
    path.write_text(kp["PrivateKey"])
    path.chmod(0o600)
    return path


def _group(gw, name, ssh):
    sg = gw.CreateSecurityGroup(SecurityGroupName=name, Description="osci ssh test")[
        "SecurityGroup"
    ]
    if ssh:
        gw.CreateSecurityGroupRule(
            SecurityGroupId=sg["SecurityGroupId"], Flow="Inbound", IpProtocol="tcp",
            FromPortRange=22, ToPortRange=22, IpRange="127.0.0.0/8",
        )
    return sg["SecurityGroupId"]


def _launch(gw, image_id, keypair, group):
    vm = gw.CreateVms(
        ImageId=image_id, VmType="tinav5.c1r1p2", KeypairName=keypair,
        SecurityGroupIds=[group], UserData="IyEvYmluL3NoCmVjaG8gaGVsbG8K",
    )["Vms"][0]
    return wait_vm_state(gw, vm["VmId"], "running")


def test_keypair_launch_ssh_and_image_carries_files(gw, tmp_path):
    run = uuid.uuid4().hex[:8]
    source = next(
        i for i in gw.ReadImages(Filters={"AccountAliases": ["Outscale"]})["Images"]
        if i["ImageName"].startswith("Ubuntu")
    )
    key = _keypair(gw, tmp_path, f"ssh-{run}")
    other_key = _keypair(gw, tmp_path, f"other-{run}")
    group = _group(gw, f"ssh-{run}", ssh=True)
    vm = _launch(gw, source["ImageId"], f"ssh-{run}", group)
    host = vm["PublicIp"]
    assert host.startswith("127."), vm

    out = _ssh(key, host, "cat /etc/os-release; id -u; cat /var/lib/cloud/instances/*/user-data.txt")
    assert out.returncode == 0, out.stderr
    assert source["ImageName"] in out.stdout
    assert "\n0\n" in out.stdout, out.stdout  # commands run as root
    assert "echo hello" in out.stdout  # the user data reached the VM

    out = _ssh(key, vm["PrivateIp"], "printf 'built by %s\\n' sdk > /etc/motd; exit 3")
    assert out.returncode == 3, out.stderr

    refused = _ssh(other_key, host, "true")
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr, refused.stderr
    # The right key, but for a user the VM does not have.
    stranger = _ssh(key, host, "true", user="nobody")
    assert stranger.returncode == 255
    assert "Permission denied" in stranger.stderr, stranger.stderr

    # The image of the stopped VM carries the file; a VM launched from it
    # (by the README's examples/launch-vm.py) shows it.
    gw.StopVms(VmIds=[vm["VmId"]])
    wait_vm_state(gw, vm["VmId"], "stopped")
    image = gw.CreateImage(VmId=vm["VmId"], ImageName=f"ssh-{run}")["Image"]
    wait_image_state(gw, image["ImageId"])
    second, second_key = launch_vm.launch(gw, f"ssh-{run}", str(tmp_path))
    out = _ssh(second_key, second["PublicIp"], "cat /etc/motd")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "built by sdk\n"

    # A started VM answers again, with its disk as it was.
    gw.StartVms(VmIds=[vm["VmId"]])
    wait_vm_state(gw, vm["VmId"], "running")
    out = _ssh(key, host, "cat /etc/motd")
    assert out.stdout == "built by sdk\n", out.stderr

    gw.DeleteVms(VmIds=[vm["VmId"], second["VmId"]])
    wait_vm_state(gw, vm["VmId"], "terminated")
    wait_vm_state(gw, second["VmId"], "terminated")


def test_security_group_without_port_22_refuses(gw, tmp_path):
    run = uuid.uuid4().hex[:8]
    source = gw.ReadImages(Filters={"AccountAliases": ["Outscale"]})["Images"][0]
    key = _keypair(gw, tmp_path, f"closed-{run}")
    group = _group(gw, f"closed-{run}", ssh=False)
    vm = _launch(gw, source["ImageId"], f"closed-{run}", group)
    out = _ssh(key, vm["PublicIp"], "true")
    assert out.returncode == 255
    assert "Permission denied" not in out.stderr, out.stderr
    # Opening port 22 lets the same client in.
    gw.CreateSecurityGroupRule(
        SecurityGroupId=group, Flow="Inbound", IpProtocol="tcp",
        FromPortRange=22, ToPortRange=22, IpRange="127.0.0.0/8",
    )
    gw.ReadVms(Filters={"VmIds": [vm["VmId"]]})
    out = _ssh(key, vm["PublicIp"], "echo open")
    assert out.stdout == "open\n", out.stderr
    gw.DeleteVms(VmIds=[vm["VmId"]])
