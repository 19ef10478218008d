#!/usr/bin/env bash
# Makes sure headless Chromium and a CJK font are present for the browser tests.
# Installs them from Debian's packages when we can (root with apt-get); otherwise
# says exactly what to install, and fails, because the browser test never skips.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi "noto sans cjk\|noto serif cjk\|wqy" || need+=(fonts-noto-cjk)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${need[*]} for the browser tests (Debian packages)..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
  exit 0
fi
echo "The browser tests need: ${need[*]}." >&2
echo "On Debian or Ubuntu: sudo apt-get install ${need[*]}" >&2
exit 1
