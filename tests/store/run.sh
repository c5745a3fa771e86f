#!/bin/sh
# tests/store/run.sh BUILD [--bench]: the store conformance suite against
# SQLite in a temporary folder, then against a PostgreSQL server of its own:
# started by tests/store/pg.sh in the same folder (a unix socket only, fsync
# on), stopped and removed on exit whatever happens. With --bench it prints
# the quick figures instead.
set -eu

BUILD=${1:-build}
MODE=${2:-}
BIN=$BUILD/tests/store-conformance
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
if [ ! -x "$BIN" ]; then
        echo "store: $BIN is missing: make BUILD=$BUILD $BUILD/tests/store-conformance" >&2
        exit 2
fi
exec </dev/null

TMP=$(mktemp -d /tmp/fnbox-store.XXXXXX)
PGDIR=$TMP/pg
HERE=$(cd "$(dirname "$0")" && pwd)
cleanup() {
        rc=$?
        "$HERE/pg.sh" stop "$PGDIR"
        rm -rf "$TMP"
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

run_suite() {
        if [ "$MODE" = --bench ]; then
                "$BIN" --bench "$1"
        else
                "$BIN" "$1"
        fi
}

status=0

# SQLite: files in a folder of our own
mkdir "$TMP/sqlite"
run_suite "sqlite:$TMP/sqlite/store.db" || status=1

# PostgreSQL: a throwaway server of our own (tests/store/pg.sh)
chmod 0755 "$TMP"
if ! URL=$("$HERE/pg.sh" start "$PGDIR"); then
        echo "store (postgres): could not start a PostgreSQL server"
        exit 1
fi
run_suite "$URL" || status=1
exit $status
