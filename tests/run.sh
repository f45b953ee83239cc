#!/usr/bin/env bash
# The Python end-to-end tests (issue #5): builds the sop-server binary, generates the bindings
# (bindings/generate.sh: Python, Kotlin and Swift, so a generation failure fails this too), then
# runs pytest on tests/ against the real server on PostgreSQL.
#
#   tests/run.sh [pytest arguments...]        e.g. tests/run.sh -k crash -x
#
# Needs PostgreSQL at SOP_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; the
# role must be allowed to CREATE DATABASE; every test creates and drops its own) and `psql`.
# Installs pytest with pip when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
if ! "$python" -c 'import pytest' 2>/dev/null; then
  "$python" -m pip install --quiet pytest
fi

cargo build -q -p sop-server --bin sop-server
bindings/generate.sh

export SOP_TEST_DATABASE_URL="${SOP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
exec "$python" -m pytest tests -q -ra -p no:cacheprovider "$@"
