#!/bin/sh
# tests/store/run.sh BUILD [--bench]: the store conformance suite against
# SQLite in a temporary folder, then against a PostgreSQL server of its own:
# initdb in the same folder, listening only on a unix socket there, fsync on,
# stopped and removed on exit whatever happens. Needs no system-wide cluster.
# initdb and postgres refuse to run as root, so as root they run as the
# `postgres` user. With --bench it prints the quick figures instead.
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

PGVER=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
PGBIN=/usr/lib/postgresql/$PGVER/bin
for tool in initdb pg_ctl createdb; do
        if [ -z "$PGVER" ] || [ ! -x "$PGBIN/$tool" ]; then
                echo "store: PostgreSQL's $tool is missing (in /usr/lib/postgresql/*/bin): run make deps" >&2
                exit 2
        fi
done

TMP=$(mktemp -d /tmp/fnbox-store.XXXXXX)
PGDIR=$TMP/pg
# run a PostgreSQL tool as the postgres user when we are root
as_pg() {
        if [ "$(id -u)" = 0 ]; then
                (cd / && runuser -u postgres -- "$@")
        else
                "$@"
        fi
}
cleanup() {
        rc=$?
        if [ -f "$PGDIR/data/postmaster.pid" ]; then
                as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
                pid=$(head -n 1 "$PGDIR/data/postmaster.pid" 2>/dev/null || true)
                if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                        kill -9 "$pid" 2>/dev/null || true
                fi
        fi
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

# PostgreSQL: a throwaway cluster owned by the postgres user when we are root
mkdir "$PGDIR"
chmod 0755 "$TMP"
if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PGDIR"
        PGUSER=postgres
else
        PGUSER=$(id -un)
fi
chmod 0700 "$PGDIR"
if ! as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U "$PGUSER" -A trust -E UTF8 --locale=C.UTF-8 \
        >"$PGDIR/initdb.log" 2>&1; then
        cat "$PGDIR/initdb.log" >&2
        echo "store (postgres): initdb failed"
        exit 1
fi
cat >>"$PGDIR/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$PGDIR'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 50
EOF
if ! as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start >/dev/null; then
        cat "$PGDIR/server.log" >&2
        echo "store (postgres): the server did not start"
        exit 1
fi
as_pg "$PGBIN/createdb" -h "$PGDIR" -U "$PGUSER" fnbox
run_suite "postgresql:///fnbox?host=$PGDIR&user=$PGUSER" || status=1
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w -t 60 stop >/dev/null
exit $status
