#!/bin/sh
# Install the Debian 12 packages pilotlight needs to build, run and test,
# only those missing. Uses sudo when not root. Safe to run repeatedly.
set -eu
PKGS="build-essential cmake pkg-config clang libmicrohttpd-dev libcjson-dev libsqlite3-dev
libcurl4-openssl-dev libcmocka-dev libjemalloc-dev python3 python3-pytest curl libmosquitto-dev mosquitto mosquitto-clients"
[ "${1:-}" = "--bench" ] && PKGS="$PKGS wrk"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
