#!/usr/bin/env bash
# The test command: installs what the tests need where it is missing (Python websockets, Node ws, openssl,
# PostgreSQL, Chromium), then runs every test suite. Usage: scripts/test.sh [extra swift test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
export NODE_PATH="${NODE_PATH:+$NODE_PATH:}/usr/share/nodejs:/usr/lib/nodejs"
# One test at a time: many tests time real sockets, heartbeats and handshakes, and on a 2-core machine
# the whole suite at once (with PostgreSQL and Chromium in it) starves them. About 100 s this way.
exec swift test --no-parallel "$@"
