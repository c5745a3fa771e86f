/* lib/store_sqlite.c: the SQLite backend: one database file, created
 * owner-only, in WAL mode with synchronous=FULL (a committed write survives
 * kill -9 and power loss), foreign keys on, a busy timeout, BEGIN IMMEDIATE
 * for writes so racing writers queue instead of failing, and every statement
 * prepared once per connection. */
#define _GNU_SOURCE
#include "store_backend.h"

#include <fcntl.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SQLITE_BUSY_MS  15000           /* how long a writer waits for the lock */

typedef struct Sqlite {
        sqlite3 *db;
        sqlite3_stmt *stmts[_STMT_MAX];
} Sqlite;

static const char *const sqlite_migrations[STORE_SCHEMA_LATEST] = {
        /* 1: the first schema */
        "CREATE TABLE artifacts ("
        "  digest TEXT PRIMARY KEY,"
        "  size INTEGER NOT NULL,"
        "  data BLOB NOT NULL,"
        "  created_ms INTEGER NOT NULL"
        ") STRICT;"
        "CREATE TABLE functions ("
        "  namespace TEXT NOT NULL,"
        "  name TEXT NOT NULL,"
        "  resource_version INTEGER NOT NULL,"
        "  latest_revision INTEGER NOT NULL,"
        "  spec_json TEXT NOT NULL,"
        "  traffic_json TEXT NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  updated_ms INTEGER NOT NULL,"
        "  PRIMARY KEY (namespace, name)"
        ") STRICT;"
        "CREATE TABLE revisions ("
        "  namespace TEXT NOT NULL,"
        "  function TEXT NOT NULL,"
        "  number INTEGER NOT NULL,"
        "  spec_json TEXT NOT NULL,"
        "  spec_digest TEXT NOT NULL,"
        "  code_digest TEXT NOT NULL REFERENCES artifacts (digest),"
        "  created_ms INTEGER NOT NULL,"
        "  PRIMARY KEY (namespace, function, number),"
        "  FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE"
        ") STRICT;"
        "CREATE INDEX revisions_code_digest ON revisions (code_digest);"
        "CREATE TABLE tokens ("
        "  id TEXT PRIMARY KEY,"
        "  secret_hash TEXT NOT NULL,"
        "  role TEXT NOT NULL,"
        "  namespaces TEXT NOT NULL,"
        "  description TEXT NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  revoked_ms INTEGER NOT NULL DEFAULT 0"
        ") STRICT;"
        "CREATE TABLE nodes ("
        "  name TEXT PRIMARY KEY,"
        "  labels_json TEXT NOT NULL,"
        "  capacity_json TEXT NOT NULL,"
        "  state TEXT NOT NULL,"
        "  heartbeat_ms INTEGER NOT NULL,"
        "  registered_ms INTEGER NOT NULL"
        ") STRICT;",
        /* 2: the LLM gateway's audit records */
        "CREATE TABLE llm_audit ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  request_id TEXT NOT NULL,"
        "  at_ms INTEGER NOT NULL,"
        "  namespace TEXT NOT NULL,"
        "  caller TEXT NOT NULL,"
        "  endpoint TEXT NOT NULL,"
        "  alias TEXT NOT NULL,"
        "  upstream TEXT NOT NULL,"
        "  chain_json TEXT NOT NULL,"
        "  tokens_in INTEGER NOT NULL,"
        "  tokens_out INTEGER NOT NULL,"
        "  tokens_counted INTEGER NOT NULL,"
        "  latency_us INTEGER NOT NULL,"
        "  ttft_us INTEGER NOT NULL,"
        "  status INTEGER NOT NULL,"
        "  error_type TEXT NOT NULL,"
        "  rules TEXT NOT NULL,"
        "  stream INTEGER NOT NULL,"
        "  request_body TEXT,"
        "  response_body TEXT,"
        "  received_ms INTEGER NOT NULL,"
        "  UNIQUE (namespace, request_id, at_ms)"
        ") STRICT;"
        "CREATE INDEX llm_audit_namespace ON llm_audit (namespace, id);"
        "CREATE INDEX llm_audit_at ON llm_audit (at_ms);",
        /* 3: whether a kept body was cut at the activator's bound */
        "ALTER TABLE llm_audit ADD COLUMN request_body_truncated INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE llm_audit ADD COLUMN response_body_truncated INTEGER NOT NULL DEFAULT 0;",
        /* 4: the skill library's versions, and the counter every skill write bumps */
        "CREATE TABLE skill_versions ("
        "  namespace TEXT NOT NULL,"
        "  name TEXT NOT NULL,"
        "  version INTEGER NOT NULL,"
        "  state TEXT NOT NULL CHECK (state IN ('candidate', 'promoted', 'deprecated')),"
        "  runtime TEXT NOT NULL,"
        "  code_digest TEXT NOT NULL REFERENCES artifacts (digest),"
        "  description TEXT NOT NULL,"
        "  doc_json TEXT NOT NULL,"
        "  embedding_json TEXT,"
        "  parent INTEGER NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  promoted_ms INTEGER NOT NULL,"
        "  deprecated_ms INTEGER NOT NULL,"
        "  created_by TEXT NOT NULL,"
        "  promoted_by TEXT NOT NULL,"
        "  deprecated_by TEXT NOT NULL,"
        "  PRIMARY KEY (namespace, name, version)"
        ") STRICT;"
        "CREATE INDEX skill_versions_code_digest ON skill_versions (code_digest);"
        "CREATE TABLE skill_stamp ("
        "  id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  value INTEGER NOT NULL"
        ") STRICT;"
        "INSERT INTO skill_stamp (id, value) VALUES (1, 0);",
        /* 5: sessions (a box run with input files, kept until it expires);
         * the blobs come last, so that reading the metadata stops before
         * their overflow pages */
        "CREATE TABLE sessions ("
        "  id TEXT PRIMARY KEY,"
        "  namespace TEXT NOT NULL,"
        "  function TEXT NOT NULL,"
        "  state TEXT NOT NULL CHECK (state IN ('created', 'running', 'done', 'failed')),"
        "  revision TEXT NOT NULL,"
        "  code_digest TEXT NOT NULL,"
        "  replay_of TEXT NOT NULL,"
        "  created_by TEXT NOT NULL,"
        "  input_digest TEXT NOT NULL,"
        "  input_size INTEGER NOT NULL,"
        "  stdin_digest TEXT NOT NULL,"
        "  stdin_size INTEGER NOT NULL,"
        "  stdout_digest TEXT NOT NULL,"
        "  stdout_size INTEGER NOT NULL,"
        "  output_digest TEXT NOT NULL,"
        "  output_size INTEGER NOT NULL,"
        "  result_json TEXT,"
        "  created_ms INTEGER NOT NULL,"
        "  started_ms INTEGER NOT NULL,"
        "  finished_ms INTEGER NOT NULL,"
        "  expires_ms INTEGER NOT NULL,"
        "  input_data BLOB NOT NULL,"
        "  stdin_data BLOB NOT NULL,"
        "  stdout_data BLOB NOT NULL,"
        "  output_data BLOB NOT NULL"
        ") STRICT;"
        "CREATE INDEX sessions_namespace ON sessions (namespace, id);"
        "CREATE INDEX sessions_expires ON sessions (expires_ms);",
};

/* Map SQLite's (extended) result code to an errno and keep its message. */
static int sqlite_error(Store *s, int rc) {
        Sqlite *q = s->impl;
        int r;

        switch (rc) {
        case SQLITE_CONSTRAINT_PRIMARYKEY:
        case SQLITE_CONSTRAINT_UNIQUE:
                r = -EEXIST;
                break;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                r = -ENOENT;
                break;
        case SQLITE_TOOBIG:
                r = -E2BIG;
                break;
        case SQLITE_NOMEM:
                r = -ENOMEM;
                break;
        default:
                r = -EIO;
        }
        return store_set_error(s, r, "sqlite: %s", q && q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
}

static int sqlite_script(Store *s, const char *sql) {
        Sqlite *q = s->impl;
        int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : sqlite_error(s, rc);
}

static int journal_mode_cb(void *arg, int ncols, char **values, char **names) {
        (void) names;
        if (ncols == 1 && values[0])
                *(bool *) arg = strcasecmp(values[0], "wal") == 0;
        return 0;
}

/* Switch a new database to WAL. The switch wants the file to itself and
 * SQLite answers BUSY at once, without its busy handler, while another
 * connection has it open (several controllers starting together), so wait
 * here. The mode is stored in the file: later opens find it set. */
static int sqlite_wal(Store *s) {
        Sqlite *q = s->impl;
        bool wal = false;
        int rc;

        for (int waited = 0;; waited += 10) {
                rc = sqlite3_exec(q->db, "PRAGMA journal_mode", journal_mode_cb, &wal, NULL);
                if (rc == SQLITE_OK && !wal)
                        rc = sqlite3_exec(q->db, "PRAGMA journal_mode = WAL", journal_mode_cb, &wal, NULL);
                if ((rc & 0xff) != SQLITE_BUSY || waited >= SQLITE_BUSY_MS)
                        break;
                sqlite3_sleep(10);
        }
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc);
        return wal ? 0 : store_set_error(s, -EIO, "sqlite: the database cannot use WAL mode");
}

/* Connection settings. WAL lets readers run beside the one writer, and with
 * synchronous=FULL every commit is on disk before it returns. */
static int sqlite_configure(Store *s) {
        Sqlite *q = s->impl;

        sqlite3_extended_result_codes(q->db, 1);
        sqlite3_busy_timeout(q->db, SQLITE_BUSY_MS);
        int r = sqlite_wal(s);
        if (r < 0)
                return r;
        return sqlite_script(s, "PRAGMA synchronous = FULL;"
                                "PRAGMA foreign_keys = ON;"
                                "PRAGMA trusted_schema = OFF;");
}

static void sqlite_disconnect(Store *s) {
        Sqlite *q = s->impl;
        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(q->stmts[i]);
        sqlite3_close_v2(q->db);
        free(q);
        s->impl = NULL;
}

/* Make the new file's name durable: a power cut must not take away the
 * database whose commits the WAL's fsyncs made durable. */
static int sqlite_sync_dir(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else
                slash[slash == dir] = 0;        /* "/x.db" keeps "/" */
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

/* Make a new database under a temporary name (mkostemp: owner-only, since
 * the store holds token hashes and code; the -wal and -shm files copy the
 * mode), switch it to WAL there, and link it into place. No connection ever
 * sees an empty database file: connections racing to set up an empty file
 * can lose a commit (one treats the other's WAL as stale and deletes it). */
static int sqlite_create(Store *s, const char *path) {
        _cleanup_free_ char *tmp = NULL;
        sqlite3 *db = NULL;

        if (access(path, F_OK) == 0 || errno != ENOENT)
                return 0;       /* there (or unreadable: sqlite3_open says why) */
        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return store_set_error(s, negative_errno(), "sqlite: cannot create %s: %m", tmp);
        int rc = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                store_set_error(s, -EIO, "sqlite: creating %s: %s", path, sqlite3_errmsg(db));
        if (sqlite3_close(db) != SQLITE_OK && rc == SQLITE_OK)
                rc = SQLITE_ERROR;
        int r = rc == SQLITE_OK ? 0 : -EIO;
        /* link() fails with EEXIST when another opener won the race: fine */
        if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
                r = store_set_error(s, negative_errno(), "sqlite: cannot create %s: %m", path);
        unlink(tmp);
        return r < 0 ? r : sqlite_sync_dir(path);
}

static int sqlite_connect(Store *s, const char *path) {
        Sqlite *q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        s->impl = q;
        int r = sqlite_create(s, path);
        if (r < 0)
                return r;
        int rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc);
        return sqlite_configure(s);
}

static int sqlite_reconnect(Store *s) {
        return store_set_error(s, -EIO, "sqlite: no connection to restore");
}

static sqlite3_stmt *sqlite_prepare(Store *s, StoreStmt id, int *ret_rc) {
        Sqlite *q = s->impl;
        if (q->stmts[id])
                return q->stmts[id];
        /* the shared SQL numbers its parameters $1, $2; SQLite spells them ?1, ?2 */
        _cleanup_free_ char *sql = strdup(store_sql[id].sql);
        if (!sql) {
                *ret_rc = SQLITE_NOMEM;
                return NULL;
        }
        for (char *p = sql; *p; p++)
                if (*p == '$')
                        *p = '?';
        *ret_rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->stmts[id], NULL);
        return *ret_rc == SQLITE_OK ? q->stmts[id] : NULL;
}

static int sqlite_bind(sqlite3_stmt *st, const StoreArg *args, size_t n) {
        int rc = SQLITE_OK;
        for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
                int k = (int) i + 1;
                switch (args[i].type) {
                case STORE_ARG_TEXT:
                        rc = sqlite3_bind_text(st, k, args[i].text, -1, SQLITE_STATIC);
                        break;
                case STORE_ARG_INT:
                        rc = sqlite3_bind_int64(st, k, args[i].i);
                        break;
                case STORE_ARG_BLOB:
                        /* a NULL pointer would bind SQL NULL, not an empty blob */
                        rc = sqlite3_bind_blob64(st, k, args[i].blob ? args[i].blob : "", args[i].len,
                                                 SQLITE_STATIC);
                        break;
                }
        }
        return rc;
}

/* Copy the current row out: text and integers as text, blobs as bytes. */
static int sqlite_row(sqlite3_stmt *st, StoreRows *ret) {
        int ncols = sqlite3_column_count(st);
        StoreCell *row = store_rows_add(ret, (size_t) ncols);
        if (!row)
                return -ENOMEM;
        for (int c = 0; c < ncols; c++) {
                int type = sqlite3_column_type(st, c);
                const void *p = type == SQLITE_BLOB ? sqlite3_column_blob(st, c)
                                                    : (const void *) sqlite3_column_text(st, c);
                size_t len = (size_t) sqlite3_column_bytes(st, c);
                row[c].data = malloc(len + 1);
                if (!row[c].data)
                        return -ENOMEM;
                if (p && len)
                        memcpy(row[c].data, p, len);
                row[c].data[len] = 0;
                row[c].len = len;
                row[c].null = type == SQLITE_NULL;
        }
        return 0;
}

static int sqlite_exec(Store *s, StoreStmt id, const StoreArg *args, size_t n, StoreRows *ret) {
        Sqlite *q = s->impl;
        int rc, r = 0;

        sqlite3_stmt *st = sqlite_prepare(s, id, &rc);
        if (!st)
                return sqlite_error(s, rc);
        rc = sqlite_bind(st, args, n);
        if (rc == SQLITE_OK)
                while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                        if (ret && (r = sqlite_row(st, ret)) < 0)
                                break;
        if (r == 0 && rc != SQLITE_DONE)
                r = sqlite_error(s, rc);
        if (r == 0 && ret)
                ret->changes = sqlite3_changes64(q->db);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (r < 0 && ret)
                store_rows_clear(ret);
        return r;
}

static int sqlite_begin(Store *s, bool write) {
        /* IMMEDIATE takes the write lock now (waiting up to the busy timeout),
         * so two writers never both read and then fail to upgrade */
        return sqlite_script(s, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static void sqlite_rollback(Store *s) {
        Sqlite *q = s->impl;
        if (!sqlite3_get_autocommit(q->db))
                sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static int sqlite_commit(Store *s) {
        int r = sqlite_script(s, "COMMIT");
        if (r < 0)
                sqlite_rollback(s);
        return r;
}

const StoreOps store_sqlite_ops = {
        .name = "sqlite",
        .connect = sqlite_connect,
        .disconnect = sqlite_disconnect,
        .reconnect = sqlite_reconnect,
        .exec = sqlite_exec,
        .script = sqlite_script,
        .begin = sqlite_begin,
        .commit = sqlite_commit,
        .rollback = sqlite_rollback,
        .migrations = sqlite_migrations,
};
