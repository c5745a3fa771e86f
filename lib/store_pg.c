/* lib/store_pg.c: the PostgreSQL backend through libpq: one connection per
 * Store (store.c serialises its users), parameterised statements only, bytea
 * artifacts sent and read in binary, SELECT ... FOR UPDATE on the function
 * row so racing deploys queue, an advisory lock around migrations, and one
 * reconnect when the connection breaks outside COMMIT. */
#define _GNU_SOURCE
#include "store_backend.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define PG_ARGS_MAX             8
#define PG_SQL_MAX              1024
/* pg_advisory_lock key held while migrating: "fnbxmigr" as a big-endian int64 */
#define PG_MIGRATION_LOCK       "7380945108678043506"

typedef struct Pg {
        PGconn *conn;
} Pg;

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static void pqclearp(PGresult **r) {
        PQclear(*r);
}
#define _cleanup_pgresult_ _cleanup_(pqclearp)

static const char *const pg_migrations[STORE_SCHEMA_LATEST] = {
        /* 1: the first schema; keys compare bytewise (COLLATE "C"), as in SQLite */
        "CREATE TABLE artifacts ("
        "  digest TEXT COLLATE \"C\" PRIMARY KEY,"
        "  size BIGINT NOT NULL,"
        "  data BYTEA NOT NULL,"
        "  created_ms BIGINT NOT NULL"
        ");"
        "CREATE TABLE functions ("
        "  namespace TEXT COLLATE \"C\" NOT NULL,"
        "  name TEXT COLLATE \"C\" NOT NULL,"
        "  resource_version BIGINT NOT NULL,"
        "  latest_revision BIGINT NOT NULL,"
        "  spec_json TEXT NOT NULL,"
        "  traffic_json TEXT NOT NULL,"
        "  created_ms BIGINT NOT NULL,"
        "  updated_ms BIGINT NOT NULL,"
        "  PRIMARY KEY (namespace, name)"
        ");"
        "CREATE TABLE revisions ("
        "  namespace TEXT COLLATE \"C\" NOT NULL,"
        "  function TEXT COLLATE \"C\" NOT NULL,"
        "  number BIGINT NOT NULL,"
        "  spec_json TEXT NOT NULL,"
        "  spec_digest TEXT NOT NULL,"
        "  code_digest TEXT COLLATE \"C\" NOT NULL REFERENCES artifacts (digest),"
        "  created_ms BIGINT NOT NULL,"
        "  PRIMARY KEY (namespace, function, number),"
        "  FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE"
        ");"
        "CREATE INDEX revisions_code_digest ON revisions (code_digest);"
        "CREATE TABLE tokens ("
        "  id TEXT COLLATE \"C\" PRIMARY KEY,"
        "  secret_hash TEXT NOT NULL,"
        "  role TEXT NOT NULL,"
        "  namespaces TEXT NOT NULL,"
        "  description TEXT NOT NULL,"
        "  created_ms BIGINT NOT NULL,"
        "  revoked_ms BIGINT NOT NULL DEFAULT 0"
        ");"
        "CREATE TABLE nodes ("
        "  name TEXT COLLATE \"C\" PRIMARY KEY,"
        "  labels_json TEXT NOT NULL,"
        "  capacity_json TEXT NOT NULL,"
        "  state TEXT NOT NULL,"
        "  heartbeat_ms BIGINT NOT NULL,"
        "  registered_ms BIGINT NOT NULL"
        ");",
};

/* Map a failed result to an errno by its SQLSTATE, keeping the primary
 * message only (the detail can quote row values). A broken connection is
 * -ENOTCONN, so that store.c reconnects and runs the operation again. */
static int pg_error(Store *s, const PGresult *res) {
        Pg *p = s->impl;
        if (PQstatus(p->conn) == CONNECTION_BAD)
                return store_set_error(s, -ENOTCONN, "postgres: %s", PQerrorMessage(p->conn));
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        int r = -EIO;
        if (!state)
                state = "";
        if (streq(state, "23505"))              /* unique_violation */
                r = -EEXIST;
        else if (streq(state, "23503"))         /* foreign_key_violation */
                r = -ENOENT;
        else if (streq(state, "40001") || streq(state, "40P01"))   /* serialization, deadlock */
                r = -EAGAIN;
        else if (streq(state, "54000"))         /* program_limit_exceeded */
                r = -E2BIG;
        return store_set_error(s, r, "postgres: %s", msg ? msg : PQerrorMessage(p->conn));
}

static bool pg_ok(const PGresult *res) {
        ExecStatusType st = PQresultStatus(res);
        return res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

static int pg_script(Store *s, const char *sql) {
        Pg *p = s->impl;
        _cleanup_pgresult_ PGresult *res = PQexec(p->conn, sql);
        return pg_ok(res) ? 0 : pg_error(s, res);
}

/* libpq prints server notices ("relation already exists, skipping") to
 * stderr by default; the store never logs. */
static void pg_notice(void *arg, const char *msg) {
        (void) arg;
        (void) msg;
}

static int pg_connect(Store *s, const char *conninfo) {
        /* defaults before "dbname", which expands conninfo: the URL wins */
        const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
        const char *const values[] = { "10", "fnbox", conninfo, NULL };
        Pg *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        s->impl = p;
        p->conn = PQconnectdbParams(keys, values, 1);
        if (!p->conn)
                return -ENOMEM;
        if (PQstatus(p->conn) != CONNECTION_OK)
                return store_set_error(s, -EIO, "postgres: %s", PQerrorMessage(p->conn));
        PQsetNoticeProcessor(p->conn, pg_notice, NULL);
        if (PQserverVersion(p->conn) < 100000)
                return store_set_error(s, -EIO, "postgres: the server is older than PostgreSQL 10");
        return 0;
}

static void pg_disconnect(Store *s) {
        Pg *p = s->impl;
        PQfinish(p->conn);
        free(p);
        s->impl = NULL;
}

static int pg_reconnect(Store *s) {
        Pg *p = s->impl;
        PQreset(p->conn);
        if (PQstatus(p->conn) != CONNECTION_OK)
                return store_set_error(s, -EIO, "postgres: reconnecting: %s", PQerrorMessage(p->conn));
        PQsetNoticeProcessor(p->conn, pg_notice, NULL);
        return 0;
}

static int pg_rows(const PGresult *res, StoreRows *ret) {
        int nrows = PQntuples(res), ncols = PQnfields(res);
        for (int i = 0; i < nrows; i++) {
                StoreCell *row = store_rows_add(ret, (size_t) ncols);
                if (!row)
                        return -ENOMEM;
                for (int c = 0; c < ncols; c++) {
                        size_t len = (size_t) PQgetlength(res, i, c);
                        row[c].data = malloc(len + 1);
                        if (!row[c].data)
                                return -ENOMEM;
                        memcpy(row[c].data, PQgetvalue(res, i, c), len);
                        row[c].data[len] = 0;
                        row[c].len = len;
                        row[c].null = PQgetisnull(res, i, c);
                }
        }
        return 0;
}

/* Run statement id with PQexecParams: text and integers go as text (the
 * server infers their types from the statement), blobs as binary. */
static int pg_exec(Store *s, StoreStmt id, const StoreArg *args, size_t n, StoreRows *ret) {
        Pg *p = s->impl;
        const StoreSql *q = &store_sql[id];
        const char *values[PG_ARGS_MAX];
        int lengths[PG_ARGS_MAX] = {}, formats[PG_ARGS_MAX] = {};
        char ints[PG_ARGS_MAX][24], sql[PG_SQL_MAX];

        if (n > PG_ARGS_MAX)
                return -EINVAL;
        snprintf(sql, sizeof sql, "%s%s", q->sql, q->flags & STORE_Q_LOCK ? " FOR UPDATE" : "");
        for (size_t i = 0; i < n; i++) {
                if (args[i].type == STORE_ARG_TEXT)
                        values[i] = args[i].text;
                else if (args[i].type == STORE_ARG_INT) {
                        snprintf(ints[i], sizeof ints[i], "%" PRId64, args[i].i);
                        values[i] = ints[i];
                } else {
                        values[i] = args[i].blob ? args[i].blob : "";
                        lengths[i] = (int) args[i].len;
                        formats[i] = 1;
                }
        }
        _cleanup_pgresult_ PGresult *res = PQexecParams(p->conn, sql, (int) n, NULL, values, lengths, formats,
                                                        q->flags & STORE_Q_BINARY ? 1 : 0);
        if (!pg_ok(res))
                return pg_error(s, res);
        if (!ret)
                return 0;
        int r = pg_rows(res, ret);
        if (r < 0) {
                store_rows_clear(ret);
                return r;
        }
        ret->changes = strtoll(PQcmdTuples(res), NULL, 10);
        return 0;
}

static int pg_begin(Store *s, bool write) {
        (void) write;   /* READ COMMITTED; writers lock the rows they change */
        return pg_script(s, "BEGIN");
}

static int pg_commit(Store *s) {
        Pg *p = s->impl;
        _cleanup_pgresult_ PGresult *res = PQexec(p->conn, "COMMIT");
        if (!pg_ok(res)) {
                int r = pg_error(s, res);
                /* the COMMIT may or may not have reached the server: not retried */
                return r == -ENOTCONN ? store_set_error(s, -EIO, "postgres: the connection broke "
                                                        "during COMMIT; the outcome is unknown") : r;
        }
        /* COMMIT of a failed transaction answers ROLLBACK, not an error */
        if (!streq(PQcmdStatus(res), "COMMIT"))
                return store_set_error(s, -EIO, "postgres: the transaction was rolled back");
        return 0;
}

static void pg_rollback(Store *s) {
        Pg *p = s->impl;
        if (PQstatus(p->conn) == CONNECTION_OK)
                PQclear(PQexec(p->conn, "ROLLBACK"));
}

/* Two controllers starting at once must not both migrate: the second waits
 * here, then finds the work done. Session-level, released after. */
static int pg_migrate_lock(Store *s) {
        return pg_script(s, "SELECT pg_advisory_lock(" PG_MIGRATION_LOCK ")");
}

static void pg_migrate_unlock(Store *s) {
        pg_script(s, "SELECT pg_advisory_unlock(" PG_MIGRATION_LOCK ")");
}

const StoreOps store_pg_ops = {
        .name = "postgres",
        .connect = pg_connect,
        .disconnect = pg_disconnect,
        .reconnect = pg_reconnect,
        .exec = pg_exec,
        .script = pg_script,
        .begin = pg_begin,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .migrate_lock = pg_migrate_lock,
        .migrate_unlock = pg_migrate_unlock,
        .migrations = pg_migrations,
};
