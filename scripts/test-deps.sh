#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: Debian packages for the real
# peers the tests talk to. CI (a fresh machine, as root) always installs them;
# a developer without root gets a message instead, and the tests that need a
# missing tool skip with its name (they never skip when CI=true).
set -euo pipefail

# command -> Debian package
declare -A need=(
  [turnutils_uclient]=coturn
  [turnutils_peer]=coturn
  [turnutils_stunclient]=coturn
  [node]=nodejs
  [chromium]=chromium
  [ip]=iproute2
  [unshare]=util-linux
  [promtool]=prometheus
  [prometheus]=prometheus
  [systemd-analyze]=systemd
  [redis-server]=redis-server
  [haproxy]=haproxy
)

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    echo "test-deps: missing Debian packages: $pkgs (run as root: apt-get install $pkgs); dependent tests will skip" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
  fi
fi
echo "test-deps: installing $pkgs" >&2
export DEBIAN_FRONTEND=noninteractive
${SUDO:-} apt-get update -qq
# Debian's coturn would start a daemon on 3478 where a service manager runs;
# policy-rc.d keeps package scripts from starting services.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | ${SUDO:-} tee /usr/sbin/policy-rc.d >/dev/null
  ${SUDO:-} chmod +x /usr/sbin/policy-rc.d
  trap '${SUDO:-} rm -f /usr/sbin/policy-rc.d' EXIT
fi
${SUDO:-} apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
