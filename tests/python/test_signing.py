"""Request signing as the simulator checks it (reference/oapi.md section 2.1),
with an independent signer and plain `requests` (no SDK): both SDK flavours
(OSC4 and AWS4) are accepted, a wrong signature is HTTP 401 code "1".

Every test that sends a bad signature does it on an account of its own, so a
brute-force lock-out of that key cannot touch the other tests."""

import datetime
import json

import pytest
import requests

from osci_testlib import raw_call, sign_request

AK = "AKIDEXAMPLE0000000000"
SK = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY00"


@pytest.mark.parametrize(
    "body,signature",
    [
        (b"{}", "74884cea25d0151ae1233549caf991b9a611bc366d237f0704c62a2d48729fe2"),
        (
            b'{"Filters":{"VmIds":["i-12345678"]}}',
            "bf526d059a4544ca85f7d5b285bca8d4ab8b7ad67a88c3fd52029ee83a3f5404",
        ),
    ],
)
def test_test_signer_matches_reference_vectors(body, signature):
    headers = sign_request(
        access_key=AK, secret_key=SK, region="eu-west-2",
        url="https://api.eu-west-2.outscale.com/api/v1/ReadVms", body=body,
        now=datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc),
    )
    assert headers["X-Osc-Date"] == "20250101T120000Z"
    assert headers["Authorization"] == (
        f"OSC4-HMAC-SHA256 Credential={AK}/20250101/eu-west-2/api/osc4_request, "
        f"SignedHeaders=content-type;host;x-osc-date, Signature={signature}"
    )


def _assert_ok(resp, spec, account_id):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body = resp.json()
    assert spec.response_errors("ReadAccounts", body) == []
    assert [a["AccountId"] for a in body["Accounts"]] == [account_id]


def _assert_auth_failure(resp, spec):
    assert resp.status_code == 401, (resp.status_code, resp.text)
    body = resp.json()
    assert spec.errors("#/components/schemas/ErrorResponse", body) == [], body
    assert [e["Code"] for e in body["Errors"]] == ["1"], body
    return body


@pytest.mark.parametrize(
    "flavour,service",
    [("OSC4", "api"), ("AWS4", "oapi"), ("AWS4", "api")],
    ids=["OSC4-api (python SDK, curl)", "AWS4-oapi (rust SDK, go v2)", "AWS4-api (go v3)"],
)
def test_signature_flavours_accepted(sim, spec, flavour, service):
    resp = raw_call(sim, "ReadAccounts", {}, flavour=flavour, service=service)
    _assert_ok(resp, spec, sim["account_id"])


def test_host_signed_with_and_without_port(sim, spec):
    # Host as sent (127.0.0.1:PORT), and without the port as the Python SDK signs it.
    _assert_ok(raw_call(sim, "ReadAccounts", {}), spec, sim["account_id"])
    url = sim["endpoint"] + "/ReadAccounts"
    body = b"{}"
    headers = sign_request(
        access_key=sim["access_key"], secret_key=sim["secret_key"], region=sim["region"],
        url=url, body=body, host="127.0.0.1",
    )
    del headers["Host"]  # let requests send host:port
    _assert_ok(requests.post(url, data=body, headers=headers, timeout=30), spec, sim["account_id"])


def test_tampered_body_is_rejected(sim, spec, new_account):
    acct = new_account()
    url = acct["endpoint"] + "/ReadVms"
    headers = sign_request(
        access_key=acct["access_key"], secret_key=acct["secret_key"], region=acct["region"],
        url=url, body=b"{}",
    )
    resp = requests.post(url, data=json.dumps({"Filters": {"VmIds": ["i-12345678"]}}),
                         headers=headers, timeout=30)
    _assert_auth_failure(resp, spec)


def test_stale_date_is_rejected(sim, spec, new_account):
    acct = new_account()
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    resp = raw_call(acct, "ReadAccounts", {}, now=old)
    _assert_auth_failure(resp, spec)


def test_unsigned_request_is_rejected(sim, spec):
    resp = requests.post(sim["endpoint"] + "/ReadVms", data=b"{}",
                         headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 401, (resp.status_code, resp.text)
    assert spec.errors("#/components/schemas/ErrorResponse", resp.json()) == []


def test_read_regions_needs_no_signature(sim, spec):
    # `security: []` for ReadRegions in the spec.
    resp = requests.post(sim["endpoint"] + "/ReadRegions", data=b"{}",
                         headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body = resp.json()
    assert spec.response_errors("ReadRegions", body) == []
    assert sim["region"] in [r["RegionName"] for r in body["Regions"]]
