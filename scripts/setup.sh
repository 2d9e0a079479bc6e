#!/usr/bin/env bash
# Installs every Debian package that the build, the tests, the testbed and the demo need.
# Idempotent: packages already present are left alone. Uses the machine's own apt
# configuration; names no mirror.
set -euo pipefail

PACKAGES=(
  # toolchain
  cmake g++ ninja-build pkg-config git python3 clang libclang-rt-14-dev clang-format
  # libraries
  libboost1.81-dev libsdbus-c++-dev libsdbus-c++-bin libseccomp-dev libcap-ng-dev
  nlohmann-json3-dev libspdlog-dev libssl-dev libgtest-dev libgmock-dev libsystemd-dev
  libarchive-dev libexpected-dev libbenchmark-dev
  # testbed, demo and test peers
  debootstrap systemd-container systemd dbus iproute2 curl openssl ca-certificates
  util-linux procps
  # packaging: building and checking the .deb files, the man page
  dpkg-dev fakeroot lintian mandoc
  # the daemon's built-in Python installer (system Python, venv, Debian's build tooling)
  python3-venv python3-pip python3-setuptools python3-wheel
  # the contract test's restatement of DECNET's master (its models, its client)
  python3-pydantic python3-httpx
  # the rollout report's schema test (draft 2020-12)
  python3-jsonschema
)

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: must run as root (it installs packages)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  for attempt in 1 2 3; do
    if apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; then
      break
    fi
    [ "$attempt" = 3 ] && { echo "setup.sh: apt-get failed three times" >&2; exit 1; }
    sleep $((attempt * 5))
  done
else
  echo "setup.sh: all packages present"
fi

# The system users a package install creates (systemd/decnet-updater.sysusers): the demo and
# the end-to-end tests run the daemon and the units as these, as production does.
here=$(cd "$(dirname "$0")/.." && pwd)
systemd-sysusers "$here/systemd/decnet-updater.sysusers"
