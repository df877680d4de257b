#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh machine (idempotent).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)  # verifies docs/deploy's unit
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)  # the SQLite backup of docs/deploy.md (tested)
# The browser test of the web interface (tests/intake/web/test_browser.py) drives Debian's Chromium.
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
# The printing tests (tests/notifier/test_printing.py, test_corrections.py) convert workbooks to PDF.
command -v soffice >/dev/null 2>&1 || need+=(libreoffice-calc-nogui)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || echo "warning: could not install ${need[*]}" >&2
fi
# PostgreSQL is preinstalled on the project machine; start it if it is down.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
# axe-core for the accessibility checks of the browser test, installed into tests/.node (ignored by git).
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$root/tests/.node/node_modules/axe-core/axe.min.js" ] && command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix "$root/tests/.node" axe-core@4 >/dev/null 2>&1 \
    || echo "warning: could not install axe-core into tests/.node" >&2
fi
