"""State files osci writes validate against schema/state.schema.json."""

import json
import os
import shutil
import subprocess

import pytest
from jsonschema import Draft7Validator

from osci_testlib import REPO_ROOT

SCHEMA = os.path.join(REPO_ROOT, "schema", "state.schema.json")


@pytest.fixture(scope="module")
def validator():
    with open(SCHEMA) as f:
        schema = json.load(f)
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def osci(sim_bin, cwd, *args):
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "OSCI_SIM_LATENCY_SCALE": "0"}
    return subprocess.run([sim_bin, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def errors(validator, document):
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_states_written_by_apply_and_destroy_match_the_schema(sim_bin, tmp_path, validator):
    with open(os.path.join(REPO_ROOT, "examples", "quickstart.json")) as f:
        template = json.load(f)
    template["builders"][0]["associate_public_ip_address"] = True
    (tmp_path / "t.json").write_text(json.dumps(template))
    # The quickstart's file provisioner uploads files/ beside the template.
    shutil.copytree(os.path.join(REPO_ROOT, "examples", "files"), tmp_path / "files")

    applied = osci(sim_bin, tmp_path, "apply", "--auto-approve", "t.json")
    assert applied.returncode == 0, applied.stderr
    state = json.loads((tmp_path / "state" / "t.json").read_text())
    backup = json.loads((tmp_path / "state" / "t.json.backup").read_text())
    assert {r["kind"] for r in state["resources"]} >= {"image", "snapshot", "tags"}
    # The backup is the version before the last write: mid-apply, with
    # ephemerals or pending entries in it.
    assert backup["serial"] == state["serial"] - 1
    assert any(r["ephemeral"] or r["status"] != "created" for r in backup["resources"]), backup
    assert errors(validator, state) == []
    assert errors(validator, backup) == []

    destroyed = osci(sim_bin, tmp_path, "destroy", "--auto-approve", "t.json")
    assert destroyed.returncode == 0, destroyed.stderr
    state = json.loads((tmp_path / "state" / "t.json").read_text())
    assert state["resources"] == []
    assert errors(validator, state) == []


def test_the_schema_rejects_what_osci_would_not_read(validator):
    good = {
        "format_version": 1,
        "lineage": "7dc86082-3d28-438b-b919-09219fd1a2bb",
        "serial": 3,
        "osci_version": "0.1.0",
        "resources": [
            {
                "address": "build.web.vm",
                "build": "web",
                "kind": "vm",
                "status": "pending",
                "ephemeral": True,
                "lookup": {"client_token": "osci-5f0c"},
                "attributes": {},
                "dependencies": [],
            }
        ],
    }
    assert errors(validator, good) == []
    created_without_id = json.loads(json.dumps(good))
    created_without_id["resources"][0]["status"] = "created"
    assert errors(validator, created_without_id) != []
    unknown_kind = json.loads(json.dumps(good))
    unknown_kind["resources"][0]["kind"] = "bucket"
    assert errors(validator, unknown_kind) != []
    extra_key = json.loads(json.dumps(good))
    extra_key["secret_key"] = "x"
    assert errors(validator, extra_key) != []
