#!/bin/sh
# Installs the Debian packages that fnbox's build, tests and benchmarks need.
# Idempotent and quick: apt runs only when something is missing.
set -eu
PKGS="build-essential pkg-config libseccomp-dev libcap-dev libjansson-dev libuv1-dev
      libyaml-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev
      libpq-dev postgresql python3 nodejs bubblewrap util-linux procps"
missing=""
for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
        echo "make deps: missing packages:$missing (run as root, or install them)" >&2
        exit 1
fi
echo "make deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
