#!/bin/sh
# tests/store/pg.sh start DIR | stop DIR: a throwaway PostgreSQL server for
# tests and benchmarks. `start` runs initdb in DIR (which must not exist),
# listens only on a unix socket in DIR, fsync on, creates the database
# `fnbox`, and prints the store URL on stdout. `stop` stops it (SIGKILL as a
# last resort) and removes DIR. initdb and postgres refuse to run as root, so
# as root they run as the `postgres` user. Needs no system-wide cluster.
set -eu

CMD=${1:?usage: pg.sh start|stop DIR}
DIR=${2:?usage: pg.sh start|stop DIR}

PGVER=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
PGBIN=/usr/lib/postgresql/$PGVER/bin

as_pg() {
        if [ "$(id -u)" = 0 ]; then
                (cd / && runuser -u postgres -- "$@")
        else
                "$@"
        fi
}

stop() {
        if [ -f "$DIR/data/postmaster.pid" ]; then
                as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
                        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
                pid=$(head -n 1 "$DIR/data/postmaster.pid" 2>/dev/null || true)
                if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                        kill -9 "$pid" 2>/dev/null || true
                fi
        fi
        rm -rf "$DIR"
}

start() {
        for tool in initdb pg_ctl createdb; do
                if [ -z "$PGVER" ] || [ ! -x "$PGBIN/$tool" ]; then
                        echo "pg.sh: PostgreSQL's $tool is missing (in /usr/lib/postgresql/*/bin): run make deps" >&2
                        exit 2
                fi
        done
        mkdir "$DIR"
        if [ "$(id -u)" = 0 ]; then
                chown postgres: "$DIR"
                PGUSER=postgres
        else
                PGUSER=$(id -un)
        fi
        chmod 0700 "$DIR"
        if ! as_pg "$PGBIN/initdb" -D "$DIR/data" -U "$PGUSER" -A trust -E UTF8 --locale=C.UTF-8 \
                >"$DIR/initdb.log" 2>&1; then
                cat "$DIR/initdb.log" >&2
                echo "pg.sh: initdb failed" >&2
                stop
                exit 1
        fi
        cat >>"$DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$DIR'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 50
CONF
        if ! as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null; then
                cat "$DIR/server.log" >&2
                echo "pg.sh: the server did not start" >&2
                stop
                exit 1
        fi
        as_pg "$PGBIN/createdb" -h "$DIR" -U "$PGUSER" fnbox
        echo "postgresql:///fnbox?host=$DIR&user=$PGUSER"
}

case $CMD in
start) start ;;
stop) stop ;;
*) echo "usage: pg.sh start|stop DIR" >&2; exit 2 ;;
esac
