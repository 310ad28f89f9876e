#!/usr/bin/env bash
# The whole test suite: formatting and lints, the Rust tests (unit,
# integration, black-box), then the Python tests that drive the simulator
# with the official OUTSCALE SDK and check it against the OpenAPI spec.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet -r tests/python/requirements.txt
fi

cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
.venv/bin/python -m pytest -q tests/python
