#!/usr/bin/env bash
# Install the system packages the tests and the benchmark drive (Debian), when any is missing,
# and make sure the PostgreSQL server the suites use is up.
set -euo pipefail

declare -A PACKAGES=(
  [skopeo]=skopeo
  [podman]=podman
  [mmdebstrap]=mmdebstrap
  [dockerd]=docker.io
  [containerd]=containerd
  [newuidmap]=uidmap
  [docker-registry]=docker-registry
  [nginx]=nginx-light
  [wrk]=wrk
  [curl]=curl
  [cc]=gcc
  [go]=golang-go
  [rpm]=rpm
  [rpmbuild]=rpm
  [db5.3_load]=db5.3-util
  [npm]=npm
  [mvn]=maven
  [jar]=default-jdk-headless
  [unzip]=unzip
  [chromium]=chromium
  [ruby]=ruby
  [gem]=ruby
  [rackup]=ruby-rack
  [php]=php-cli
  [composer]=composer
  [cargo]=cargo
  [objcopy]=binutils
)
missing=()
for tool in "${!PACKAGES[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${PACKAGES[$tool]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts nginx and docker-registry (on :5000, Seawall's default port) on install; the
  # benchmark runs its own instances. README.md says how to keep docker-registry from starting.
  if command -v service >/dev/null 2>&1; then
    service nginx stop >/dev/null 2>&1 || true
    service docker-registry stop >/dev/null 2>&1 || true
  fi
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi
