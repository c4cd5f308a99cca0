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
# `system-deps.sh bench` (make bench): the scan benchmark's Java image (bench/scan_images.py) is
# built from a few hundred of Debian's jars in /usr/share/java: these libraries and what they
# pull in (~200 MiB, which the tests do not need). Jars are not commands, so dpkg says whether
# each is installed.
JAVA_LIBRARIES=(
  libspring-web-servlet-java libspring-orm-java libspring-jdbc-java libspring-context-support-java
  libspring-test-java libspring-jms-java libspring-messaging-java libjackson2-databind-java
  libjackson2-dataformat-xml-java libjackson2-datatype-joda-java libjackson2-jaxrs-providers-java
  liblog4j2-java libguava-java libcommons-lang3-java libcommons-text-java libcommons-io-java
  libcommons-compress-java libcommons-configuration2-java libcommons-dbcp2-java
  libcommons-math3-java libcommons-csv-java libcommons-fileupload-java libcommons-validator-java
  libnetty-java libjetty9-java libjetty9-extra-java libtomcat9-java libhttpclient5-java
  libhibernate-validator-java libhibernate3-java liblucene8-java libbcprov-java libjgit-java
  libapache-poi-java liblogback-java libslf4j-java libjsoup-java libjna-platform-java
  libehcache-java libbyte-buddy-java libmockito-java libxerces2-java libantlr4-runtime-java
  libaspectj-java libjakarta-mail-java libjaxb-java libmaven-shade-plugin-java
)
installed_java=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${JAVA_LIBRARIES[@]}" \
  2>/dev/null | awk '$2 == "installed" {print $1}' || true)
if [ "${1:-}" = "bench" ]; then
  for package in "${JAVA_LIBRARIES[@]}"; do
    grep -qx "$package" <<<"$installed_java" || missing+=("$package")
  done
fi
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
