#!/usr/bin/env bash
# Installs what the tests need, only where it is missing: Python `websockets` (PyPI), Node `ws`
# (Debian's node-ws), the `openssl` command (the TLS tests make their certificates with it),
# PostgreSQL's server programs (DuplexPostgresTests start their own server) and Chromium
# (BrowserTests). Idempotent; a no-op taking about a second when all is present.
set -euo pipefail
WEBSOCKETS_VERSION=17.4
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! python3 -c "import websockets, sys; sys.exit(0 if websockets.__version__ == '$WEBSOCKETS_VERSION' else 1)" 2>/dev/null; then
  echo "install-test-deps: pip install websockets==$WEBSOCKETS_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION"
fi

PACKAGES=""
if ! command -v node >/dev/null 2>&1 || ! NODE_PATH=/usr/share/nodejs:/usr/lib/nodejs node -e "require('ws')" 2>/dev/null; then
  PACKAGES="node-ws"
fi
command -v openssl >/dev/null 2>&1 || PACKAGES="$PACKAGES openssl"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || PACKAGES="$PACKAGES postgresql"
command -v chromium >/dev/null 2>&1 || PACKAGES="$PACKAGES chromium"
if [ -n "$PACKAGES" ]; then
  echo "install-test-deps: apt-get install ${PACKAGES# }"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq $PACKAGES >/dev/null
fi
