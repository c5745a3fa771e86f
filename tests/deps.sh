#!/bin/sh
# Installs the Debian packages that fnbox's build, tests and benchmarks need,
# and the `fnbox` system user that the controller and the activator drop to
# when started as root. Idempotent and quick: apt runs only when something
# is missing. Why each package is here: docs/operations.md ("Packages").
set -eu
PKGS="build-essential pkg-config clang libseccomp-dev libcap-dev libjansson-dev libuv1-dev
      libyaml-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev
      libsystemd-dev libpq-dev postgresql python3 nodejs bubblewrap util-linux procps
      nginx-light wrk"
missing=""
for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
        if [ "$(id -u)" != 0 ]; then
                echo "make deps: missing packages:$missing (run as root, or install them)" >&2
                exit 1
        fi
        echo "make deps: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
        # nginx is a benchmark peer, not a service of ours: keep it stopped
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
                systemctl disable --now nginx >/dev/null 2>&1 || true
        fi
fi
if ! id -u fnbox >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
                useradd --system --home-dir /nonexistent --no-create-home \
                        --shell /usr/sbin/nologin fnbox
        else
                echo "make deps: no 'fnbox' system user (the daemons drop to it when started as root)" >&2
        fi
fi
