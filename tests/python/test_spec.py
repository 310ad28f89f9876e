"""Every simulated operation, called for real with the official SDK, answers a
body that matches the official OpenAPI spec (tests/oapi/outscale.yaml).

One module-scoped scenario makes the calls in an order that gives each one the
resources it needs, recording every request and answer; the tests then check
the recorded answers per operation (so a failure names the operation), the
scenario's own outcome checks, error bodies, pagination and /_sim/stats.
"""

import json
import os
import traceback
import uuid

import osc_sdk_python
import pytest
import requests
import yaml

from osci_testlib import wait_for

OPERATIONS = """
CreateVms ReadVms ReadVmsState StartVms StopVms DeleteVms ReadAdminPassword
ReadConsoleOutput CreateImage ReadImages UpdateImage DeleteImage CreateSnapshot
ReadSnapshots UpdateSnapshot DeleteSnapshot CreateVolume ReadVolumes LinkVolume
UnlinkVolume DeleteVolume CreateKeypair ReadKeypairs DeleteKeypair
CreateSecurityGroup ReadSecurityGroups DeleteSecurityGroup CreateSecurityGroupRule
DeleteSecurityGroupRule CreateTags DeleteTags ReadTags CreatePublicIp ReadPublicIps
LinkPublicIp UnlinkPublicIp DeletePublicIp CreateNet ReadNets DeleteNet CreateSubnet
ReadSubnets DeleteSubnet ReadSubregions ReadRegions ReadAccounts
""".split()

SUBREGION = "eu-west-2a"


class RequestSpecViolation(Exception):
    """The test sent a request the spec does not allow."""


class CallFailed(Exception):
    pass


class Call:
    def __init__(self, who, op, params, status, body):
        self.who, self.op, self.params, self.status, self.body = who, op, params, status, body
        self.expected_error = None

    def __repr__(self):
        body = json.dumps(self.body)
        return (
            f"[{self.who}] {self.op} {json.dumps(self.params)} -> HTTP {self.status} "
            f"{body[:1500]}{'...' if len(body) > 1500 else ''}"
        )


class Scenario:
    def __init__(self, spec, gateways):
        self.spec = spec
        self.gateways = gateways  # who -> Gateway
        self.calls = []
        self.failures = []  # (block, message)
        self.ctx = {}

    def call(self, op, who="main", **params):
        call = self._send(op, who, params)
        if call.status != 200:
            raise CallFailed(repr(call))
        return call.body

    def refused(self, op, why, who="main", **params):
        """A call the API must refuse (dependency, conflict, state): 4xx."""
        call = self._send(op, who, params)
        call.expected_error = why
        if not 400 <= call.status < 500:
            raise AssertionError(f"expected a 4xx refusal ({why}), got {call!r}")
        return call

    def _send(self, op, who, params):
        problems = self.spec.request_errors(op, params)
        if problems:
            raise RequestSpecViolation(f"request for {op} violates the spec: {problems}")
        gw = self.gateways[who]
        try:
            body = getattr(gw, op)(**params)
            status = 200
        except requests.HTTPError as err:
            status = err.response.status_code
            try:
                body = err.response.json()
            except ValueError:
                body = {"_raw": err.response.text}
        call = Call(who, op, params, status, body)
        self.calls.append(call)
        return call

    def poll(self, op, key, filter_name, rid, done, what):
        def read():
            items = self.call(op, Filters={filter_name: [rid]})[key]
            return items[0] if len(items) == 1 else None

        return wait_for(read, lambda x: x is not None and done(x), what)

    def block(self, name, needs, fn):
        missing = [n for n in needs if n not in self.ctx]
        if missing:
            self.failures.append((name, f"not run: needs {missing} from an earlier block"))
            return
        try:
            fn(self.ctx)
        except (CallFailed, RequestSpecViolation) as err:
            self.failures.append((name, f"{type(err).__name__}: {err}"))
        except Exception as err:  # assertion on an outcome, SDK check, ...
            here = [f for f in traceback.extract_tb(err.__traceback__)
                    if f.filename == __file__ and f.name not in ("block", "poll", "read", "call")]
            line = f" (test_spec.py:{here[-1].lineno}: {here[-1].line})" if here else ""
            self.failures.append((name, f"{type(err).__name__}: {err}{line}"))


def _run_scenario(sc, sim, account2):
    run = uuid.uuid4().hex[:8]
    call = sc.call
    me = sim["account_id"]

    def lookups(ctx):
        regions = call("ReadRegions")["Regions"]
        assert sim["region"] in [r["RegionName"] for r in regions], regions
        subregions = call("ReadSubregions")["Subregions"]
        names = {s["SubregionName"] for s in subregions}
        assert {"eu-west-2a", "eu-west-2b", "eu-west-2c"} <= names, names
        one = call("ReadSubregions", Filters={"SubregionNames": ["eu-west-2b"]})["Subregions"]
        assert [s["SubregionName"] for s in one] == ["eu-west-2b"]
        accounts = call("ReadAccounts")["Accounts"]
        assert [a["AccountId"] for a in accounts] == [me]
        images = call("ReadImages", Filters={"AccountAliases": ["Outscale"]})["Images"]
        assert images, "no public image with alias Outscale"
        ctx["source_image"] = images[0]["ImageId"]

    def keypair(ctx):
        name = f"osci-spec-{run}"
        kp = call("CreateKeypair", KeypairName=name)["Keypair"]
        assert kp["KeypairName"] == name
        ctx["keypair"] = name
        sc.refused("CreateKeypair", "the name is taken", KeypairName=name)
        listed = call("ReadKeypairs", Filters={"KeypairNames": [name]})["Keypairs"]
        assert [k["KeypairName"] for k in listed] == [name]

    def security_group(ctx):
        sg = call(
            "CreateSecurityGroup", SecurityGroupName=f"osci-spec-{run}", Description="spec test"
        )["SecurityGroup"]
        sg_id = sg["SecurityGroupId"]
        ctx["sg"] = sg_id
        call("CreateSecurityGroupRule", SecurityGroupId=sg_id, Flow="Inbound",
             IpProtocol="tcp", FromPortRange=22, ToPortRange=22, IpRange="127.0.0.0/8")
        call("CreateSecurityGroupRule", SecurityGroupId=sg_id, Flow="Inbound",
             IpProtocol="tcp", FromPortRange=443, ToPortRange=443, IpRange="10.0.0.0/8")
        groups = call("ReadSecurityGroups", Filters={"SecurityGroupIds": [sg_id]})["SecurityGroups"]
        assert len(groups) == 1
        rules = {(r["IpProtocol"], r["FromPortRange"], r["ToPortRange"], tuple(r["IpRanges"]))
                 for r in groups[0]["InboundRules"]}
        assert rules == {("tcp", 22, 22, ("127.0.0.0/8",)), ("tcp", 443, 443, ("10.0.0.0/8",))}, rules

    def net(ctx):
        net_id = call("CreateNet", IpRange="10.0.0.0/16")["Net"]["NetId"]
        assert net_id.startswith("vpc-")
        ctx["net"] = net_id
        n = sc.poll("ReadNets", "Nets", "NetIds", net_id,
                    lambda n: n["State"] == "available", f"net {net_id} available")
        assert n["IpRange"] == "10.0.0.0/16"
        subnet = call("CreateSubnet", NetId=net_id, IpRange="10.0.1.0/24",
                      SubregionName=SUBREGION)["Subnet"]
        subnet_id = subnet["SubnetId"]
        assert subnet_id.startswith("subnet-")
        ctx["subnet"] = subnet_id
        sc.refused("CreateSubnet", "overlaps an existing subnet", NetId=net_id,
                   IpRange="10.0.1.0/25", SubregionName=SUBREGION)
        sc.refused("DeleteNet", "the Net still has a subnet", NetId=net_id)
        s = sc.poll("ReadSubnets", "Subnets", "SubnetIds", subnet_id,
                    lambda s: s["State"] == "available", f"subnet {subnet_id} available")
        assert (s["NetId"], s["SubregionName"], s["IpRange"]) == (net_id, SUBREGION, "10.0.1.0/24")

    def vm(ctx):
        params = {"ImageId": ctx["source_image"], "Placement": {"SubregionName": SUBREGION}}
        if "keypair" in ctx:
            params["KeypairName"] = ctx["keypair"]
        if "sg" in ctx:
            params["SecurityGroupIds"] = [ctx["sg"]]
        vms = call("CreateVms", **params)["Vms"]
        assert len(vms) == 1
        vm_id = vms[0]["VmId"]
        ctx["vm"] = vm_id
        v = sc.poll("ReadVms", "Vms", "VmIds", vm_id,
                    lambda v: v["State"] == "running", f"VM {vm_id} running")
        assert v["Placement"]["SubregionName"] == SUBREGION
        states = call("ReadVmsState", Filters={"VmIds": [vm_id]})["VmStates"]
        assert [(s["VmId"], s["VmState"]) for s in states] == [(vm_id, "running")]
        if "sg" in ctx:
            sc.refused("DeleteSecurityGroup", "a VM uses the group", SecurityGroupId=ctx["sg"])
        assert call("ReadConsoleOutput", VmId=vm_id)["VmId"] == vm_id
        assert call("ReadAdminPassword", VmId=vm_id)["VmId"] == vm_id

    def volume(ctx):
        vol = call("CreateVolume", SubregionName=SUBREGION, Size=1, VolumeType="standard")["Volume"]
        vol_id = vol["VolumeId"]
        assert vol_id.startswith("vol-") and vol["Size"] == 1
        ctx["volume"] = vol_id
        sc.poll("ReadVolumes", "Volumes", "VolumeIds", vol_id,
                lambda v: v["State"] == "available", f"volume {vol_id} available")
        call("LinkVolume", VolumeId=vol_id, VmId=ctx["vm"], DeviceName="/dev/xvdb")
        v = sc.poll("ReadVolumes", "Volumes", "VolumeIds", vol_id,
                    lambda v: v["State"] == "in-use"
                    and all(l["State"] == "attached" for l in v.get("LinkedVolumes", [])),
                    f"volume {vol_id} in-use/attached")
        assert [(l["VmId"], l["DeviceName"]) for l in v["LinkedVolumes"]] == [(ctx["vm"], "/dev/xvdb")]
        sc.refused("DeleteVolume", "the volume is linked to a VM", VolumeId=vol_id)
        sc.refused("LinkVolume", "the volume is already linked", VolumeId=vol_id,
                   VmId=ctx["vm"], DeviceName="/dev/xvdc")
        call("UnlinkVolume", VolumeId=vol_id)
        v = sc.poll("ReadVolumes", "Volumes", "VolumeIds", vol_id,
                    lambda v: v["State"] == "available", f"volume {vol_id} available again")
        assert v.get("LinkedVolumes", []) == []

    def snapshot(ctx):
        snap = call("CreateSnapshot", VolumeId=ctx["volume"], Description="spec test")["Snapshot"]
        snap_id = snap["SnapshotId"]
        assert snap_id.startswith("snap-") and snap["VolumeId"] == ctx["volume"]
        ctx["snapshot"] = snap_id
        s = sc.poll("ReadSnapshots", "Snapshots", "SnapshotIds", snap_id,
                    lambda s: s["State"] == "completed", f"snapshot {snap_id} completed")
        assert s["AccountId"] == me and s["VolumeSize"] == 1
        assert call("ReadSnapshots", who="other", Filters={"SnapshotIds": [snap_id]})["Snapshots"] == []
        upd = call("UpdateSnapshot", SnapshotId=snap_id,
                   PermissionsToCreateVolume={"Additions": {"AccountIds": [account2]}})["Snapshot"]
        assert upd["PermissionsToCreateVolume"]["AccountIds"] == [account2]
        seen = call("ReadSnapshots", who="other", Filters={"SnapshotIds": [snap_id]})["Snapshots"]
        assert [s["SnapshotId"] for s in seen] == [snap_id]

    def tags(ctx):
        ids = [ctx[k] for k in ("vm", "volume", "snapshot", "sg", "net", "subnet") if k in ctx]
        tag = {"Key": "osci-spec", "Value": run}
        call("CreateTags", ResourceIds=ids, Tags=[tag])
        found = call("ReadTags", Filters={"Keys": ["osci-spec"]})["Tags"]
        assert sorted(t["ResourceId"] for t in found) == sorted(ids), found
        assert all(t["Value"] == run for t in found)
        vols = call("ReadVolumes", Filters={"Tags": [f"osci-spec={run}"]})["Volumes"]
        assert [v["VolumeId"] for v in vols] == [ctx["volume"]]
        v = call("ReadVolumes", Filters={"VolumeIds": [ctx["volume"]]})["Volumes"][0]
        assert {"Key": "osci-spec", "Value": run} in v["Tags"]
        call("DeleteTags", ResourceIds=[ctx["volume"]], Tags=[tag])
        left = call("ReadTags", Filters={"ResourceIds": [ctx["volume"]]})["Tags"]
        assert left == [], left

    def public_ip(ctx):
        pip = call("CreatePublicIp")["PublicIp"]
        ip, pip_id = pip["PublicIp"], pip["PublicIpId"]
        assert pip_id.startswith("eipalloc-")
        listed = call("ReadPublicIps", Filters={"PublicIpIds": [pip_id]})["PublicIps"]
        assert [p["PublicIp"] for p in listed] == [ip] and not listed[0].get("VmId")
        call("LinkPublicIp", PublicIp=ip, VmId=ctx["vm"])
        listed = call("ReadPublicIps", Filters={"PublicIps": [ip]})["PublicIps"]
        assert listed[0].get("VmId") == ctx["vm"], listed
        v = call("ReadVms", Filters={"VmIds": [ctx["vm"]]})["Vms"][0]
        assert v.get("PublicIp") == ip, v.get("PublicIp")
        call("UnlinkPublicIp", PublicIp=ip)
        listed = call("ReadPublicIps", Filters={"PublicIps": [ip]})["PublicIps"]
        assert not listed[0].get("VmId"), listed
        call("DeletePublicIp", PublicIp=ip)
        assert call("ReadPublicIps", Filters={"PublicIpIds": [pip_id]})["PublicIps"] == []

    def lifecycle_and_image(ctx):
        vm_id = ctx["vm"]
        running = lambda v: v["State"] == "running"  # noqa: E731
        stopped = lambda v: v["State"] == "stopped"  # noqa: E731
        out = call("StopVms", VmIds=[vm_id])["Vms"]
        assert [o["VmId"] for o in out] == [vm_id]
        sc.poll("ReadVms", "Vms", "VmIds", vm_id, stopped, f"VM {vm_id} stopped")
        out = call("StartVms", VmIds=[vm_id])["Vms"]
        assert [(o["VmId"], o["PreviousState"]) for o in out] == [(vm_id, "stopped")]
        sc.poll("ReadVms", "Vms", "VmIds", vm_id, running, f"VM {vm_id} running again")
        call("StopVms", VmIds=[vm_id])
        sc.poll("ReadVms", "Vms", "VmIds", vm_id, stopped, f"VM {vm_id} stopped again")
        states = call("ReadVmsState", AllVms=True, Filters={"VmIds": [vm_id]})["VmStates"]
        assert [s["VmState"] for s in states] == ["stopped"]
        image = call("CreateImage", VmId=vm_id, ImageName=f"osci-spec-{run}",
                     Description="spec test")["Image"]
        image_id = image["ImageId"]
        ctx["image"] = image_id
        img = sc.poll("ReadImages", "Images", "ImageIds", image_id,
                      lambda i: i["State"] == "available", f"image {image_id} available")
        ctx["image_snapshots"] = [b["Bsu"]["SnapshotId"] for b in img["BlockDeviceMappings"] if "Bsu" in b]
        assert ctx["image_snapshots"]
        sc.refused("DeleteSnapshot", "the snapshot backs an image", SnapshotId=ctx["image_snapshots"][0])
        sc.refused("CreateImage", "the image name is taken", VmId=vm_id, ImageName=f"osci-spec-{run}")
        upd = call("UpdateImage", ImageId=image_id,
                   PermissionsToLaunch={"Additions": {"AccountIds": [account2]}})["Image"]
        assert upd["PermissionsToLaunch"]["AccountIds"] == [account2]
        seen = call("ReadImages", who="other", Filters={"ImageIds": [image_id]})["Images"]
        assert [i["ImageId"] for i in seen] == [image_id]

    def cleanup_vm(ctx):
        vm_id = ctx["vm"]
        out = call("DeleteVms", VmIds=[vm_id])["Vms"]
        assert [o["VmId"] for o in out] == [vm_id]
        # The spec: a terminated VM "may appear" in ReadVms for a while.
        wait_for(lambda: call("ReadVms", Filters={"VmIds": [vm_id]})["Vms"],
                 lambda vms: vms == [] or [v["State"] for v in vms] == ["terminated"],
                 f"VM {vm_id} terminated")

    def cleanup_image(ctx):
        call("DeleteImage", ImageId=ctx["image"])
        assert call("ReadImages", Filters={"ImageIds": [ctx["image"]]})["Images"] == []
        for snap_id in ctx["image_snapshots"]:
            call("DeleteSnapshot", SnapshotId=snap_id)

    def cleanup_snapshot(ctx):
        call("DeleteSnapshot", SnapshotId=ctx["snapshot"])
        assert call("ReadSnapshots", Filters={"SnapshotIds": [ctx["snapshot"]]})["Snapshots"] == []

    def cleanup_volume(ctx):
        call("DeleteVolume", VolumeId=ctx["volume"])
        wait_for(lambda: call("ReadVolumes", Filters={"VolumeIds": [ctx["volume"]]})["Volumes"],
                 lambda vols: vols == [], f"volume {ctx['volume']} gone")

    def cleanup_security_group(ctx):
        sg = call("DeleteSecurityGroupRule", SecurityGroupId=ctx["sg"], Flow="Inbound",
                  IpProtocol="tcp", FromPortRange=443, ToPortRange=443,
                  IpRange="10.0.0.0/8")["SecurityGroup"]
        assert [(r["FromPortRange"], r["IpRanges"]) for r in sg["InboundRules"]] == [(22, ["127.0.0.0/8"])]
        call("DeleteSecurityGroup", SecurityGroupId=ctx["sg"])
        assert call("ReadSecurityGroups", Filters={"SecurityGroupIds": [ctx["sg"]]})["SecurityGroups"] == []

    def cleanup_keypair(ctx):
        call("DeleteKeypair", KeypairName=ctx["keypair"])
        assert call("ReadKeypairs", Filters={"KeypairNames": [ctx["keypair"]]})["Keypairs"] == []

    def cleanup_net(ctx):
        call("DeleteSubnet", SubnetId=ctx["subnet"])
        wait_for(lambda: call("ReadSubnets", Filters={"SubnetIds": [ctx["subnet"]]})["Subnets"],
                 lambda s: s == [], f"subnet {ctx['subnet']} gone")
        call("DeleteNet", NetId=ctx["net"])
        wait_for(lambda: call("ReadNets", Filters={"NetIds": [ctx["net"]]})["Nets"],
                 lambda n: n == [], f"net {ctx['net']} gone")

    sc.block("lookups", [], lookups)
    sc.block("keypair", [], keypair)
    sc.block("security group", [], security_group)
    sc.block("net/subnet", [], net)
    sc.block("vm", ["source_image"], vm)
    sc.block("volume link/unlink", ["vm"], volume)
    sc.block("snapshot", ["volume"], snapshot)
    sc.block("tags", ["volume"], tags)
    sc.block("public ip", ["vm"], public_ip)
    sc.block("stop/start/image", ["vm"], lifecycle_and_image)
    sc.block("cleanup vm", ["vm"], cleanup_vm)
    sc.block("cleanup image", ["image", "image_snapshots"], cleanup_image)
    sc.block("cleanup snapshot", ["snapshot"], cleanup_snapshot)
    sc.block("cleanup volume", ["volume"], cleanup_volume)
    sc.block("cleanup security group", ["sg"], cleanup_security_group)
    sc.block("cleanup keypair", ["keypair"], cleanup_keypair)
    sc.block("cleanup net/subnet", ["net", "subnet"], cleanup_net)


@pytest.fixture(scope="module")
def scenario(sim, gw, second_account, spec):
    sc = Scenario(spec, {"main": gw, "other": second_account["gw"]})
    _run_scenario(sc, sim, second_account["account_id"])
    return sc


def _failures_text(sc):
    return "\n".join(f"- {name}: {msg}" for name, msg in sc.failures) or "(none)"


def test_operation_list_is_in_spec(spec):
    missing = [op for op in OPERATIONS if "/" + op not in spec.doc["paths"]]
    assert not missing


@pytest.mark.parametrize("op", OPERATIONS)
def test_response_matches_spec(scenario, spec, op):
    calls = [c for c in scenario.calls if c.op == op]
    ok = [c for c in calls if c.status == 200]
    if not ok:
        pytest.fail(
            f"{op}: no successful call to validate.\nCalls made: {calls or 'none'}\n"
            f"Scenario failures:\n{_failures_text(scenario)}",
            pytrace=False,
        )
    # Distinct violations, each with the first answer that shows it.
    violations = {}
    for c in ok:
        errs = spec.response_errors(op, c.body)
        if not (c.body.get("ResponseContext") or {}).get("RequestId"):
            errs.append("ResponseContext.RequestId missing or empty")
        for e in errs:
            violations.setdefault(e, (c, 0))
            violations[e] = (violations[e][0], violations[e][1] + 1)
    if violations:
        lines = [f"{op}: {len(violations)} distinct spec violation(s) in {len(ok)} answer(s):"]
        for e, (c, n) in violations.items():
            lines.append(f"- {e}  [{n} answer(s)]\n    e.g. {c!r}")
        pytest.fail("\n".join(lines), pytrace=False)


def test_refusals_are_error_responses(scenario, spec):
    """The scenario's refused calls (dependencies, conflicts) answer an
    ErrorResponse body with a known code/type pairing."""
    refused = [c for c in scenario.calls if c.expected_error]
    assert refused, "the scenario made no refused call: " + _failures_text(scenario)
    types = _gateway_error_types()
    problems = []
    for c in refused:
        errs = spec.errors("#/components/schemas/ErrorResponse", c.body)
        errors = c.body.get("Errors") or []
        if not errors:
            errs.append("Errors is empty")
        for e in errors:
            code = e.get("Code")
            if code in types and e.get("Type") != types[code]:
                errs.append(f"Code {code} has Type {e.get('Type')!r}, the SDK's table says {types[code]!r}")
        if errs:
            problems.append(f"- {c.op} ({c.expected_error}): {c!r}\n    " + "\n    ".join(errs))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_scenario_outcomes(scenario):
    """The scenario's own checks (states, links, filters, sharing) all held."""
    if scenario.failures:
        pytest.fail("scenario steps failed:\n" + _failures_text(scenario), pytrace=False)


def _gateway_error_types():
    """Code -> Type, from the table the official SDK ships."""
    path = os.path.join(os.path.dirname(osc_sdk_python.__file__), "resources", "gateway_errors.yaml")
    with open(path) as f:
        return {str(k): v["Type"] for k, v in yaml.safe_load(f).items()}


# (operation, params, expected HTTP status, expected code) for unknown resources
# (codes and types from the SDK's gateway_errors.yaml; status per oapi.md section 5).
ERROR_CASES = [
    ("DeleteVolume", {"VolumeId": "vol-12345678"}, 400, "5064"),
    ("LinkVolume", {"VolumeId": "vol-12345678", "VmId": "i-12345678", "DeviceName": "/dev/xvdb"}, 400, None),
    ("DeleteSnapshot", {"SnapshotId": "snap-12345678"}, 400, "5054"),
    ("DeleteImage", {"ImageId": "ami-12345678"}, 400, "5023"),
    ("StopVms", {"VmIds": ["i-12345678"]}, 400, "5063"),
    ("ReadConsoleOutput", {"VmId": "i-12345678"}, 400, "5063"),
    ("DeleteSecurityGroup", {"SecurityGroupId": "sg-12345678"}, 400, "5020"),
    ("DeleteSubnet", {"SubnetId": "subnet-12345678"}, 400, "5057"),
    ("DeleteNet", {"NetId": "vpc-12345678"}, 400, "5065"),
    ("CreateVms", {"ImageId": "ami-12345678"}, 400, "5023"),
]


@pytest.mark.parametrize("op,params,status,code", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_response_matches_spec(sim, gw, spec, op, params, status, code):
    assert not spec.request_errors(op, params)
    try:
        body = getattr(gw, op)(**params)
    except requests.HTTPError as err:
        resp = err.response
    else:
        pytest.fail(f"{op} {params} succeeded: {body}", pytrace=False)
    text = resp.text
    try:
        body = resp.json()
    except ValueError:
        pytest.fail(f"{op}: error body is not JSON: HTTP {resp.status_code} {text!r}", pytrace=False)
    where = f"{op} {json.dumps(params)} -> HTTP {resp.status_code} {text}"
    problems = []
    if str(resp.status_code) not in spec.declared_statuses(op):
        problems.append(f"status {resp.status_code} not declared for {op} in the spec")
    if resp.status_code != status:
        problems.append(f"status {resp.status_code}, expected {status}")
    ref = spec.response_ref(op, str(resp.status_code)) if str(resp.status_code) in spec.declared_statuses(op) \
        else "#/components/schemas/ErrorResponse"
    problems += spec.errors(ref, body)
    errors = body.get("Errors") or []
    if not errors:
        problems.append("Errors is empty")
    types = _gateway_error_types()
    for e in errors:
        c = e.get("Code")
        if not (isinstance(c, str) and c.isdigit()):
            problems.append(f"Code {c!r} is not a string of digits")
        elif c in types and e.get("Type") != types[c]:
            problems.append(f"Code {c} has Type {e.get('Type')!r}, the SDK's table says {types[c]!r}")
    if code is not None and [e.get("Code") for e in errors][:1] != [code]:
        problems.append(f"first error code {[e.get('Code') for e in errors][:1]}, expected {code}")
    if not (body.get("ResponseContext") or {}).get("RequestId"):
        problems.append("ResponseContext.RequestId missing")
    if problems:
        pytest.fail(where + "\n" + "\n".join(problems), pytrace=False)


def test_duplicate_keypair_is_409_error_response(sim, gw, spec):
    name = f"osci-dup-{uuid.uuid4().hex[:8]}"
    gw.CreateKeypair(KeypairName=name)
    try:
        try:
            gw.CreateKeypair(KeypairName=name)
        except requests.HTTPError as err:
            resp = err.response
        else:
            pytest.fail("second CreateKeypair with the same name succeeded", pytrace=False)
        assert resp.status_code == 409, resp.text
        assert spec.response_errors("CreateKeypair", resp.json(), "409") == []
    finally:
        gw.DeleteKeypair(KeypairName=name)


def test_pagination_matches_spec(sim, gw, spec):
    full = gw.ReadImages(Filters={"AccountAliases": ["Outscale"]})["Images"]
    if len(full) < 2:
        pytest.skip("fewer than 2 public images: nothing to page")
    seen, token, pages = [], None, 0
    while True:
        params = {"Filters": {"AccountAliases": ["Outscale"]}, "ResultsPerPage": 1}
        if token:
            params["NextPageToken"] = token
        page = gw.ReadImages(**params)
        assert spec.response_errors("ReadImages", page) == []
        assert len(page["Images"]) <= 1
        seen += [i["ImageId"] for i in page["Images"]]
        pages += 1
        token = page.get("NextPageToken")
        if not token:
            break
        assert pages <= len(full) + 1, "pagination does not end"
    assert sorted(seen) == sorted(i["ImageId"] for i in full)


def test_sim_stats_count_the_calls(sim, scenario):
    resp = requests.get(sim["base"] + "/_sim/stats", timeout=30)
    assert resp.status_code == 200, resp.text
    stats = resp.json()
    assert isinstance(stats.get("calls"), dict), stats
    made = {}
    for c in scenario.calls:
        made[c.op] = made.get(c.op, 0) + 1
    short = {op: (stats["calls"].get(op, 0), n) for op, n in made.items() if stats["calls"].get(op, 0) < n}
    assert not short, f"/_sim/stats counts below the calls made (stats, made): {short}"

