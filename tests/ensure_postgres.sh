#!/usr/bin/env bash
# Makes sure a PostgreSQL server is installed for tests/test_cluster.py, which starts its
# own throwaway server (initdb and pg_ctl from /usr/lib/postgresql/*/bin) on a free port.
# Installs Debian's package when we can (root with apt-get); otherwise says exactly what to
# install, and fails, because the cluster tests never skip.
set -euo pipefail
found() { compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
found && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing postgresql for the cluster tests (Debian package)..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  found && exit 0
  echo "postgresql was installed but no initdb/pg_ctl is under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
echo "The cluster tests need a PostgreSQL server (initdb and pg_ctl under /usr/lib/postgresql/*/bin)." >&2
echo "On Debian or Ubuntu: sudo apt-get install postgresql" >&2
exit 1
