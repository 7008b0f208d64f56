#!/usr/bin/env bash
# Installs the server binaries the test suite starts on its own free ports
# (redis-server for the Redis tests, memcached for the memcached tests) and
# Debian's chromium for the dashboard's browser tests (Playwright drives
# /usr/bin/chromium; never `playwright install`).
# Tests never touch the shared services on standard ports.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v memcached >/dev/null 2>&1 || need+=(memcached)
[ -x /usr/bin/chromium ] || need+=(chromium)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing server binaries: ${need[*]} (install them with apt-get)" >&2
    exit 1
  fi
fi
