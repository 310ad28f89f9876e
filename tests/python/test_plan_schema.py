"""Plans osci prints with --json validate against schema/plan.schema.json,
and carry the graph: every edge joins two of the plan's nodes."""

import json
import os
import shutil

import pytest

from osci_testlib import REPO_ROOT, run_osci as osci, schema_errors as errors, schema_validator


@pytest.fixture(scope="module")
def validator():
    return schema_validator("plan.schema.json")


def quickstart(tmp_path, **changes):
    with open(os.path.join(REPO_ROOT, "examples", "quickstart.json")) as f:
        template = json.load(f)
    template["builders"][0].update(changes)
    (tmp_path / "t.json").write_text(json.dumps(template))
    shutil.copytree(os.path.join(REPO_ROOT, "examples", "files"), tmp_path / "files")


def plan(sim_bin, cwd):
    out = osci(sim_bin, cwd, "plan", "--json", "t.json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_plans_match_the_schema_and_carry_their_graph(sim_bin, tmp_path, validator):
    quickstart(tmp_path, communicator="none", associate_public_ip_address=True)
    (tmp_path / "t.json").write_text(
        json.dumps({**json.loads((tmp_path / "t.json").read_text()), "provisioners": []}))
    document = plan(sim_bin, tmp_path)
    assert errors(validator, document) == []
    ids = {n["id"] for n in document["nodes"]}
    for before, after in document["edges"]:
        assert before in ids and after in ids, (before, after)
    actions = {n["id"]: n["action"] for n in document["nodes"]}
    assert actions["build.quickstart.vm"] == "create"
    assert actions["build.quickstart.vm (destroy)"] == "destroy"
    assert actions["build.quickstart.source"] == "read"
    assert ["build.quickstart.vm", "build.quickstart.vm (destroy)"] in document["edges"]
    assert ["build.quickstart.security_group", "build.quickstart.vm"] in document["edges"]

    # Applied: nothing to do, the same graph with no-op nodes.
    applied = osci(sim_bin, tmp_path, "apply", "--auto-approve", "t.json")
    assert applied.returncode == 0, applied.stderr
    again = plan(sim_bin, tmp_path)
    assert errors(validator, again) == []
    assert again["resource_changes"] == []
    assert {n["action"] for n in again["nodes"]} <= {"no-op", "read"}


def test_the_schema_rejects_what_osci_does_not_print(validator):
    good = {
        "format_version": "1.0", "lineage": None, "serial": 0, "builds": [],
        "resource_changes": [], "nodes": [], "edges": [],
        "summary": {"create": 0, "replace": 0, "update": 0, "destroy": 0},
    }
    assert errors(validator, good) == []
    bad_action = json.loads(json.dumps(good))
    bad_action["nodes"] = [{"id": "a", "address": "a", "build": "b", "kind": "vm",
                            "action": "explode", "ephemeral": True}]
    assert errors(validator, bad_action) != []
    bad_edge = json.loads(json.dumps(good))
    bad_edge["edges"] = [["a"]]
    assert errors(validator, bad_edge) != []
