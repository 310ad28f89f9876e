"""Helpers shared by the Python tests of the osci simulator.

- make_gateway(): an official osc-sdk-python Gateway pointed at the simulator.
- api_error(): run an SDK call that must fail, return (HTTP status, JSON body).
- wait_for(): poll with a deadline.
- sign_request(): an independent OSC4/AWS4 signer (reference/oapi.md section 2.1),
  used only where a test must control the signature itself.
- Spec: the OpenAPI document turned into a JSON Schema registry.
"""

import datetime
import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.parse

import requests
import yaml
from jsonschema import Draft7Validator, FormatChecker
from osc_sdk_python import Gateway
from osc_sdk_python.credentials import Endpoint
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Deadline of one wait, in seconds. The simulator runs with --latency-scale 0, so
# every transition is due at the next read; the margin only covers slow machines.
WAIT_TIMEOUT = float(os.environ.get("OSCI_TEST_WAIT_TIMEOUT", "15"))
POLL_INTERVAL = 0.1


# --------------------------------------------------------------------------- SDK


class _Gateway(Gateway):
    """The official Gateway, with its parse of the bundled spec (several
    seconds with ruamel) done once per process instead of once per Gateway."""

    _parsed = None

    def _load_gateway_structure(self, spec):
        cls = type(self)
        if cls._parsed is None:
            super()._load_gateway_structure(spec)
            cls._parsed = (self.gateway_structure, self.api_version, self.endpoint_api_version)
        self.gateway_structure, self.api_version, self.endpoint_api_version = cls._parsed


def make_gateway(endpoint, region, access_key, secret_key):
    """An official SDK Gateway talking to `endpoint` (full URL with /api/v1).

    The SDK takes the endpoint as `endpoints=Endpoint(api=URL)` (a dict is not
    accepted: Profile.merge reads `endpoints.__dict__`). It signs OSC4 with the
    URL's host *without* the port. Its client-side limiter (5 requests/s) and
    its retries (3, with 1-30 s back-off on 5xx/429) are turned off so that a
    simulator failure shows at once.
    """
    return _Gateway(
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        endpoints=Endpoint(api=endpoint),
        limiter_max_requests=1_000_000,
        max_retries=0,
    )


def api_error(func, **params):
    """Call an SDK operation that must fail; return (status, parsed JSON body).

    The SDK raises requests.HTTPError (message like "Client Error --> status =
    400, code = 5063, ...") with the raw `response` attached.
    """
    try:
        result = func(**params)
    except requests.HTTPError as err:
        resp = err.response
        assert resp is not None, f"HTTPError without response: {err}"
        try:
            body = resp.json()
        except ValueError:
            body = {"_raw": resp.text}
        return resp.status_code, body
    raise AssertionError(f"call with {params!r} succeeded but must fail: {result!r}")


def error_codes(body):
    return [e.get("Code") for e in body.get("Errors", [])]


def wait_for(read, done, what, timeout=None):
    """Call read() every 0.1 s until done(value) is true; return that value."""
    deadline = time.monotonic() + (timeout or WAIT_TIMEOUT)
    last = None
    while True:
        last = read()
        if done(last):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout or WAIT_TIMEOUT}s waiting for {what}; last read: "
                f"{json.dumps(last, indent=1)[:2000]}"
            )
        time.sleep(POLL_INTERVAL)


def read_one(gw, op, key, filter_name, resource_id):
    """ReadXxx filtered on one id; the single item or None."""
    items = getattr(gw, op)(Filters={filter_name: [resource_id]})[key]
    assert len(items) <= 1, f"{op} {filter_name}=[{resource_id}] gave {len(items)} items"
    return items[0] if items else None


def wait_vm_state(gw, vm_id, state):
    return wait_for(
        lambda: read_one(gw, "ReadVms", "Vms", "VmIds", vm_id),
        lambda vm: vm is not None and vm["State"] == state,
        f"VM {vm_id} to be {state}",
    )


def wait_image_state(gw, image_id, state="available"):
    return wait_for(
        lambda: read_one(gw, "ReadImages", "Images", "ImageIds", image_id),
        lambda img: img is not None and img["State"] == state,
        f"image {image_id} to be {state}",
    )


def wait_snapshot_state(gw, snapshot_id, state="completed"):
    return wait_for(
        lambda: read_one(gw, "ReadSnapshots", "Snapshots", "SnapshotIds", snapshot_id),
        lambda snap: snap is not None and snap["State"] == state,
        f"snapshot {snapshot_id} to be {state}",
    )


def wait_volume_state(gw, volume_id, state):
    return wait_for(
        lambda: read_one(gw, "ReadVolumes", "Volumes", "VolumeIds", volume_id),
        lambda vol: vol is not None and vol["State"] == state,
        f"volume {volume_id} to be {state}",
    )


def sim_base(endpoint):
    """http://127.0.0.1:PORT from http://127.0.0.1:PORT/api/v1."""
    parts = urllib.parse.urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


# ------------------------------------------------------------------ raw signing


def sign_request(
    *,
    access_key,
    secret_key,
    region,
    url,
    body,
    flavour="OSC4",
    service="api",
    host=None,
    content_type="application/json; charset=utf-8",
    now=None,
):
    """Headers for a POST of `body` (bytes) to `url`, signed as in oapi.md 2.1.

    flavour "OSC4": OSC4-HMAC-SHA256, X-Osc-Date, osc4_request.
    flavour "AWS4": AWS4-HMAC-SHA256, X-Amz-Date, aws4_request.
    `host` is the Host value to sign (default: the URL's host:port as sent).
    """
    parts = urllib.parse.urlsplit(url)
    host = host if host is not None else parts.netloc
    now = now or datetime.datetime.now(datetime.timezone.utc)
    date_iso = now.strftime("%Y%m%dT%H%M%SZ")
    date = date_iso[:8]
    if flavour == "OSC4":
        algorithm, date_header, terminator, prefix = (
            "OSC4-HMAC-SHA256", "x-osc-date", "osc4_request", "OSC4")
    elif flavour == "AWS4":
        algorithm, date_header, terminator, prefix = (
            "AWS4-HMAC-SHA256", "x-amz-date", "aws4_request", "AWS4")
    else:
        raise ValueError(flavour)
    signed_headers = f"content-type;host;{date_header}"
    canonical_request = "\n".join([
        "POST",
        parts.path or "/",
        "",
        f"content-type:{content_type}\nhost:{host}\n{date_header}:{date_iso}\n",
        signed_headers,
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join([
        algorithm, date_iso, scope,
        hashlib.sha256(canonical_request.encode()).hexdigest(),
    ])

    def h(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = h((prefix + secret_key).encode(), date)
    key = h(key, region)
    key = h(key, service)
    key = h(key, terminator)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "Host": host,
        date_header.title(): date_iso,
        "Authorization": (
            f"{algorithm} Credential={access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        ),
    }


def raw_call(sim, operation, payload, **sign_kwargs):
    """POST a signed request with `requests` (no SDK); return the Response."""
    url = sim["endpoint"].rstrip("/") + "/" + operation
    body = json.dumps(payload).encode()
    creds = {
        "access_key": sim["access_key"],
        "secret_key": sim["secret_key"],
        "region": sim["region"],
    }
    creds.update(sign_kwargs)
    headers = sign_request(url=url, body=body, **creds)
    return requests.post(url, data=body, headers=headers, timeout=30)


# ---------------------------------------------------------------- osci itself


def run_osci(binary, cwd, *args):
    """osci in `cwd`, with nothing of this machine's settings, against an
    in-process simulator with instant transitions."""
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "OSCI_SIM_LATENCY_SCALE": "0"}
    return subprocess.run([binary, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def schema_validator(name):
    """The validator of schema/NAME, itself checked against its metaschema."""
    with open(os.path.join(REPO_ROOT, "schema", name)) as f:
        schema = json.load(f)
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def schema_errors(validator, document):
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


# ------------------------------------------------------------------------ spec


def spec_path():
    path = os.environ.get("OSCI_SPEC", "tests/oapi/outscale.yaml")
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return os.path.normpath(path)


def _openapi_to_jsonschema(node):
    """OpenAPI 3.0 schema objects -> JSON Schema draft 7: `nullable: true`
    becomes a type union with "null". Other 3.0 keywords used by this spec
    (`example`) are ignored by jsonschema."""
    if isinstance(node, dict):
        out = {k: _openapi_to_jsonschema(v) for k, v in node.items()}
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    return node


_format_checker = FormatChecker()


@_format_checker.checks("date-time", raises=ValueError)
def _is_date_time(value):
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        raise ValueError(f"{value!r} has no time part")
    datetime.datetime.fromisoformat(value.replace("z", "Z"))
    return True


@_format_checker.checks("date", raises=ValueError)
def _is_date(value):
    if not isinstance(value, str):
        return True
    datetime.date.fromisoformat(value)
    return True


class Spec:
    URI = "urn:osc:oapi"

    def __init__(self, path=None):
        self.path = path or spec_path()
        with open(self.path) as f:
            self.doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        self.converted = _openapi_to_jsonschema(self.doc)
        self.registry = Registry().with_resource(
            self.URI, Resource.from_contents(self.converted, default_specification=DRAFT7)
        )
        self._validators = {}

    def response_ref(self, operation, status="200"):
        responses = self.doc["paths"]["/" + operation]["post"]["responses"]
        return responses[str(status)]["content"]["application/json"]["schema"]["$ref"]

    def declared_statuses(self, operation):
        return set(self.doc["paths"]["/" + operation]["post"]["responses"])

    def validator(self, ref):
        if ref not in self._validators:
            self._validators[ref] = Draft7Validator(
                {"$ref": self.URI + ref},
                registry=self.registry,
                format_checker=_format_checker,
            )
        return self._validators[ref]

    def errors(self, ref, instance):
        """Human-readable schema violations of `instance` against `ref`."""
        out = []
        for err in sorted(self.validator(ref).iter_errors(instance), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in err.absolute_path) or "<root>"
            schema_at = "/".join(str(p) for p in err.absolute_schema_path)
            out.append(f"at {where}: {err.message} (schema: {schema_at})")
        return out

    def response_errors(self, operation, instance, status="200"):
        return self.errors(self.response_ref(operation, status), instance)

    def request_errors(self, operation, instance):
        return self.errors(f"#/components/schemas/{operation}Request", instance)
