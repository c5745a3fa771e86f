#!/bin/sh
# Installs the Debian packages that fnbox's build, tests and benchmarks need,
# and the `fnbox` system user that the controller and the activator drop to
# when started as root. Idempotent and quick: apt runs only when something
# is missing. Why each package is here: docs/operations.md ("Packages").
set -eu
PKGS="build-essential pkg-config clang libseccomp-dev libcap-dev libjansson-dev libuv1-dev
      libyaml-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev
      libsystemd-dev libpq-dev postgresql python3 nodejs bubblewrap util-linux procps
      nginx-light wrk python3-numpy python3-pandas"
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

# Node packages from the npm registry, each installed at the versions of
# its committed package-lock.json (nothing is fetched at run time; a stamp
# of the two files' hash makes a second run quick). `npm install`, not
# `npm ci`: node-llama-cpp lists a prebuilt package per platform as optional
# dependencies, some of which the registry lacks, and `npm ci` refuses a
# lock file without them; --omit=optional installs only the linux-x64 one
# that package.json names:
#   /usr/local/lib/fnbox/llm-local: node-llama-cpp and its prebuilt CPU
#     binary for functions/llm-local, under /usr so that every jail sees it
#     read-only (functions/llm-local/README.md);
#   tests/gateway/node_modules: the `openai` client the gateway tests use.
# node-llama-cpp 3.22 wants Node.js 20 or later: Debian 12's own nodejs is
# 18, the machines' image brings 20; with an older one this part is skipped
# with a warning (and the llm tests fail, saying why).
here=$(cd "$(dirname "$0")/.." && pwd)
npm_install() { # FROM (a folder with package.json and package-lock.json) TO
        from=$1 to=$2
        sum=$(cat "$from/package.json" "$from/package-lock.json" | sha256sum | cut -d' ' -f1)
        if [ "$(cat "$to/node_modules/.fnbox-npm-stamp" 2>/dev/null)" = "$sum" ]; then
                return 0
        fi
        echo "make deps: npm install in $to"
        mkdir -p "$to"
        if [ "$from" != "$to" ]; then
                cp "$from/package.json" "$from/package-lock.json" "$to/"
        fi
        rm -f "$to/node_modules/.fnbox-npm-stamp"
        # --ignore-scripts: node-llama-cpp's postinstall would try to build
        # llama.cpp (downloading its source) when the prebuilt binary does not
        # fit; we want the prebuilt one or a clear error, never a download
        (cd "$to" && umask 022 && npm install --omit=optional --ignore-scripts --no-save --no-audit \
                --no-fund --loglevel=error >/dev/null)
        echo "$sum" >"$to/node_modules/.fnbox-npm-stamp"
}
if [ "$(id -u)" = 0 ] && ! command -v npm >/dev/null 2>&1; then
        echo "make deps: installing npm"
        apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
        echo "make deps: Node.js $(node --version 2>/dev/null || echo missing) is older than 20:" \
             "node-llama-cpp (functions/llm-local) and openai (tests/gateway) are not installed" >&2
elif [ "$(id -u)" != 0 ]; then
        [ -d /usr/local/lib/fnbox/llm-local/node_modules ] ||
                echo "make deps: node-llama-cpp is not installed in /usr/local/lib/fnbox/llm-local (run as root)" >&2
else
        npm_install "$here/functions/llm-local" /usr/local/lib/fnbox/llm-local
        npm_install "$here/tests/gateway" "$here/tests/gateway"
fi
