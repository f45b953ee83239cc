#!/usr/bin/env bash
# The whole test suite, as README.md gives it: the Rust tests of every crate (`cargo test
# --workspace`: sop-core's rules and device store, the server's HTTP, store, S3, report and
# device-client tests on SQLite and PostgreSQL), then the Python end-to-end tests that drive the
# generated uniffi bindings against the real server (tests/run.sh).
#
# What the tests need beyond Rust is installed here when missing, so a fresh machine needs no
# other step: `pdftotext` (poppler-utils, to read the reports back), `moto_server` (a real
# S3-compatible endpoint on loopback) and pytest. Installing poppler-utils needs root (apt-get);
# as another user the script stops and says what to install.
#
# The PostgreSQL tests use SOP_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)
# and create and drop their own databases there; they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"

if ! command -v pdftotext >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
  else
    echo "scripts/test.sh: pdftotext is missing; install poppler-utils" >&2
    exit 1
  fi
fi
if ! command -v moto_server >/dev/null; then
  "$python" -m pip install --quiet 'moto[server]'
fi
if ! "$python" -c 'import pytest' 2>/dev/null; then
  "$python" -m pip install --quiet pytest
fi

export SOP_TEST_DATABASE_URL="${SOP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"

cargo test --workspace
tests/run.sh
