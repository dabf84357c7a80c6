#!/usr/bin/env bash
# The test command: installs the interop peers (Python websockets, Node ws) if missing, then runs
# every test suite. Usage: scripts/test.sh [extra swift test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
export NODE_PATH="${NODE_PATH:+$NODE_PATH:}/usr/share/nodejs:/usr/lib/nodejs"
exec swift test "$@"
