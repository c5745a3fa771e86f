#!/bin/sh
# manifests/run-local.sh BUILD: what `make run` starts, the whole platform as
# it exists today on this one machine, in the foreground: fnbox-controller
# (the REST API, SQLite in /var/lib/fnbox) and fnbox-runtime serve (the node
# agent's jail pool). Ctrl-C or SIGTERM stops both; the runtime removes its
# jails, cgroups and socket. The activator (`/fn/NAME`) and `fnbox up` come
# with the data plane.
set -eu
BUILD=${1:-build}
BIN=$(cd "$BUILD/bin" && pwd)
DATA=${FNBOX_DATA_DIR:-/var/lib/fnbox}
LISTEN=${FNBOX_LISTEN:-127.0.0.1:8081}
if [ "$(id -u)" != 0 ]; then
        echo "make run: fnbox-runtime needs root (namespaces and cgroups); run as root" >&2
        exit 1
fi
pids=""
stop() {
        trap - INT TERM HUP EXIT
        for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
        for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap 'stop; exit 0' INT TERM HUP
trap stop EXIT

"$BIN/fnbox-runtime" serve --socket /run/fnbox/runtime.sock </dev/null &
pids="$pids $!"
"$BIN/fnbox-controller" --data-dir "$DATA" --listen "$LISTEN" </dev/null &
pids="$pids $!"
sleep 0.5
cat <<MSG

fnbox is running (Ctrl-C stops it):
  control API   http://$LISTEN   (admin token in $DATA/admin.token)
  runtime       /run/fnbox/runtime.sock (jails for fnbox-runtime run)

Try it, in another terminal:
  $BIN/fnbox deploy -f functions/hello/manifest.yaml
  $BIN/fnbox list
  $BIN/fnbox describe hello
  echo fnbox | $BIN/fnbox-runtime run --runtime python3 --code functions/hello
See docs/cli.md, docs/manifest.md, docs/api.md and docs/jail.md.
MSG
wait
