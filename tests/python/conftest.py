"""Fixtures: a running `osci sim serve` and official-SDK gateways on it.

Environment:
  OSCI_BIN                  simulator binary (default /work/main/target/debug/osci,
                            i.e. <repo>/target/debug/osci)
  OSCI_SIM_START_TIMEOUT    seconds to wait for the ready line (default 60)
  OSCI_SIM_LATENCY_SCALE    --latency-scale (default 0: instant transitions)
  OSCI_SPEC                 OpenAPI spec (default tests/oapi/outscale.yaml
                            relative to the repo root)
"""

import json
import os
import re
import selectors
import signal
import subprocess
import threading
import time

import pytest
import requests

from osci_testlib import REPO_ROOT, Spec, make_gateway, sim_base

DEFAULT_BIN = os.path.join(REPO_ROOT, "target", "debug", "osci")
START_TIMEOUT = float(os.environ.get("OSCI_SIM_START_TIMEOUT", "60"))
STOP_TIMEOUT = 10.0


@pytest.fixture(scope="session", autouse=True)
def _isolated_osc_env():
    """The SDK reads OSC_* variables and ~/.osc/config.json before its
    constructor arguments; a stray OSC_LOGIN/OSC_PASSWORD would even switch it
    to Basic auth. Drop them for the test session."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("OSC_")}
    for k in saved:
        del os.environ[k]
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def sim_bin():
    path = os.environ.get("OSCI_BIN", DEFAULT_BIN)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"simulator binary not found or not executable: {path} "
            "(build it first with `cargo build`, or set OSCI_BIN)",
            pytrace=False,
        )
    return path


def _tail(path, limit=4000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return "<no stderr>"


def _read_ready_line(proc, stderr_path):
    """First stdout line of the simulator, within START_TIMEOUT."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no ready line within {START_TIMEOUT}s")
            if not sel.select(timeout=min(left, 0.5)):
                if proc.poll() is not None:
                    raise RuntimeError(f"simulator exited with status {proc.returncode}")
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                proc.wait(timeout=5)
                raise RuntimeError(
                    f"simulator closed stdout (exit status {proc.returncode}) before the ready line"
                )
            buf += chunk
    except Exception as err:
        failure = str(err)
    else:
        failure = None
    finally:
        sel.close()
    if failure:
        _stop(proc)
        pytest.fail(
            f"`osci sim serve` did not start: {failure}; stdout so far: {buf!r}\n"
            f"stderr:\n{_tail(stderr_path)}",
            pytrace=False,
        )
    line, _, rest = buf.partition(b"\n")
    return line.decode(), rest


def _drain(stream):
    """Keep reading stdout so the simulator never blocks on a full pipe."""
    try:
        while os.read(stream.fileno(), 65536):
            pass
    except OSError:
        pass


def _stop(proc):
    """SIGTERM by pid, wait; SIGKILL if it does not exit. Returns how it ended."""
    if proc.poll() is not None:
        return f"already exited ({proc.returncode})"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
        return f"exited ({proc.returncode}) on SIGTERM"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)
        return f"ignored SIGTERM for {STOP_TIMEOUT}s, killed"


@pytest.fixture(scope="module")
def sim(sim_bin, tmp_path_factory):
    """A fresh simulator per test module: yields its ready-line JSON (dict with
    endpoint, region, account_id, access_key, secret_key) plus `base`
    (http://127.0.0.1:PORT) and `proc`."""
    data = tmp_path_factory.mktemp("sim-data")
    stderr_path = str(data) + ".stderr"
    scale = os.environ.get("OSCI_SIM_LATENCY_SCALE", "0")
    cmd = [
        sim_bin, "sim", "serve",
        "--listen", "127.0.0.1:0",
        "--data", str(data),
        "--latency-scale", scale,
    ]
    with open(stderr_path, "wb") as err_file:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err_file
        )
    line, _rest = _read_ready_line(proc, stderr_path)
    try:
        info = json.loads(line)
    except ValueError:
        _stop(proc)
        pytest.fail(f"ready line is not JSON: {line!r}", pytrace=False)
    missing = {"endpoint", "region", "account_id", "access_key", "secret_key"} - set(info)
    if missing:
        _stop(proc)
        pytest.fail(f"ready line lacks {sorted(missing)}: {line!r}", pytrace=False)
    drainer = threading.Thread(target=_drain, args=(proc.stdout,), daemon=True)
    drainer.start()

    info = dict(info, base=sim_base(info["endpoint"]), proc=proc, stderr_path=stderr_path)
    yield info

    how = _stop(proc)
    drainer.join(timeout=2)
    proc.stdout.close()
    if "killed" in how:
        pytest.fail(f"simulator {how}; stderr:\n{_tail(stderr_path)}", pytrace=False)


@pytest.fixture(scope="module")
def gw(sim):
    """Official SDK Gateway for the simulator's default account."""
    return make_gateway(sim["endpoint"], sim["region"], sim["access_key"], sim["secret_key"])


@pytest.fixture(scope="module")
def new_account(sim):
    """Factory: create one more account with POST /_sim/accounts; returns a dict
    like the ready line (endpoint, region, account_id, access_key, secret_key)
    plus `gw`, an SDK Gateway for it."""

    def create():
        resp = requests.post(sim["base"] + "/_sim/accounts", data=b"", timeout=30)
        assert resp.status_code == 200, f"POST /_sim/accounts: {resp.status_code} {resp.text}"
        acct = resp.json()
        for key in ("account_id", "access_key", "secret_key"):
            assert acct.get(key), f"POST /_sim/accounts answer lacks {key}: {acct}"
        assert re.fullmatch(r"\d{12}", acct["account_id"]), acct
        assert acct["account_id"] != sim["account_id"]
        acct = dict(acct, endpoint=sim["endpoint"], region=sim["region"], base=sim["base"])
        acct["gw"] = make_gateway(
            acct["endpoint"], acct["region"], acct["access_key"], acct["secret_key"]
        )
        return acct

    return create


@pytest.fixture(scope="module")
def second_account(new_account):
    return new_account()


@pytest.fixture(scope="session")
def spec():
    return Spec()
