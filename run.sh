#!/usr/bin/env bash
# Quick start entry point for a fresh Debian machine with Node and npm:
#   ./run.sh demo   Orthanc + the AWS plugin + client-side encryption + a local S3 server (Ceph RGW)
#   ./run.sh test   lint, build and the whole test suite against real servers
# It installs what is missing first: Debian packages (Orthanc, its SDK headers, a C compiler,
# Ceph RGW), pnpm, and the workspace's npm dependencies (which bring Node 24, see README).
set -euo pipefail
cd "$(dirname "$0")"

PNPM_VERSION=10.34.8
APT_PACKAGES=(orthanc orthanc-dev gcc libc6-dev ceph-mon ceph-osd radosgw ceph-common ca-certificates openssl debootstrap mount postgresql orthanc-postgresql)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing Debian packages: ${missing[*]}"
  # Keep Debian's orthanc service from starting (tests and the demo start their own Orthanc);
  # the policy file is ours only for the duration of the install.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
    own_policy=1
  fi
  local status=0
  as_root apt-get update -q &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    status=$?
  [ "$own_policy" -eq 1 ] && as_root rm -f /usr/sbin/policy-rc.d
  return "$status"
}

install_pnpm() {
  if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
    echo "Installing pnpm $PNPM_VERSION"
    as_root npm install -g --no-fund --no-audit "pnpm@$PNPM_VERSION"
  fi
}

setup() {
  install_debian_packages
  install_pnpm
  export NO_UPDATE_NOTIFIER=1 TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
  pnpm install --frozen-lockfile
}

case "${1:-}" in
  demo)
    setup
    pnpm exec turbo run build
    exec pnpm exec node tooling/e2e/dist/demo.js
    ;;
  test)
    setup
    pnpm exec turbo run build
    pnpm lint
    pnpm test
    ;;
  setup)
    setup
    ;;
  *)
    echo "usage: ./run.sh demo|test|setup" >&2
    exit 2
    ;;
esac
