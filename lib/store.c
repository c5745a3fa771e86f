/* lib/store.c: the store's operations, written once over the shared SQL in
 * store_sql[] and run by a backend (store_sqlite.c, store_pg.c) through the
 * StoreOps vtable: URL parsing, one lock per handle, transactions with
 * retries and one reconnect, schema migrations, argument checks, and the
 * deploy, list, token, node, audit, skill and session logic. The contract
 * is lib/store.h. */
#define _GNU_SOURCE
#include "store_backend.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "artifact.h"
#include "manifest.h"
#include "util.h"

#define STORE_RETRIES   8               /* serialisation failures retried */
#define STORE_NAME_MAX  253
#define STORE_DOC_MAX   (8u << 20)      /* bytes per JSON document */

/* ---- the statements ----------------------------------------------------- */

#define FN_COLS   "namespace, name, resource_version, latest_revision, spec_json, " \
                  "traffic_json, created_ms, updated_ms"
#define REV_COLS  "namespace, function, number, spec_json, spec_digest, code_digest, created_ms"
#define TOK_COLS  "id, secret_hash, role, namespaces, description, created_ms, revoked_ms"
#define NODE_COLS "name, labels_json, capacity_json, state, heartbeat_ms, registered_ms"
#define FN_KEY    " WHERE namespace = $1 AND name = $2"
#define LLM_COLS  "request_id, at_ms, namespace, caller, endpoint, alias, upstream, chain_json, tokens_in, " \
                  "tokens_out, tokens_counted, latency_us, ttft_us, status, error_type, rules, stream, " \
                  "request_body, response_body, received_ms, request_body_truncated, response_body_truncated"
#define LLM_WHERE " ($2 = '' OR alias = $2) AND at_ms >= $3 AND id < $4 ORDER BY id DESC LIMIT $5"
#define SKILL_COLS "namespace, name, version, state, runtime, code_digest, description, doc_json, " \
                   "embedding_json, parent, created_ms, promoted_ms, deprecated_ms, created_by, promoted_by, " \
                   "deprecated_by"
#define SKILL_KEY  " WHERE namespace = $1 AND name = $2"
#define SESS_COLS  "id, namespace, function, state, revision, code_digest, replay_of, created_by, input_digest, " \
                   "input_size, stdin_digest, stdin_size, stdout_digest, stdout_size, output_digest, output_size, " \
                   "result_json, created_ms, started_ms, finished_ms, expires_ms"
#define SESS_FINISH "UPDATE sessions SET state = $2, result_json = $3, finished_ms = $4, stdout_digest = $5," \
                   " stdout_size = $6, stdout_data = $7, output_digest = $8, output_size = $9, output_data = $10"
#define SESS_RUNNING " WHERE id = $1 AND state = 'running'"

const StoreSql store_sql[_STMT_MAX] = {
        [STMT_SCHEMA_VERSION] = { "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0 },
        [STMT_SCHEMA_INSERT]  = { "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)", 0 },
        [STMT_FN_LOCK]        = { "SELECT resource_version, latest_revision, spec_json, traffic_json"
                                  " FROM functions" FN_KEY, STORE_Q_LOCK },
        [STMT_FN_GET]         = { "SELECT " FN_COLS " FROM functions" FN_KEY, 0 },
        [STMT_FN_EXISTS]      = { "SELECT 1 FROM functions" FN_KEY, 0 },
        [STMT_FN_LIST_NS]     = { "SELECT " FN_COLS " FROM functions WHERE namespace = $1 AND name > $2"
                                  " ORDER BY name LIMIT $3", 0 },
        [STMT_FN_LIST_ALL]    = { "SELECT " FN_COLS " FROM functions WHERE (namespace, name) > ($1, $2)"
                                  " ORDER BY namespace, name LIMIT $3", 0 },
        [STMT_FN_INSERT]      = { "INSERT INTO functions (" FN_COLS ") VALUES ($1, $2, 1, $3, $4, $5, $6, $6)", 0 },
        [STMT_FN_UPDATE]      = { "UPDATE functions SET resource_version = resource_version + 1,"
                                  " latest_revision = $3, spec_json = $4, traffic_json = $5, updated_ms = $6"
                                  FN_KEY, 0 },
        [STMT_FN_TRAFFIC]     = { "UPDATE functions SET resource_version = resource_version + 1,"
                                  " traffic_json = $3, updated_ms = $4" FN_KEY, 0 },
        [STMT_FN_DELETE]      = { "DELETE FROM functions" FN_KEY, 0 },
        [STMT_REV_DIGEST]     = { "SELECT spec_digest FROM revisions"
                                  " WHERE namespace = $1 AND function = $2 AND number = $3", 0 },
        [STMT_REV_INSERT]     = { "INSERT INTO revisions (" REV_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7)", 0 },
        [STMT_REV_GET]        = { "SELECT " REV_COLS " FROM revisions"
                                  " WHERE namespace = $1 AND function = $2 AND number = $3", 0 },
        [STMT_REV_LIST]       = { "SELECT " REV_COLS " FROM revisions"
                                  " WHERE namespace = $1 AND function = $2 AND number < $3"
                                  " ORDER BY number DESC LIMIT $4", 0 },
        [STMT_REV_DELETE_ALL] = { "DELETE FROM revisions WHERE namespace = $1 AND function = $2", 0 },
        [STMT_ART_EXISTS]     = { "SELECT 1 FROM artifacts WHERE digest = $1", 0 },
        [STMT_ART_PUT]        = { "INSERT INTO artifacts (digest, size, data, created_ms) VALUES ($1, $2, $3, $4)"
                                  " ON CONFLICT (digest) DO NOTHING", 0 },
        [STMT_ART_GET]        = { "SELECT data FROM artifacts WHERE digest = $1", STORE_Q_BINARY },
        [STMT_TOK_INSERT]     = { "INSERT INTO tokens (" TOK_COLS ") VALUES ($1, $2, $3, $4, $5, $6, 0)", 0 },
        [STMT_TOK_GET]        = { "SELECT " TOK_COLS " FROM tokens WHERE id = $1", 0 },
        [STMT_TOK_LIST]       = { "SELECT " TOK_COLS " FROM tokens ORDER BY created_ms, id", 0 },
        [STMT_TOK_REVOKE]     = { "UPDATE tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms = 0", 0 },
        [STMT_TOK_COUNT]      = { "SELECT COUNT(*) FROM tokens", 0 },
        [STMT_NODE_PUT]       = { "INSERT INTO nodes (" NODE_COLS ") VALUES ($1, $2, $3, $4, $5, $6)"
                                  " ON CONFLICT (name) DO UPDATE SET labels_json = excluded.labels_json,"
                                  " capacity_json = excluded.capacity_json, state = excluded.state,"
                                  " heartbeat_ms = excluded.heartbeat_ms", 0 },
        [STMT_NODE_LIST]      = { "SELECT " NODE_COLS " FROM nodes ORDER BY name", 0 },
        [STMT_NODE_DELETE]    = { "DELETE FROM nodes WHERE name = $1", 0 },
        [STMT_LLM_INSERT]     = { "INSERT INTO llm_audit (" LLM_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
                                  " $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
                                  " ON CONFLICT (namespace, request_id, at_ms) DO NOTHING", 0 },
        [STMT_LLM_LIST_NS]    = { "SELECT id, " LLM_COLS " FROM llm_audit WHERE namespace = $1 AND" LLM_WHERE, 0 },
        [STMT_LLM_LIST_ALL]   = { "SELECT id, " LLM_COLS " FROM llm_audit WHERE $1 = '' AND" LLM_WHERE, 0 },
        [STMT_LLM_PRUNE]      = { "DELETE FROM llm_audit WHERE id IN"
                                  " (SELECT id FROM llm_audit WHERE at_ms < $1 ORDER BY at_ms LIMIT $2)", 0 },
        [STMT_SKILL_STAMP]    = { "SELECT value FROM skill_stamp WHERE id = 1", 0 },
        [STMT_SKILL_STAMP_BUMP] = { "UPDATE skill_stamp SET value = value + 1 WHERE id = 1", 0 },
        [STMT_SKILL_MAX]      = { "SELECT COALESCE(MAX(version), 0) FROM skill_versions" SKILL_KEY, 0 },
        [STMT_SKILL_EXISTS]   = { "SELECT 1 FROM skill_versions" SKILL_KEY " AND version = $3", 0 },
        [STMT_SKILL_INSERT]   = { "INSERT INTO skill_versions (" SKILL_COLS ") VALUES ($1, $2, $3, $4, $5, $6,"
                                  " $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)", 0 },
        [STMT_SKILL_GET]      = { "SELECT " SKILL_COLS " FROM skill_versions" SKILL_KEY " AND version = $3", 0 },
        [STMT_SKILL_GET_PROMOTED] = { "SELECT " SKILL_COLS " FROM skill_versions" SKILL_KEY
                                  " AND state = 'promoted' ORDER BY version DESC LIMIT 1", 0 },
        [STMT_SKILL_GET_LATEST] = { "SELECT " SKILL_COLS " FROM skill_versions" SKILL_KEY
                                  " ORDER BY version DESC LIMIT 1", 0 },
        [STMT_SKILL_LOCK]     = { "SELECT state FROM skill_versions" SKILL_KEY " AND version = $3", STORE_Q_LOCK },
        [STMT_SKILL_PROMOTE]  = { "UPDATE skill_versions SET state = 'promoted', promoted_ms = $4, promoted_by = $5"
                                  SKILL_KEY " AND version = $3 AND state = 'candidate'", 0 },
        [STMT_SKILL_DEPRECATE] = { "UPDATE skill_versions SET state = 'deprecated', deprecated_ms = $4,"
                                  " deprecated_by = $5" SKILL_KEY " AND version = $3 AND state <> 'deprecated'", 0 },
        [STMT_SKILL_LIST_ALL] = { "SELECT " SKILL_COLS " FROM skill_versions"
                                  " WHERE (namespace, name, version) > ($1, $2, $3)"
                                  " ORDER BY namespace, name, version LIMIT $4", 0 },
        [STMT_SKILL_LIST_NS]  = { "SELECT " SKILL_COLS " FROM skill_versions"
                                  " WHERE namespace = $1 AND (name, version) > ($2, $3)"
                                  " ORDER BY name, version LIMIT $4", 0 },
        [STMT_SKILL_LIST_NAME] = { "SELECT " SKILL_COLS " FROM skill_versions" SKILL_KEY " AND version > $3"
                                  " ORDER BY version LIMIT $4", 0 },
        [STMT_SKILL_LIST_BYNAME] = { "SELECT " SKILL_COLS " FROM skill_versions"
                                  " WHERE name = $2 AND (namespace, version) > ($1, $3)"
                                  " ORDER BY namespace, version LIMIT $4", 0 },
        [STMT_SESS_INSERT]    = { "INSERT INTO sessions (" SESS_COLS ", input_data, stdin_data, stdout_data,"
                                  " output_data) VALUES ($1, $2, $3, 'created', '', '', $4, $5, $6, $7, $8, $9,"
                                  " '', 0, '', 0, NULL, $10, 0, 0, $11, $12, $13, $14, $15)", 0 },
        [STMT_SESS_GET]       = { "SELECT " SESS_COLS " FROM sessions WHERE id = $1", 0 },
        [STMT_SESS_STATE]     = { "SELECT state, function FROM sessions WHERE id = $1", 0 },
        [STMT_SESS_BLOB_INPUT]  = { "SELECT input_data FROM sessions WHERE id = $1", STORE_Q_BINARY },
        [STMT_SESS_BLOB_STDIN]  = { "SELECT stdin_data FROM sessions WHERE id = $1", STORE_Q_BINARY },
        [STMT_SESS_BLOB_STDOUT] = { "SELECT stdout_data FROM sessions WHERE id = $1", STORE_Q_BINARY },
        [STMT_SESS_BLOB_OUTPUT] = { "SELECT output_data FROM sessions WHERE id = $1", STORE_Q_BINARY },
        /* one statement: racing claimers queue on the row, and the losers
         * find it no longer created */
        [STMT_SESS_START]     = { "UPDATE sessions SET state = 'running', function = $2, revision = $3,"
                                  " code_digest = $4, started_ms = $5 WHERE id = $1 AND state = 'created'"
                                  " AND (function = '' OR function = $2)", 0 },
        [STMT_SESS_FINISH]    = { SESS_FINISH ", stdin_digest = $11, stdin_size = $12, stdin_data = $13"
                                  SESS_RUNNING, 0 },
        [STMT_SESS_FINISH_KEEP_STDIN] = { SESS_FINISH SESS_RUNNING, 0 },
        [STMT_SESS_LIST_NS]   = { "SELECT " SESS_COLS " FROM sessions WHERE namespace = $1 AND id < $2"
                                  " ORDER BY id DESC LIMIT $3", 0 },
        [STMT_SESS_LIST_ALL]  = { "SELECT " SESS_COLS " FROM sessions WHERE id < $1 ORDER BY id DESC LIMIT $2", 0 },
        [STMT_SESS_DELETE]    = { "DELETE FROM sessions WHERE id = $1", 0 },
        [STMT_SESS_PRUNE]     = { "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions"
                                  " WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2)", 0 },
};

/* ---- errors, time, rows ------------------------------------------------- */

static __thread char tls_error[512];
static __thread const Store *tls_error_store;

int store_set_error(Store *s, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tls_error, sizeof tls_error, fmt, ap);
        va_end(ap);
        size_t n = strlen(tls_error);
        while (n > 0 && (tls_error[n - 1] == '\n' || tls_error[n - 1] == ' '))
                tls_error[--n] = 0;
        tls_error_store = s;
        return r;
}

/* The calling thread's last error on s; with s NULL, whatever failed last in
 * this thread (how store_open failed, since it returns no handle). */
const char *store_last_error(const Store *s) {
        if (!s || s == tls_error_store)
                return tls_error;
        return "";
}

int64_t store_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_rows_clear(StoreRows *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->nrows * r->ncols; i++)
                free(r->cells[i].data);
        free(r->cells);
        *r = (StoreRows) {};
}

StoreCell *store_rows_add(StoreRows *r, size_t ncols) {
        if (r->nrows == 0)
                r->ncols = ncols;
        if (ncols != r->ncols || ncols == 0)
                return NULL;
        /* capacity doubles: it equals nrows whenever nrows is a power of two */
        if ((r->nrows & (r->nrows - 1)) == 0) {
                size_t cap = r->nrows ? r->nrows * 2 : 1;
                if (cap > SIZE_MAX / sizeof(StoreCell) / ncols)
                        return NULL;
                StoreCell *c = realloc(r->cells, cap * ncols * sizeof(StoreCell));
                if (!c)
                        return NULL;
                r->cells = c;
        }
        StoreCell *row = r->cells + r->nrows * ncols;
        memset(row, 0, ncols * sizeof(StoreCell));
        r->nrows++;
        return row;
}

static const StoreCell *cell(const StoreRows *r, size_t row, size_t col) {
        return &r->cells[row * r->ncols + col];
}

static char *cell_take(StoreRows *r, size_t row, size_t col) {
        return TAKE_PTR(r->cells[row * r->ncols + col].data);
}

static int64_t cell_int(const StoreRows *r, size_t row, size_t col) {
        return strtoll(cell(r, row, col)->data, NULL, 10);
}

/* ---- open, close, locking ----------------------------------------------- */

static bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "sqlite:PATH" (also "sqlite://PATH"), "postgres[ql]://URI", or
 * "postgres[ql]:KEY=VALUE ...". */
static int store_parse_url(const char *url, const StoreOps **ret_ops, const char **ret_info) {
        const char *info;
        if (startswith(url, "sqlite:")) {
                info = url + strlen("sqlite:");
                if (startswith(info, "//"))
                        info += 2;
                *ret_ops = &store_sqlite_ops;
        } else if (startswith(url, "postgres://") || startswith(url, "postgresql://")) {
                info = url;
                *ret_ops = &store_pg_ops;
        } else if (startswith(url, "postgres:") || startswith(url, "postgresql:")) {
                info = strchr(url, ':') + 1;
                *ret_ops = &store_pg_ops;
        } else
                return -EINVAL;
        if (!*info)
                return -EINVAL;
        *ret_info = info;
        return 0;
}

static int store_schema_current(Store *s, int64_t *ret) {
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_SCHEMA_VERSION, NULL, 0, &rows);
        if (r < 0)
                return r;
        *ret = rows.nrows ? cell_int(&rows, 0, 0) : 0;
        return 0;
}

/* Apply migration `version` unless another opener already has: the check
 * and the change are one write transaction. */
static int store_migrate_one(Store *s, int64_t version) {
        int64_t cur = 0;
        int r = s->ops->begin(s, true);
        if (r < 0)
                return r;
        r = s->ops->script(s, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                              "version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)");
        if (r >= 0)
                r = store_schema_current(s, &cur);
        if (r >= 0 && cur < version) {
                r = s->ops->script(s, s->ops->migrations[version - 1]);
                if (r >= 0)
                        r = s->ops->exec(s, STMT_SCHEMA_INSERT,
                                         (StoreArg[]) { ARG_INT(version), ARG_INT(store_now_ms()) }, 2, NULL);
        }
        if (r < 0) {
                s->ops->rollback(s);
                return r;
        }
        return s->ops->commit(s);
}

static int store_migrate(Store *s) {
        int64_t cur = 0;
        int r;

        /* the quick path: one query when nothing is pending (it fails on a
         * new database, which has no schema_migrations yet) */
        if (store_schema_current(s, &cur) >= 0 && cur >= STORE_SCHEMA_LATEST) {
                if (cur == STORE_SCHEMA_LATEST)
                        return 0;
                return store_set_error(s, -EPROTO, "the database's schema version %" PRId64
                                       " is newer than this fnbox's (%d)", cur, STORE_SCHEMA_LATEST);
        }
        if (s->ops->migrate_lock && (r = s->ops->migrate_lock(s)) < 0)
                return r;
        r = 0;
        for (int64_t v = 1; v <= STORE_SCHEMA_LATEST && r >= 0; v++)
                r = store_migrate_one(s, v);
        if (s->ops->migrate_unlock)
                s->ops->migrate_unlock(s);
        return r;
}

int store_open(const char *url, Store **ret) {
        const StoreOps *ops;
        const char *info;

        if (!url || !ret || store_parse_url(url, &ops, &info) < 0)
                return store_set_error(NULL, -EINVAL, "the store URL must be sqlite:PATH or postgres://...");
        Store *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->ops = ops;
        pthread_mutex_init(&s->lock, NULL);
        int r = ops->connect(s, info);
        if (r >= 0)
                r = store_migrate(s);
        if (r < 0) {
                store_close(s);
                return r;
        }
        *ret = s;
        return 0;
}

void store_close(Store *s) {
        if (!s)
                return;
        if (s->impl)
                s->ops->disconnect(s);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

void store_closep(Store **s) {
        store_close(*s);
        *s = NULL;
}

const char *store_backend(const Store *s) {
        return s ? s->ops->name : NULL;
}

typedef enum StoreTx { TX_NONE, TX_READ, TX_WRITE } StoreTx;
typedef int (*StoreBody)(Store *s, void *arg);

static int store_tx_once(Store *s, StoreTx tx, StoreBody body, void *arg) {
        if (tx == TX_NONE)
                return body(s, arg);
        int r = s->ops->begin(s, tx == TX_WRITE);
        if (r < 0)
                return r;
        r = body(s, arg);
        if (r < 0) {
                s->ops->rollback(s);
                return r;
        }
        int k = s->ops->commit(s);
        return k < 0 ? k : r;
}

/* Run body under the handle's lock, in a transaction when asked. A body
 * runs again after a serialisation failure (-EAGAIN), and once more after
 * a reconnect when the connection broke (-ENOTCONN), so a body must set its
 * results only when it succeeds. */
static int store_call(Store *s, StoreTx tx, StoreBody body, void *arg) {
        bool reconnected = false;
        int r;

        if (!s)
                return -EINVAL;
        pthread_mutex_lock(&s->lock);
        for (unsigned attempt = 0;; attempt++) {
                r = store_tx_once(s, tx, body, arg);
                if (r == -ENOTCONN && !reconnected) {
                        reconnected = true;
                        if (s->ops->reconnect(s) >= 0)
                                continue;
                } else if (r == -EAGAIN && attempt < STORE_RETRIES)
                        continue;
                break;
        }
        pthread_mutex_unlock(&s->lock);
        return r == -ENOTCONN || r == -EAGAIN ? -EIO : r;
}

static int schema_version_body(Store *s, void *arg) {
        return store_schema_current(s, arg);
}

int store_schema_version(Store *s) {
        int64_t v = 0;
        int r = store_call(s, TX_NONE, schema_version_body, &v);
        return r < 0 ? r : (int) v;
}

/* ---- argument checks ---------------------------------------------------- */

/* Names and ids: 1-253 bytes, no '/' (the list cursor's separator), no
 * control characters. The controller checks the finer rules (DNS-1123). */
static bool name_ok(const char *s) {
        if (!s)
                return false;
        size_t n = 0;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++, n++)
                if (*p == '/' || *p < 0x20 || *p == 0x7f)
                        return false;
        return n > 0 && n <= STORE_NAME_MAX;
}

static bool digest_ok(const char *s) {
        if (!s || !startswith(s, "sha256:") || strlen(s) != 71)
                return false;
        for (const char *p = s + 7; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static int check_doc(const char *s) {
        if (!s)
                return -EINVAL;
        return strlen(s) > STORE_DOC_MAX ? -E2BIG : 0;
}

static int check_deploy(const StoreDeploy *d) {
        int r;
        if (!d || !name_ok(d->namespace_) || !name_ok(d->name) || !digest_ok(d->code_digest))
                return -EINVAL;
        if (!d->spec_digest || !*d->spec_digest || strlen(d->spec_digest) > 128)
                return -EINVAL;
        if ((r = check_doc(d->spec_json)) < 0 || (r = check_doc(d->traffic_json)) < 0 ||
            (r = check_doc(d->revision_json)) < 0)
                return r;
        return d->expected_version >= -1 ? 0 : -EINVAL;
}

static int invalid(Store *s, int r, const char *what) {
        return store_set_error(s, r, "%s", what);
}

/* ---- functions and revisions -------------------------------------------- */

typedef struct DeployCall {
        const StoreDeploy *d;
        StoreDeployResult res;
} DeployCall;

static int artifact_present(Store *s, const char *digest) {
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_ART_EXISTS, (StoreArg[]) { ARG_TEXT(digest) }, 1, &rows);
        return r < 0 ? r : rows.nrows > 0;
}

/* 1 when the deploy needs a new revision: there is none yet, or the latest
 * one has another spec digest. */
static int deploy_needs_revision(Store *s, const StoreDeploy *d, int64_t latest) {
        _cleanup_(store_rows_clear) StoreRows rows = {};
        if (latest <= 0)
                return 1;
        int r = s->ops->exec(s, STMT_REV_DIGEST, (StoreArg[]) {
                ARG_TEXT(d->namespace_), ARG_TEXT(d->name), ARG_INT(latest) }, 3, &rows);
        if (r < 0)
                return r;
        return rows.nrows == 0 || strcmp(cell(&rows, 0, 0)->data, d->spec_digest) != 0;
}

/* Write the function row: insert it, or update it when anything changed.
 * Two first deploys racing on PostgreSQL both find no row to lock; the
 * loser's insert hits the key and its transaction runs again (-EAGAIN). */
static int deploy_write_function(Store *s, const StoreDeploy *d, const StoreRows *fn,
                                 int64_t number, bool new_rev, int64_t now, int64_t *ret_version) {
        StoreArg args[] = { ARG_TEXT(d->namespace_), ARG_TEXT(d->name), ARG_INT(number),
                            ARG_TEXT(d->spec_json), ARG_TEXT(d->traffic_json), ARG_INT(now) };
        int r;

        if (fn->nrows == 0) {
                r = s->ops->exec(s, STMT_FN_INSERT, args, ELEMENTSOF(args), NULL);
                *ret_version = 1;
                return r == -EEXIST ? -EAGAIN : r;
        }
        int64_t version = cell_int(fn, 0, 0);
        bool changed = new_rev || strcmp(cell(fn, 0, 2)->data, d->spec_json) != 0 ||
                       strcmp(cell(fn, 0, 3)->data, d->traffic_json) != 0;
        *ret_version = changed ? version + 1 : version;
        return changed ? s->ops->exec(s, STMT_FN_UPDATE, args, ELEMENTSOF(args), NULL) : 0;
}

static int deploy_body(Store *s, void *arg) {
        DeployCall *c = arg;
        const StoreDeploy *d = c->d;
        _cleanup_(store_rows_clear) StoreRows fn = {};
        int64_t now = store_now_ms(), version = 0, latest = 0, rv;
        int r;

        r = s->ops->exec(s, STMT_FN_LOCK, (StoreArg[]) { ARG_TEXT(d->namespace_), ARG_TEXT(d->name) }, 2, &fn);
        if (r < 0)
                return r;
        if (fn.nrows > 0) {
                version = cell_int(&fn, 0, 0);
                latest = cell_int(&fn, 0, 1);
        }
        if (d->expected_version >= 0 && d->expected_version != version)
                return store_set_error(s, -ESTALE, "resource version is %" PRId64 ", not %" PRId64,
                                       version, d->expected_version);
        if ((r = artifact_present(s, d->code_digest)) <= 0)
                return r < 0 ? r : store_set_error(s, -ENOENT, "no artifact %s", d->code_digest);
        int new_rev = deploy_needs_revision(s, d, latest);
        if (new_rev < 0)
                return new_rev;
        int64_t number = new_rev ? latest + 1 : latest;
        r = deploy_write_function(s, d, &fn, number, new_rev, now, &rv);
        if (r >= 0 && new_rev)
                r = s->ops->exec(s, STMT_REV_INSERT, (StoreArg[]) {
                        ARG_TEXT(d->namespace_), ARG_TEXT(d->name), ARG_INT(number),
                        ARG_TEXT(d->revision_json), ARG_TEXT(d->spec_digest),
                        ARG_TEXT(d->code_digest), ARG_INT(now) }, 7, NULL);
        if (r < 0)
                return r;
        c->res = (StoreDeployResult) { .revision = number, .revision_created = new_rev,
                                       .function_created = fn.nrows == 0, .resource_version = rv };
        return 0;
}

int store_deploy(Store *s, const StoreDeploy *d, StoreDeployResult *ret) {
        int r = check_deploy(d);
        if (r < 0)
                return invalid(s, r, "invalid deploy arguments");
        DeployCall c = { .d = d };
        r = store_call(s, TX_WRITE, deploy_body, &c);
        if (r >= 0 && ret)
                *ret = c.res;
        return r;
}

static void function_from_row(StoreFunction *f, StoreRows *rows, size_t i) {
        *f = (StoreFunction) {
                .namespace_ = cell_take(rows, i, 0),
                .name = cell_take(rows, i, 1),
                .resource_version = cell_int(rows, i, 2),
                .latest_revision = cell_int(rows, i, 3),
                .spec_json = cell_take(rows, i, 4),
                .traffic_json = cell_take(rows, i, 5),
                .created_ms = cell_int(rows, i, 6),
                .updated_ms = cell_int(rows, i, 7),
        };
}

typedef struct GetCall {
        const char *a, *b;
        int64_t number;
        void *ret;
} GetCall;

static int function_get_body(Store *s, void *arg) {
        GetCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_FN_GET, (StoreArg[]) { ARG_TEXT(c->a), ARG_TEXT(c->b) }, 2, &rows);
        if (r < 0)
                return r;
        if (rows.nrows == 0)
                return store_set_error(s, -ENOENT, "no function %s/%s", c->a, c->b);
        function_from_row(c->ret, &rows, 0);
        return 0;
}

int store_function_get(Store *s, const char *ns, const char *name, StoreFunction *ret) {
        if (!name_ok(ns) || !name_ok(name) || !ret)
                return invalid(s, -EINVAL, "invalid function name");
        StoreFunction f = {};
        int r = store_call(s, TX_NONE, function_get_body, &(GetCall) { ns, name, 0, &f });
        if (r >= 0)
                *ret = f;
        return r;
}

typedef struct ListCall {
        const char *ns, *after_ns, *after_name;
        size_t limit;
        StoreFunction *items;
        size_t n;
        char *next;
} ListCall;

static int function_list_body(Store *s, void *arg) {
        ListCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r;

        if (c->ns)
                r = s->ops->exec(s, STMT_FN_LIST_NS, (StoreArg[]) {
                        ARG_TEXT(c->ns), ARG_TEXT(c->after_name), ARG_INT(c->limit + 1) }, 3, &rows);
        else
                r = s->ops->exec(s, STMT_FN_LIST_ALL, (StoreArg[]) {
                        ARG_TEXT(c->after_ns), ARG_TEXT(c->after_name), ARG_INT(c->limit + 1) }, 3, &rows);
        if (r < 0)
                return r;
        size_t n = rows.nrows > c->limit ? c->limit : rows.nrows;
        _cleanup_free_ char *next = NULL;
        if (rows.nrows > c->limit &&
            asprintf(&next, "%s/%s", cell(&rows, n - 1, 0)->data, cell(&rows, n - 1, 1)->data) < 0)
                return -ENOMEM;
        StoreFunction *items = calloc(n ? n : 1, sizeof *items);
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                function_from_row(&items[i], &rows, i);
        c->items = items;
        c->n = n;
        c->next = TAKE_PTR(next);
        return 0;
}

int store_function_list(Store *s, const char *ns, const char *after, size_t limit,
                        StoreFunction **ret, size_t *ret_n, char **ret_next) {
        _cleanup_free_ char *cursor = strdup(after ? after : "");
        if (!cursor)
                return -ENOMEM;
        if ((ns && !name_ok(ns)) || limit == 0 || limit > STORE_LIST_MAX || !ret || !ret_n)
                return invalid(s, -EINVAL, "invalid list arguments");
        ListCall c = { .ns = ns, .after_ns = "", .after_name = "", .limit = limit };
        if (*cursor) {
                char *slash = strchr(cursor, '/');
                if (!slash)
                        return invalid(s, -EINVAL, "a list cursor is NAMESPACE/NAME");
                *slash = 0;
                c.after_ns = cursor;
                c.after_name = slash + 1;
                if (ns && strcmp(ns, cursor) != 0)
                        return invalid(s, -EINVAL, "the list cursor is from another namespace");
        }
        int r = store_call(s, TX_NONE, function_list_body, &c);
        if (r < 0)
                return r;
        *ret = c.items;
        *ret_n = c.n;
        if (ret_next)
                *ret_next = c.next;
        else
                free(c.next);
        return 0;
}

typedef struct UpdateCall {
        const char *ns, *name, *doc;
        int64_t expected, version;
} UpdateCall;

/* Lock the function row; -ENOENT or -ESTALE unless it exists at the
 * expected version. On success *ret_rows holds STMT_FN_LOCK's columns. */
static int function_lock(Store *s, const UpdateCall *c, StoreRows *ret_rows) {
        int r = s->ops->exec(s, STMT_FN_LOCK, (StoreArg[]) { ARG_TEXT(c->ns), ARG_TEXT(c->name) }, 2, ret_rows);
        if (r < 0)
                return r;
        if (ret_rows->nrows == 0)
                return store_set_error(s, -ENOENT, "no function %s/%s", c->ns, c->name);
        int64_t version = cell_int(ret_rows, 0, 0);
        if (c->expected >= 0 && c->expected != version)
                return store_set_error(s, -ESTALE, "resource version is %" PRId64 ", not %" PRId64,
                                       version, c->expected);
        return 0;
}

static int traffic_set_body(Store *s, void *arg) {
        UpdateCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows fn = {};
        int r = function_lock(s, c, &fn);
        if (r < 0)
                return r;
        c->version = cell_int(&fn, 0, 0);
        if (strcmp(cell(&fn, 0, 3)->data, c->doc) == 0)
                return 0;
        r = s->ops->exec(s, STMT_FN_TRAFFIC, (StoreArg[]) {
                ARG_TEXT(c->ns), ARG_TEXT(c->name), ARG_TEXT(c->doc), ARG_INT(store_now_ms()) }, 4, NULL);
        if (r < 0)
                return r;
        c->version++;
        return 0;
}

int store_traffic_set(Store *s, const char *ns, const char *name, int64_t expected_version,
                      const char *traffic_json, int64_t *ret_version) {
        int r = check_doc(traffic_json);
        if (!name_ok(ns) || !name_ok(name) || expected_version < -1)
                r = -EINVAL;
        if (r < 0)
                return invalid(s, r, "invalid traffic arguments");
        UpdateCall c = { ns, name, traffic_json, expected_version, 0 };
        r = store_call(s, TX_WRITE, traffic_set_body, &c);
        if (r >= 0 && ret_version)
                *ret_version = c.version;
        return r;
}

static int function_delete_body(Store *s, void *arg) {
        UpdateCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows fn = {};
        StoreArg key[] = { ARG_TEXT(c->ns), ARG_TEXT(c->name) };
        int r = function_lock(s, c, &fn);
        if (r >= 0)
                r = s->ops->exec(s, STMT_REV_DELETE_ALL, key, 2, NULL);
        if (r >= 0)
                r = s->ops->exec(s, STMT_FN_DELETE, key, 2, NULL);
        return r;
}

int store_function_delete(Store *s, const char *ns, const char *name, int64_t expected_version) {
        if (!name_ok(ns) || !name_ok(name) || expected_version < -1)
                return invalid(s, -EINVAL, "invalid function name");
        UpdateCall c = { ns, name, NULL, expected_version, 0 };
        return store_call(s, TX_WRITE, function_delete_body, &c);
}

static void revision_from_row(StoreRevision *v, StoreRows *rows, size_t i) {
        *v = (StoreRevision) {
                .namespace_ = cell_take(rows, i, 0),
                .function = cell_take(rows, i, 1),
                .number = cell_int(rows, i, 2),
                .spec_json = cell_take(rows, i, 3),
                .spec_digest = cell_take(rows, i, 4),
                .code_digest = cell_take(rows, i, 5),
                .created_ms = cell_int(rows, i, 6),
        };
}

static int revision_get_body(Store *s, void *arg) {
        GetCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_REV_GET, (StoreArg[]) {
                ARG_TEXT(c->a), ARG_TEXT(c->b), ARG_INT(c->number) }, 3, &rows);
        if (r < 0)
                return r;
        if (rows.nrows == 0)
                return store_set_error(s, -ENOENT, "no revision %s/%s-%05" PRId64, c->a, c->b, c->number);
        revision_from_row(c->ret, &rows, 0);
        return 0;
}

int store_revision_get(Store *s, const char *ns, const char *function, int64_t number, StoreRevision *ret) {
        if (!name_ok(ns) || !name_ok(function) || number <= 0 || !ret)
                return invalid(s, -EINVAL, "invalid revision name");
        StoreRevision v = {};
        int r = store_call(s, TX_NONE, revision_get_body, &(GetCall) { ns, function, number, &v });
        if (r >= 0)
                *ret = v;
        return r;
}

typedef struct RevListCall {
        const char *ns, *function;
        int64_t before;
        size_t limit;
        StoreRevision *items;
        size_t n;
} RevListCall;

static int revision_list_body(Store *s, void *arg) {
        RevListCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows fn = {}, rows = {};
        store_revision_array_free(TAKE_PTR(c->items), c->n);
        c->n = 0;
        int r = s->ops->exec(s, STMT_FN_EXISTS, (StoreArg[]) { ARG_TEXT(c->ns), ARG_TEXT(c->function) }, 2, &fn);
        if (r < 0)
                return r;
        if (fn.nrows == 0)
                return store_set_error(s, -ENOENT, "no function %s/%s", c->ns, c->function);
        r = s->ops->exec(s, STMT_REV_LIST, (StoreArg[]) {
                ARG_TEXT(c->ns), ARG_TEXT(c->function), ARG_INT(c->before), ARG_INT(c->limit) }, 4, &rows);
        if (r < 0)
                return r;
        StoreRevision *items = calloc(rows.nrows ? rows.nrows : 1, sizeof *items);
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < rows.nrows; i++)
                revision_from_row(&items[i], &rows, i);
        c->items = items;
        c->n = rows.nrows;
        return 0;
}

int store_revision_list(Store *s, const char *ns, const char *function, int64_t before, size_t limit,
                        StoreRevision **ret, size_t *ret_n) {
        if (!name_ok(ns) || !name_ok(function) || limit == 0 || limit > STORE_LIST_MAX || !ret || !ret_n)
                return invalid(s, -EINVAL, "invalid revision list arguments");
        RevListCall c = { ns, function, before > 0 ? before : INT64_MAX, limit, NULL, 0 };
        int r = store_call(s, TX_READ, revision_list_body, &c);
        if (r < 0) {
                store_revision_array_free(c.items, c.n);
                return r;
        }
        *ret = c.items;
        *ret_n = c.n;
        return 0;
}

/* ---- artifacts ---------------------------------------------------------- */

typedef struct ArtifactCall {
        const char *digest;
        const void *data;
        size_t len;
        void *ret_data;
} ArtifactCall;

static int artifact_put_body(Store *s, void *arg) {
        ArtifactCall *c = arg;
        int r = artifact_present(s, c->digest);
        if (r != 0)
                return r < 0 ? r : 0;
        return s->ops->exec(s, STMT_ART_PUT, (StoreArg[]) {
                ARG_TEXT(c->digest), ARG_INT((int64_t) c->len), ARG_BLOB(c->data, c->len),
                ARG_INT(store_now_ms()) }, 4, NULL);
}

int store_artifact_put(Store *s, const char *digest, const void *data, size_t len) {
        if (!digest_ok(digest) || (!data && len > 0))
                return invalid(s, -EINVAL, "an artifact digest is sha256: and 64 hex digits");
        if (len > STORE_ARTIFACT_MAX)
                return invalid(s, -E2BIG, "the artifact is over the size limit");
        return store_call(s, TX_NONE, artifact_put_body, &(ArtifactCall) { digest, data, len, NULL });
}

static int artifact_get_body(Store *s, void *arg) {
        ArtifactCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_ART_GET, (StoreArg[]) { ARG_TEXT(c->digest) }, 1, &rows);
        if (r < 0)
                return r;
        if (rows.nrows == 0)
                return store_set_error(s, -ENOENT, "no artifact %s", c->digest);
        c->len = cell(&rows, 0, 0)->len;
        c->ret_data = cell_take(&rows, 0, 0);
        return 0;
}

int store_artifact_get(Store *s, const char *digest, void **ret_data, size_t *ret_len) {
        if (!digest_ok(digest) || !ret_data || !ret_len)
                return invalid(s, -EINVAL, "an artifact digest is sha256: and 64 hex digits");
        ArtifactCall c = { digest, NULL, 0, NULL };
        int r = store_call(s, TX_NONE, artifact_get_body, &c);
        if (r < 0)
                return r;
        *ret_data = c.ret_data;
        *ret_len = c.len;
        return 0;
}

static int artifact_exists_body(Store *s, void *arg) {
        return artifact_present(s, ((ArtifactCall *) arg)->digest);
}

int store_artifact_exists(Store *s, const char *digest) {
        if (!digest_ok(digest))
                return invalid(s, -EINVAL, "an artifact digest is sha256: and 64 hex digits");
        return store_call(s, TX_NONE, artifact_exists_body, &(ArtifactCall) { digest, NULL, 0, NULL });
}

/* ---- tokens ------------------------------------------------------------- */

static void token_from_row(StoreToken *t, StoreRows *rows, size_t i) {
        *t = (StoreToken) {
                .id = cell_take(rows, i, 0),
                .secret_hash = cell_take(rows, i, 1),
                .role = cell_take(rows, i, 2),
                .namespaces = cell_take(rows, i, 3),
                .description = cell_take(rows, i, 4),
                .created_ms = cell_int(rows, i, 5),
                .revoked_ms = cell_int(rows, i, 6),
        };
}

static int token_create_body(Store *s, void *arg) {
        const StoreToken *t = arg;
        int r = s->ops->exec(s, STMT_TOK_INSERT, (StoreArg[]) {
                ARG_TEXT(t->id), ARG_TEXT(t->secret_hash), ARG_TEXT(t->role), ARG_TEXT(t->namespaces),
                ARG_TEXT(t->description ? t->description : ""),
                ARG_INT(t->created_ms > 0 ? t->created_ms : store_now_ms()) }, 6, NULL);
        return r == -EEXIST ? store_set_error(s, r, "token %s exists", t->id) : r;
}

int store_token_create(Store *s, const StoreToken *t) {
        if (!t || !name_ok(t->id) || !t->secret_hash || !*t->secret_hash || !name_ok(t->role) ||
            !t->namespaces || check_doc(t->description ? t->description : "") < 0)
                return invalid(s, -EINVAL, "invalid token");
        return store_call(s, TX_NONE, token_create_body, (void *) t);
}

static int token_get_body(Store *s, void *arg) {
        GetCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_TOK_GET, (StoreArg[]) { ARG_TEXT(c->a) }, 1, &rows);
        if (r < 0)
                return r;
        if (rows.nrows == 0)
                return store_set_error(s, -ENOENT, "no token %s", c->a);
        if (c->ret)
                token_from_row(c->ret, &rows, 0);
        return 0;
}

int store_token_get(Store *s, const char *id, StoreToken *ret) {
        if (!name_ok(id) || !ret)
                return invalid(s, -EINVAL, "invalid token id");
        StoreToken t = {};
        int r = store_call(s, TX_NONE, token_get_body, &(GetCall) { id, NULL, 0, &t });
        if (r >= 0)
                *ret = t;
        return r;
}

static int token_list_body(Store *s, void *arg) {
        store_rows_clear(arg);
        return s->ops->exec(s, STMT_TOK_LIST, NULL, 0, arg);
}

int store_token_list(Store *s, StoreToken **ret, size_t *ret_n) {
        _cleanup_(store_rows_clear) StoreRows rows = {};
        if (!ret || !ret_n)
                return -EINVAL;
        int r = store_call(s, TX_NONE, token_list_body, &rows);
        if (r < 0)
                return r;
        StoreToken *items = calloc(rows.nrows ? rows.nrows : 1, sizeof *items);
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < rows.nrows; i++)
                token_from_row(&items[i], &rows, i);
        *ret = items;
        *ret_n = rows.nrows;
        return 0;
}

static int token_revoke_body(Store *s, void *arg) {
        GetCall *c = arg;
        StoreRows rows = {};
        int r = s->ops->exec(s, STMT_TOK_REVOKE, (StoreArg[]) { ARG_TEXT(c->a), ARG_INT(store_now_ms()) }, 2, &rows);
        int64_t changes = rows.changes;
        store_rows_clear(&rows);
        if (r < 0 || changes > 0)
                return r;
        /* nothing changed: revoked already (0), or no such token */
        return token_get_body(s, c);
}

int store_token_revoke(Store *s, const char *id) {
        if (!name_ok(id))
                return invalid(s, -EINVAL, "invalid token id");
        return store_call(s, TX_WRITE, token_revoke_body, &(GetCall) { id, NULL, 0, NULL });
}

static int token_count_body(Store *s, void *arg) {
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_TOK_COUNT, NULL, 0, &rows);
        if (r < 0)
                return r;
        *(int64_t *) arg = rows.nrows ? cell_int(&rows, 0, 0) : 0;
        return 0;
}

int store_token_count(Store *s, int64_t *ret) {
        int64_t n = 0;
        if (!ret)
                return -EINVAL;
        int r = store_call(s, TX_NONE, token_count_body, &n);
        if (r >= 0)
                *ret = n;
        return r;
}

/* ---- nodes -------------------------------------------------------------- */

static int node_put_body(Store *s, void *arg) {
        const StoreNode *n = arg;
        int64_t now = store_now_ms();
        return s->ops->exec(s, STMT_NODE_PUT, (StoreArg[]) {
                ARG_TEXT(n->name), ARG_TEXT(n->labels_json), ARG_TEXT(n->capacity_json), ARG_TEXT(n->state),
                ARG_INT(n->heartbeat_ms > 0 ? n->heartbeat_ms : now),
                ARG_INT(n->registered_ms > 0 ? n->registered_ms : now) }, 6, NULL);
}

int store_node_put(Store *s, const StoreNode *n) {
        if (!n || !name_ok(n->name) || !name_ok(n->state) || check_doc(n->labels_json) < 0 ||
            check_doc(n->capacity_json) < 0)
                return invalid(s, -EINVAL, "invalid node");
        return store_call(s, TX_NONE, node_put_body, (void *) n);
}

static int node_list_body(Store *s, void *arg) {
        store_rows_clear(arg);
        return s->ops->exec(s, STMT_NODE_LIST, NULL, 0, arg);
}

int store_node_list(Store *s, StoreNode **ret, size_t *ret_n) {
        _cleanup_(store_rows_clear) StoreRows rows = {};
        if (!ret || !ret_n)
                return -EINVAL;
        int r = store_call(s, TX_NONE, node_list_body, &rows);
        if (r < 0)
                return r;
        StoreNode *items = calloc(rows.nrows ? rows.nrows : 1, sizeof *items);
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < rows.nrows; i++)
                items[i] = (StoreNode) {
                        .name = cell_take(&rows, i, 0),
                        .labels_json = cell_take(&rows, i, 1),
                        .capacity_json = cell_take(&rows, i, 2),
                        .state = cell_take(&rows, i, 3),
                        .heartbeat_ms = cell_int(&rows, i, 4),
                        .registered_ms = cell_int(&rows, i, 5),
                };
        *ret = items;
        *ret_n = rows.nrows;
        return 0;
}

/* Run a statement that writes: how many rows it changed, or a negative errno. */
static int64_t exec_changes(Store *s, StoreStmt id, const StoreArg *args, size_t n) {
        StoreRows rows = {};
        int r = s->ops->exec(s, id, args, n, &rows);
        int64_t changes = rows.changes;
        store_rows_clear(&rows);
        return r < 0 ? r : changes;
}

static int node_delete_body(Store *s, void *arg) {
        const char *name = arg;
        int64_t changes = exec_changes(s, STMT_NODE_DELETE, (StoreArg[]) { ARG_TEXT(name) }, 1);
        if (changes < 0)
                return (int) changes;
        return changes > 0 ? 0 : store_set_error(s, -ENOENT, "no node %s", name);
}

int store_node_delete(Store *s, const char *name) {
        if (!name_ok(name))
                return invalid(s, -EINVAL, "invalid node name");
        return store_call(s, TX_NONE, node_delete_body, (void *) name);
}

/* ---- LLM gateway audit records ------------------------------------------ */

#define LLM_REQUEST_ID_MAX 128

/* Text of at most max bytes without control characters; "" allowed
 * when empty_ok. */
static bool llm_text_ok(const char *t, size_t max, bool empty_ok) {
        if (!t)
                return false;
        size_t n = 0;
        for (const unsigned char *p = (const unsigned char *) t; *p; p++, n++)
                if (*p < 0x20 || *p == 0x7f || n >= max)
                        return false;
        return n > 0 || empty_ok;
}

/* The first invalid field of a record, or NULL. */
static const char *llm_audit_invalid(const StoreLlmAudit *a) {
        if (!llm_text_ok(a->request_id, LLM_REQUEST_ID_MAX, false))
                return "request_id";
        if (!name_ok(a->namespace_))
                return "namespace";
        if (!llm_text_ok(a->caller, STORE_LLM_FIELD_MAX, false))
                return "caller";
        if (!llm_text_ok(a->endpoint, STORE_LLM_FIELD_MAX, false))
                return "endpoint";
        if (!llm_text_ok(a->alias, STORE_LLM_FIELD_MAX, true))
                return "alias";
        if (!llm_text_ok(a->upstream, STORE_LLM_FIELD_MAX, true))
                return "upstream";
        if (!llm_text_ok(a->error_type, STORE_LLM_FIELD_MAX, true))
                return "error_type";
        if (!llm_text_ok(a->rules, STORE_LLM_FIELD_MAX, true))
                return "rules";
        if (check_doc(a->chain_json) < 0)
                return "chain_json";
        if ((a->request_body && strlen(a->request_body) > STORE_DOC_MAX) ||
            (a->response_body && strlen(a->response_body) > STORE_DOC_MAX))
                return "body";
        if (a->at_ms < 0 || a->tokens_in < 0 || a->tokens_out < 0 || a->latency_us < 0 || a->ttft_us < -1 ||
            a->status < 100 || a->status > 599)
                return "number";
        return NULL;
}

typedef struct LlmAddCall {
        const StoreLlmAudit *recs;
        size_t n;
        int64_t added;
} LlmAddCall;

static int llm_audit_add_body(Store *s, void *arg) {
        LlmAddCall *c = arg;
        int64_t now = store_now_ms(), added = 0;
        for (size_t i = 0; i < c->n; i++) {
                const StoreLlmAudit *a = &c->recs[i];
                StoreRows rows = {};
                int r = s->ops->exec(s, STMT_LLM_INSERT, (StoreArg[]) {
                        ARG_TEXT(a->request_id), ARG_INT(a->at_ms), ARG_TEXT(a->namespace_), ARG_TEXT(a->caller),
                        ARG_TEXT(a->endpoint), ARG_TEXT(a->alias), ARG_TEXT(a->upstream), ARG_TEXT(a->chain_json),
                        ARG_INT(a->tokens_in), ARG_INT(a->tokens_out), ARG_INT(a->tokens_counted),
                        ARG_INT(a->latency_us), ARG_INT(a->ttft_us), ARG_INT(a->status), ARG_TEXT(a->error_type),
                        ARG_TEXT(a->rules), ARG_INT(a->stream), ARG_TEXT(a->request_body),
                        ARG_TEXT(a->response_body), ARG_INT(now), ARG_INT(a->request_body_truncated),
                        ARG_INT(a->response_body_truncated) }, 22, &rows);
                added += rows.changes > 0;
                store_rows_clear(&rows);
                if (r < 0)
                        return r;
        }
        c->added = added;
        return 0;
}

int store_llm_audit_add(Store *s, const StoreLlmAudit *recs, size_t n) {
        if (n > STORE_LLM_AUDIT_BATCH_MAX)
                return invalid(s, -E2BIG, "too many audit records in one batch");
        if (n > 0 && !recs)
                return invalid(s, -EINVAL, "no audit records");
        for (size_t i = 0; i < n; i++) {
                const char *field = llm_audit_invalid(&recs[i]);
                if (field)
                        return store_set_error(s, -EINVAL, "audit record %zu: invalid %s", i, field);
        }
        if (n == 0)
                return 0;
        LlmAddCall c = { recs, n, 0 };
        int r = store_call(s, TX_WRITE, llm_audit_add_body, &c);
        return r < 0 ? r : (int) c.added;
}

typedef struct LlmListCall {
        const StoreLlmAuditQuery *q;
        StoreRows rows;
} LlmListCall;

static int llm_audit_list_body(Store *s, void *arg) {
        LlmListCall *c = arg;
        const StoreLlmAuditQuery *q = c->q;
        store_rows_clear(&c->rows);
        return s->ops->exec(s, q->namespace_ ? STMT_LLM_LIST_NS : STMT_LLM_LIST_ALL, (StoreArg[]) {
                ARG_TEXT(q->namespace_ ? q->namespace_ : ""), ARG_TEXT(q->alias ? q->alias : ""),
                ARG_INT(q->since_ms), ARG_INT(q->before_id > 0 ? q->before_id : INT64_MAX),
                ARG_INT((int64_t) q->limit) }, 5, &c->rows);
}

static void llm_audit_from_row(StoreLlmAudit *a, StoreRows *rows, size_t i) {
        *a = (StoreLlmAudit) {
                .id = cell_int(rows, i, 0),
                .request_id = cell_take(rows, i, 1),
                .at_ms = cell_int(rows, i, 2),
                .namespace_ = cell_take(rows, i, 3),
                .caller = cell_take(rows, i, 4),
                .endpoint = cell_take(rows, i, 5),
                .alias = cell_take(rows, i, 6),
                .upstream = cell_take(rows, i, 7),
                .chain_json = cell_take(rows, i, 8),
                .tokens_in = cell_int(rows, i, 9),
                .tokens_out = cell_int(rows, i, 10),
                .tokens_counted = cell_int(rows, i, 11) != 0,
                .latency_us = cell_int(rows, i, 12),
                .ttft_us = cell_int(rows, i, 13),
                .status = cell_int(rows, i, 14),
                .error_type = cell_take(rows, i, 15),
                .rules = cell_take(rows, i, 16),
                .stream = cell_int(rows, i, 17) != 0,
                .received_ms = cell_int(rows, i, 20),
                .request_body_truncated = cell_int(rows, i, 21) != 0,
                .response_body_truncated = cell_int(rows, i, 22) != 0,
        };
        if (!cell(rows, i, 18)->null)
                a->request_body = cell_take(rows, i, 18);
        if (!cell(rows, i, 19)->null)
                a->response_body = cell_take(rows, i, 19);
}

int store_llm_audit_list(Store *s, const StoreLlmAuditQuery *q, StoreLlmAudit **ret, size_t *ret_n) {
        if (!q || !ret || !ret_n || q->limit == 0 || q->limit > STORE_LIST_MAX || q->before_id < 0 ||
            (q->namespace_ && !name_ok(q->namespace_)) || (q->alias && strlen(q->alias) > STORE_LLM_FIELD_MAX))
                return invalid(s, -EINVAL, "invalid audit query");
        LlmListCall c = { q, {} };
        int r = store_call(s, TX_NONE, llm_audit_list_body, &c);
        if (r < 0) {
                store_rows_clear(&c.rows);
                return r;
        }
        StoreLlmAudit *items = calloc(c.rows.nrows ? c.rows.nrows : 1, sizeof *items);
        if (!items) {
                store_rows_clear(&c.rows);
                return -ENOMEM;
        }
        for (size_t i = 0; i < c.rows.nrows; i++)
                llm_audit_from_row(&items[i], &c.rows, i);
        *ret = items;
        *ret_n = c.rows.nrows;
        store_rows_clear(&c.rows);
        return 0;
}

typedef struct LlmPruneCall {
        int64_t before_ms, limit, changes;
} LlmPruneCall;

static int llm_audit_prune_body(Store *s, void *arg) {
        LlmPruneCall *c = arg;
        StoreRows rows = {};
        int r = s->ops->exec(s, STMT_LLM_PRUNE, (StoreArg[]) { ARG_INT(c->before_ms), ARG_INT(c->limit) }, 2, &rows);
        c->changes = rows.changes;
        store_rows_clear(&rows);
        return r < 0 ? r : 0;
}

/* In batches of STORE_LLM_PRUNE_BATCH, each its own statement, so that a
 * large prune never holds the store (or SQLite's write lock) for long. */
int store_llm_audit_prune(Store *s, int64_t before_ms) {
        int64_t total = 0;
        for (;;) {
                LlmPruneCall c = { before_ms, STORE_LLM_PRUNE_BATCH, 0 };
                int r = store_call(s, TX_NONE, llm_audit_prune_body, &c);
                if (r < 0)
                        return r;
                total += c.changes;
                if (c.changes < STORE_LLM_PRUNE_BATCH)
                        break;
        }
        return (int) (total > INT32_MAX ? INT32_MAX : total);
}

/* ---- skill versions ------------------------------------------------------ */

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* A skill name: 1-40 of [a-z0-9-], a letter or digit at each end (a DNS
 * label, so that the backing function skill-NAME-vN fits 63). */
static bool skill_name_ok(const char *s) {
        if (!s)
                return false;
        size_t n = strlen(s);
        if (n == 0 || n > STORE_SKILL_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

/* Well-formed UTF-8 (no overlong forms, surrogates or values past
 * U+10FFFF): PostgreSQL refuses anything else in a TEXT column, so the
 * store refuses it on both backends. */
static bool utf8_ok(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        while (*p) {
                unsigned c = *p, n;
                uint32_t cp;
                if (c < 0x80) {
                        p++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else
                        return false;
                for (unsigned i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += n + 1;
        }
        return true;
}

static const char *json_ws(const char *p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
        return p;
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* The end of the JSON number at p (RFC 8259 grammar), or NULL. */
static const char *json_number_end(const char *p) {
        if (*p == '-')
                p++;
        if (*p == '0')
                p++;
        else if (*p >= '1' && *p <= '9')
                while (is_digit(*p))
                        p++;
        else
                return NULL;
        if (*p == '.') {
                if (!is_digit(*++p))
                        return NULL;
                while (is_digit(*p))
                        p++;
        }
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (!is_digit(*p))
                        return NULL;
                while (is_digit(*p))
                        p++;
        }
        return p;
}

/* A non-empty JSON array of numbers, nothing else. */
static bool embedding_ok(const char *s) {
        const char *p = json_ws(s);
        if (*p++ != '[')
                return false;
        for (;;) {
                p = json_number_end(json_ws(p));
                if (!p)
                        return false;
                p = json_ws(p);
                if (*p == ']')
                        break;
                if (*p++ != ',')
                        return false;
        }
        return *json_ws(p + 1) == 0;
}

/* A by-field ("token:ID" or ""): NULL reads as "". */
static bool skill_by_ok(const char *by) {
        return !by || (llm_text_ok(by, STORE_SKILL_FIELD_MAX, true) && utf8_ok(by));
}

static int skill_check_key(Store *s, const char *ns, const char *name) {
        if (!name_ok(ns))
                return invalid(s, -EINVAL, "invalid namespace");
        if (!skill_name_ok(name))
                return invalid(s, -EINVAL, "a skill name is 1-40 of [a-z0-9-], starting and ending with a "
                                           "letter or digit");
        return 0;
}

static int skill_check(Store *s, const StoreSkillVersion *v) {
        int r;
        if (!v)
                return invalid(s, -EINVAL, "no skill version");
        if ((r = skill_check_key(s, v->namespace_, v->name)) < 0)
                return r;
        if (v->state && !streq(v->state, "candidate") && !streq(v->state, "promoted"))
                return invalid(s, -EINVAL, "a new skill version is a candidate (or promoted)");
        if (!llm_text_ok(v->runtime, STORE_SKILL_FIELD_MAX, false) || !utf8_ok(v->runtime))
                return invalid(s, -EINVAL, "invalid runtime: 1-256 bytes without control characters");
        if (!digest_ok(v->code_digest))
                return invalid(s, -EINVAL, "a code digest is sha256: and 64 hex digits");
        if (v->description && strlen(v->description) > STORE_SKILL_DESCRIPTION_MAX)
                return invalid(s, -E2BIG, "the description is over 4096 bytes");
        if (v->description && !utf8_ok(v->description))
                return invalid(s, -EINVAL, "the description is not UTF-8");
        if (!v->doc_json)
                return invalid(s, -EINVAL, "no skill document");
        if (strlen(v->doc_json) > STORE_DOC_MAX)
                return invalid(s, -E2BIG, "the skill document is over 8 MiB");
        if (!utf8_ok(v->doc_json))
                return invalid(s, -EINVAL, "the skill document is not UTF-8");
        if (v->embedding_json && strlen(v->embedding_json) > STORE_SKILL_EMBEDDING_MAX)
                return invalid(s, -E2BIG, "the embedding is over 64 KiB");
        if (v->embedding_json && !embedding_ok(v->embedding_json))
                return invalid(s, -EINVAL, "an embedding is a non-empty JSON array of numbers");
        if (!skill_by_ok(v->created_by) || !skill_by_ok(v->promoted_by))
                return invalid(s, -EINVAL, "invalid created_by or promoted_by");
        if (v->parent < 0 || v->created_ms < 0 || v->promoted_ms < 0)
                return invalid(s, -EINVAL, "invalid parent or time");
        return 0;
}

/* Bump the change counter. Every skill write does this first: on
 * PostgreSQL the row lock queues the writers, so the next statement sees
 * what the previous writer committed (SQLite's BEGIN IMMEDIATE already
 * queues them). */
static int skill_stamp_bump(Store *s) {
        int64_t changes = exec_changes(s, STMT_SKILL_STAMP_BUMP, NULL, 0);
        if (changes < 0)
                return (int) changes;
        return changes == 1 ? 0 : store_set_error(s, -EIO, "the skill_stamp row is missing");
}

typedef struct SkillAddCall {
        const StoreSkillVersion *v;
        int64_t version;
} SkillAddCall;

static int skill_add_body(Store *s, void *arg) {
        SkillAddCall *c = arg;
        const StoreSkillVersion *v = c->v;
        _cleanup_(store_rows_clear) StoreRows max = {};
        int r;

        if ((r = skill_stamp_bump(s)) < 0)
                return r;
        if ((r = artifact_present(s, v->code_digest)) <= 0)
                return r < 0 ? r : store_set_error(s, -ENOENT, "no artifact %s", v->code_digest);
        if (v->parent > 0) {
                _cleanup_(store_rows_clear) StoreRows parent = {};
                r = s->ops->exec(s, STMT_SKILL_EXISTS, (StoreArg[]) {
                        ARG_TEXT(v->namespace_), ARG_TEXT(v->name), ARG_INT(v->parent) }, 3, &parent);
                if (r < 0)
                        return r;
                if (parent.nrows == 0)
                        return store_set_error(s, -EINVAL, "the parent, version %" PRId64 " of skill %s/%s, "
                                               "does not exist", v->parent, v->namespace_, v->name);
        }
        r = s->ops->exec(s, STMT_SKILL_MAX, (StoreArg[]) { ARG_TEXT(v->namespace_), ARG_TEXT(v->name) }, 2, &max);
        if (r < 0)
                return r;
        int64_t number = (max.nrows ? cell_int(&max, 0, 0) : 0) + 1, now = store_now_ms();
        bool promoted = v->state && streq(v->state, "promoted");
        r = s->ops->exec(s, STMT_SKILL_INSERT, (StoreArg[]) {
                ARG_TEXT(v->namespace_), ARG_TEXT(v->name), ARG_INT(number),
                ARG_TEXT(promoted ? "promoted" : "candidate"), ARG_TEXT(v->runtime), ARG_TEXT(v->code_digest),
                ARG_TEXT(v->description ? v->description : ""), ARG_TEXT(v->doc_json), ARG_TEXT(v->embedding_json),
                ARG_INT(v->parent), ARG_INT(v->created_ms > 0 ? v->created_ms : now),
                ARG_INT(!promoted ? 0 : v->promoted_ms > 0 ? v->promoted_ms : now), ARG_INT(0),
                ARG_TEXT(v->created_by ? v->created_by : ""),
                ARG_TEXT(promoted && v->promoted_by ? v->promoted_by : ""), ARG_TEXT("") }, 16, NULL);
        if (r < 0)
                /* the counter's lock makes a clash impossible; were it to
                 * happen, the transaction runs again */
                return r == -EEXIST ? -EAGAIN : r;
        c->version = number;
        return 0;
}

int store_skill_version_add(Store *s, const StoreSkillVersion *v, int64_t *ret_version) {
        int r = skill_check(s, v);
        if (r < 0)
                return r;
        SkillAddCall c = { v, 0 };
        r = store_call(s, TX_WRITE, skill_add_body, &c);
        if (r >= 0 && ret_version)
                *ret_version = c.version;
        return r;
}

static void skill_from_row(StoreSkillVersion *v, StoreRows *rows, size_t i) {
        *v = (StoreSkillVersion) {
                .namespace_ = cell_take(rows, i, 0),
                .name = cell_take(rows, i, 1),
                .version = cell_int(rows, i, 2),
                .state = cell_take(rows, i, 3),
                .runtime = cell_take(rows, i, 4),
                .code_digest = cell_take(rows, i, 5),
                .description = cell_take(rows, i, 6),
                .doc_json = cell_take(rows, i, 7),
                .parent = cell_int(rows, i, 9),
                .created_ms = cell_int(rows, i, 10),
                .promoted_ms = cell_int(rows, i, 11),
                .deprecated_ms = cell_int(rows, i, 12),
                .created_by = cell_take(rows, i, 13),
                .promoted_by = cell_take(rows, i, 14),
                .deprecated_by = cell_take(rows, i, 15),
        };
        if (!cell(rows, i, 8)->null)
                v->embedding_json = cell_take(rows, i, 8);
}

typedef struct SkillGetCall {
        const char *ns, *name;
        int64_t version;
        StoreSkillVersion v;
} SkillGetCall;

static int skill_get_body(Store *s, void *arg) {
        SkillGetCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        StoreArg args[] = { ARG_TEXT(c->ns), ARG_TEXT(c->name), ARG_INT(c->version) };
        int r;

        if (c->version > 0)
                r = s->ops->exec(s, STMT_SKILL_GET, args, 3, &rows);
        else
                r = s->ops->exec(s, c->version == 0 ? STMT_SKILL_GET_PROMOTED : STMT_SKILL_GET_LATEST, args, 2,
                                 &rows);
        if (r < 0)
                return r;
        if (rows.nrows == 0) {
                if (c->version > 0)
                        return store_set_error(s, -ENOENT, "no version %" PRId64 " of skill %s/%s",
                                               c->version, c->ns, c->name);
                if (c->version == 0)
                        return store_set_error(s, -ENOENT, "skill %s/%s has no promoted version", c->ns, c->name);
                return store_set_error(s, -ENOENT, "no skill %s/%s", c->ns, c->name);
        }
        skill_from_row(&c->v, &rows, 0);
        return 0;
}

int store_skill_version_get(Store *s, const char *ns, const char *name, int64_t version, StoreSkillVersion *ret) {
        int r = skill_check_key(s, ns, name);
        if (r < 0)
                return r;
        if (version < -1 || !ret)
                return invalid(s, -EINVAL, "a skill version is N > 0, 0 (newest promoted) or -1 (newest)");
        SkillGetCall c = { ns, name, version, {} };
        r = store_call(s, TX_NONE, skill_get_body, &c);
        if (r >= 0)
                *ret = c.v;
        return r;
}

typedef struct SkillListCall {
        const char *ns, *name, *after_ns, *after_name;
        int64_t after_version;
        size_t limit;
        StoreSkillVersion *items;
        size_t n;
        char *next;
} SkillListCall;

static int skill_list_body(Store *s, void *arg) {
        SkillListCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        StoreStmt id = c->ns && c->name ? STMT_SKILL_LIST_NAME : c->ns ? STMT_SKILL_LIST_NS :
                       c->name ? STMT_SKILL_LIST_BYNAME : STMT_SKILL_LIST_ALL;
        int r = s->ops->exec(s, id, (StoreArg[]) {
                ARG_TEXT(c->ns ? c->ns : c->after_ns), ARG_TEXT(c->name ? c->name : c->after_name),
                ARG_INT(c->after_version), ARG_INT((int64_t) c->limit + 1) }, 4, &rows);
        if (r < 0)
                return r;
        size_t n = rows.nrows > c->limit ? c->limit : rows.nrows;
        _cleanup_free_ char *next = NULL;
        if (rows.nrows > c->limit &&
            asprintf(&next, "%s/%s/%s", cell(&rows, n - 1, 0)->data, cell(&rows, n - 1, 1)->data,
                     cell(&rows, n - 1, 2)->data) < 0)
                return -ENOMEM;
        StoreSkillVersion *items = calloc(n ? n : 1, sizeof *items);
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                skill_from_row(&items[i], &rows, i);
        c->items = items;
        c->n = n;
        c->next = TAKE_PTR(next);
        return 0;
}

/* "NS/NAME/VERSION" into c; the cursor must agree with the filters. */
static int skill_cursor_parse(Store *s, char *cursor, SkillListCall *c) {
        char *a = strchr(cursor, '/'), *b = a ? strchr(a + 1, '/') : NULL, *end = NULL;
        if (!a || !b)
                return invalid(s, -EINVAL, "a skill list cursor is NAMESPACE/NAME/VERSION");
        *a = *b = 0;
        errno = 0;
        long long version = strtoll(b + 1, &end, 10);
        if (!name_ok(cursor) || !name_ok(a + 1) || !is_digit(b[1]) || *end || errno || version <= 0)
                return invalid(s, -EINVAL, "a skill list cursor is NAMESPACE/NAME/VERSION");
        if ((c->ns && !streq(c->ns, cursor)) || (c->name && !streq(c->name, a + 1)))
                return invalid(s, -EINVAL, "the list cursor is from another list");
        c->after_ns = cursor;
        c->after_name = a + 1;
        c->after_version = version;
        return 0;
}

int store_skill_version_list(Store *s, const char *ns, const char *name, const char *after, size_t limit,
                             StoreSkillVersion **ret, size_t *ret_n, char **ret_next) {
        _cleanup_free_ char *cursor = strdup(after ? after : "");
        int r;
        if (!cursor)
                return -ENOMEM;
        if ((ns && !name_ok(ns)) || (name && !skill_name_ok(name)) || limit == 0 || limit > STORE_LIST_MAX ||
            !ret || !ret_n)
                return invalid(s, -EINVAL, "invalid skill list arguments");
        SkillListCall c = { .ns = ns, .name = name, .after_ns = "", .after_name = "", .limit = limit };
        if (*cursor && (r = skill_cursor_parse(s, cursor, &c)) < 0)
                return r;
        r = store_call(s, TX_NONE, skill_list_body, &c);
        if (r < 0)
                return r;
        *ret = c.items;
        *ret_n = c.n;
        if (ret_next)
                *ret_next = c.next;
        else
                free(c.next);
        return 0;
}

typedef struct SkillStateCall {
        const char *ns, *name, *state, *by;
        int64_t version, at_ms;
} SkillStateCall;

static int skill_set_state_body(Store *s, void *arg) {
        SkillStateCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows cur = {};
        StoreRows rows = {};
        int r;

        if ((r = skill_stamp_bump(s)) < 0)
                return r;
        r = s->ops->exec(s, STMT_SKILL_LOCK, (StoreArg[]) {
                ARG_TEXT(c->ns), ARG_TEXT(c->name), ARG_INT(c->version) }, 3, &cur);
        if (r < 0)
                return r;
        if (cur.nrows == 0)
                return store_set_error(s, -ENOENT, "no version %" PRId64 " of skill %s/%s", c->version, c->ns,
                                       c->name);
        const char *state = cell(&cur, 0, 0)->data;
        bool promote = streq(c->state, "promoted");
        if (streq(state, c->state))
                return store_set_error(s, -EINVAL, "version %" PRId64 " of skill %s/%s is already %s",
                                       c->version, c->ns, c->name, state);
        if (promote && !streq(state, "candidate"))
                return store_set_error(s, -EINVAL, "version %" PRId64 " of skill %s/%s is %s: only a candidate "
                                       "is promoted", c->version, c->ns, c->name, state);
        r = s->ops->exec(s, promote ? STMT_SKILL_PROMOTE : STMT_SKILL_DEPRECATE, (StoreArg[]) {
                ARG_TEXT(c->ns), ARG_TEXT(c->name), ARG_INT(c->version),
                ARG_INT(c->at_ms > 0 ? c->at_ms : store_now_ms()), ARG_TEXT(c->by ? c->by : "") }, 5, &rows);
        int64_t changes = rows.changes;
        store_rows_clear(&rows);
        if (r < 0)
                return r;
        /* the row is locked (and every skill writer queued): it cannot have changed */
        return changes == 1 ? 0 : store_set_error(s, -EIO, "version %" PRId64 " of skill %s/%s changed "
                                                 "underneath", c->version, c->ns, c->name);
}

int store_skill_version_set_state(Store *s, const char *ns, const char *name, int64_t version,
                                  const char *state, const char *by, int64_t at_ms) {
        int r = skill_check_key(s, ns, name);
        if (r < 0)
                return r;
        if (version <= 0)
                return invalid(s, -EINVAL, "a skill version is a number from 1");
        if (!state || (!streq(state, "promoted") && !streq(state, "deprecated")))
                return invalid(s, -EINVAL, "a skill version's state changes to promoted or deprecated only");
        if (!skill_by_ok(by) || at_ms < 0)
                return invalid(s, -EINVAL, "invalid by or time");
        SkillStateCall c = { ns, name, state, by, version, at_ms };
        return store_call(s, TX_WRITE, skill_set_state_body, &c);
}

static int skill_stamp_body(Store *s, void *arg) {
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_SKILL_STAMP, NULL, 0, &rows);
        if (r < 0)
                return r;
        if (rows.nrows == 0)
                return store_set_error(s, -EIO, "the skill_stamp row is missing");
        *(int64_t *) arg = cell_int(&rows, 0, 0);
        return 0;
}

int store_skill_stamp(Store *s, int64_t *ret) {
        int64_t v = 0;
        if (!ret)
                return -EINVAL;
        int r = store_call(s, TX_NONE, skill_stamp_body, &v);
        if (r >= 0)
                *ret = v;
        return r;
}

/* ---- sessions ------------------------------------------------------------ */

#define SESSION_PRUNE_BATCH     64      /* sessions deleted per statement: up to 128 MiB each */
/* above every session id ("s-" and lowercase hex): the cursor of the first page */
#define SESSION_CURSOR_TOP      "s-~"

/* "s-" and 32 lowercase hex digits. */
static bool session_id_ok(const char *id) {
        if (!id || strlen(id) != STORE_SESSION_ID_LEN || !startswith(id, "s-"))
                return false;
        for (const char *p = id + 2; *p; p++)
                if (!is_digit(*p) && !(*p >= 'a' && *p <= 'f'))
                        return false;
        return true;
}

static int session_check_id(Store *s, const char *id) {
        return session_id_ok(id) ? 0 : invalid(s, -EINVAL, "a session id is s- and 32 lowercase hex digits");
}

/* A blob on its way in, with the digest the store keeps of it. */
typedef struct SessionBlob {
        const void *data;
        size_t len;
        char digest[ARTIFACT_DIGEST_LEN];
} SessionBlob;

/* Check a blob's size and hash it; an empty one has the digest "". */
static int session_blob_in(Store *s, const char *what, const void *data, size_t len, SessionBlob *ret) {
        if (!data && len > 0)
                return store_set_error(s, -EINVAL, "the %s has a length but no data", what);
        if (len > STORE_SESSION_BLOB_MAX)
                return store_set_error(s, -E2BIG, "the %s is over %u MiB", what, STORE_SESSION_BLOB_MAX >> 20);
        *ret = (SessionBlob) { .data = data, .len = len };
        if (len == 0)
                return 0;
        artifact_digest(data, len, ret->digest);
        return ret->digest[0] ? 0 : store_set_error(s, -EIO, "the %s could not be hashed", what);
}

static int session_check(Store *s, const StoreSession *v) {
        if (!v)
                return invalid(s, -EINVAL, "no session");
        if (session_check_id(s, v->id) < 0)
                return -EINVAL;
        if (!name_ok(v->namespace_))
                return invalid(s, -EINVAL, "invalid namespace");
        if (v->function && *v->function && !manifest_name_valid(v->function))
                return invalid(s, -EINVAL, "a session's function is \"\" or a function name");
        if (v->replay_of && *v->replay_of && !session_id_ok(v->replay_of))
                return invalid(s, -EINVAL, "replay_of is \"\" or a session id");
        if (!skill_by_ok(v->created_by))
                return invalid(s, -EINVAL, "invalid created_by: at most 256 bytes without control characters");
        if (v->created_ms < 0)
                return invalid(s, -EINVAL, "invalid creation time");
        return 0;
}

typedef struct SessionCreateCall {
        const StoreSession *v;
        int64_t created_ms;
        SessionBlob input, stdin_;
} SessionCreateCall;

static int session_create_body(Store *s, void *arg) {
        SessionCreateCall *c = arg;
        const StoreSession *v = c->v;
        int r = s->ops->exec(s, STMT_SESS_INSERT, (StoreArg[]) {
                ARG_TEXT(v->id), ARG_TEXT(v->namespace_), ARG_TEXT(v->function ? v->function : ""),
                ARG_TEXT(v->replay_of ? v->replay_of : ""), ARG_TEXT(v->created_by ? v->created_by : ""),
                ARG_TEXT(c->input.digest), ARG_INT((int64_t) c->input.len),
                ARG_TEXT(c->stdin_.digest), ARG_INT((int64_t) c->stdin_.len),
                ARG_INT(c->created_ms), ARG_INT(v->expires_ms),
                ARG_BLOB(c->input.data, c->input.len), ARG_BLOB(c->stdin_.data, c->stdin_.len),
                ARG_BLOB(NULL, 0), ARG_BLOB(NULL, 0) }, 15, NULL);
        return r == -EEXIST ? store_set_error(s, r, "session %s exists", v->id) : r;
}

int store_session_create(Store *s, const StoreSession *v, const void *input, size_t input_len,
                         const void *stdin_data, size_t stdin_len) {
        SessionCreateCall c = { .v = v };
        int r = session_check(s, v);
        if (r < 0)
                return r;
        c.created_ms = v->created_ms > 0 ? v->created_ms : store_now_ms();
        if (v->expires_ms <= c.created_ms)
                return invalid(s, -EINVAL, "a session expires after it is created");
        /* hashed before the handle's lock: 32 MiB take a while */
        if ((r = session_blob_in(s, "input", input, input_len, &c.input)) < 0 ||
            (r = session_blob_in(s, "stdin", stdin_data, stdin_len, &c.stdin_)) < 0)
                return r;
        return store_call(s, TX_NONE, session_create_body, &c);
}

static void session_from_row(StoreSession *v, StoreRows *rows, size_t i) {
        *v = (StoreSession) {
                .id = cell_take(rows, i, 0),
                .namespace_ = cell_take(rows, i, 1),
                .function = cell_take(rows, i, 2),
                .state = cell_take(rows, i, 3),
                .revision = cell_take(rows, i, 4),
                .code_digest = cell_take(rows, i, 5),
                .replay_of = cell_take(rows, i, 6),
                .created_by = cell_take(rows, i, 7),
                .input_digest = cell_take(rows, i, 8),
                .input_size = cell_int(rows, i, 9),
                .stdin_digest = cell_take(rows, i, 10),
                .stdin_size = cell_int(rows, i, 11),
                .stdout_digest = cell_take(rows, i, 12),
                .stdout_size = cell_int(rows, i, 13),
                .output_digest = cell_take(rows, i, 14),
                .output_size = cell_int(rows, i, 15),
                .created_ms = cell_int(rows, i, 17),
                .started_ms = cell_int(rows, i, 18),
                .finished_ms = cell_int(rows, i, 19),
                .expires_ms = cell_int(rows, i, 20),
        };
        if (!cell(rows, i, 16)->null)
                v->result_json = cell_take(rows, i, 16);
}

static int session_get_body(Store *s, void *arg) {
        GetCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_SESS_GET, (StoreArg[]) { ARG_TEXT(c->a) }, 1, &rows);
        if (r < 0)
                return r;
        if (rows.nrows == 0)
                return store_set_error(s, -ENOENT, "no session %s", c->a);
        session_from_row(c->ret, &rows, 0);
        return 0;
}

int store_session_get(Store *s, const char *id, StoreSession *ret) {
        if (session_check_id(s, id) < 0)
                return -EINVAL;
        if (!ret)
                return invalid(s, -EINVAL, "no place for the session");
        StoreSession v = {};
        int r = store_call(s, TX_NONE, session_get_body, &(GetCall) { id, NULL, 0, &v });
        if (r >= 0)
                *ret = v;
        return r;
}

static const struct {
        const char *name;
        StoreStmt stmt;
} session_blobs[] = {
        { "input", STMT_SESS_BLOB_INPUT },
        { "stdin", STMT_SESS_BLOB_STDIN },
        { "stdout", STMT_SESS_BLOB_STDOUT },
        { "output", STMT_SESS_BLOB_OUTPUT },
};

typedef struct SessionBlobCall {
        const char *id;
        StoreStmt stmt;
        void *data;
        size_t len;
} SessionBlobCall;

static int session_blob_body(Store *s, void *arg) {
        SessionBlobCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, c->stmt, (StoreArg[]) { ARG_TEXT(c->id) }, 1, &rows);
        if (r < 0)
                return r;
        if (rows.nrows == 0)
                return store_set_error(s, -ENOENT, "no session %s", c->id);
        /* a cell is malloc()ed with a NUL after it: an empty blob is a 1-byte buffer */
        c->len = cell(&rows, 0, 0)->len;
        c->data = cell_take(&rows, 0, 0);
        return 0;
}

int store_session_blob(Store *s, const char *id, const char *which, void **ret, size_t *ret_len) {
        SessionBlobCall c = { .id = id, .stmt = _STMT_MAX };
        if (session_check_id(s, id) < 0)
                return -EINVAL;
        for (size_t i = 0; which && i < ELEMENTSOF(session_blobs); i++)
                if (streq(which, session_blobs[i].name))
                        c.stmt = session_blobs[i].stmt;
        if (c.stmt == _STMT_MAX)
                return invalid(s, -EINVAL, "a session's blobs are input, stdin, stdout and output");
        if (!ret || !ret_len)
                return invalid(s, -EINVAL, "no place for the blob");
        int r = store_call(s, TX_NONE, session_blob_body, &c);
        if (r < 0)
                return r;
        *ret = c.data;
        *ret_len = c.len;
        return 0;
}

/* Why a start or finish changed nothing: no such session (-ENOENT), or
 * it is not in state `want` (-EBUSY); else it belongs to another function. */
static int session_refusal(Store *s, const char *id, const char *want, const char *function) {
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r = s->ops->exec(s, STMT_SESS_STATE, (StoreArg[]) { ARG_TEXT(id) }, 1, &rows);
        if (r < 0)
                return r;
        if (rows.nrows == 0)
                return store_set_error(s, -ENOENT, "no session %s", id);
        const char *state = cell(&rows, 0, 0)->data;
        if (!streq(state, want))
                return store_set_error(s, -EBUSY, "session %s is %s, not %s", id, state, want);
        if (function && !streq(cell(&rows, 0, 1)->data, function))
                return store_set_error(s, -EBUSY, "session %s is for function %s, not %s", id,
                                       cell(&rows, 0, 1)->data, function);
        return store_set_error(s, -EIO, "session %s changed underneath", id);
}

typedef struct SessionStartCall {
        const char *id, *function, *revision, *code_digest;
        int64_t at_ms;
} SessionStartCall;

static int session_start_body(Store *s, void *arg) {
        SessionStartCall *c = arg;
        int64_t changes = exec_changes(s, STMT_SESS_START, (StoreArg[]) {
                ARG_TEXT(c->id), ARG_TEXT(c->function), ARG_TEXT(c->revision), ARG_TEXT(c->code_digest),
                ARG_INT(c->at_ms) }, 5);
        if (changes < 0)
                return (int) changes;
        return changes == 1 ? 0 : session_refusal(s, c->id, "created", c->function);
}

int store_session_start(Store *s, const char *id, const char *function, const char *revision,
                        const char *code_digest, int64_t at_ms) {
        if (session_check_id(s, id) < 0)
                return -EINVAL;
        if (!manifest_name_valid(function))
                return invalid(s, -EINVAL, "a session starts with a function name");
        if (!name_ok(revision))
                return invalid(s, -EINVAL, "invalid revision name");
        if (!digest_ok(code_digest))
                return invalid(s, -EINVAL, "a code digest is sha256: and 64 hex digits");
        if (at_ms < 0)
                return invalid(s, -EINVAL, "invalid time");
        SessionStartCall c = { id, function, revision, code_digest, at_ms > 0 ? at_ms : store_now_ms() };
        return store_call(s, TX_WRITE, session_start_body, &c);
}

typedef struct SessionFinishCall {
        const char *id, *state, *result_json;
        int64_t at_ms;
        bool keep_stdin;
        SessionBlob stdin_, stdout_, output;
} SessionFinishCall;

static int session_finish_body(Store *s, void *arg) {
        SessionFinishCall *c = arg;
        StoreStmt stmt = c->keep_stdin ? STMT_SESS_FINISH_KEEP_STDIN : STMT_SESS_FINISH;
        int64_t changes = exec_changes(s, stmt, (StoreArg[]) {
                ARG_TEXT(c->id), ARG_TEXT(c->state), ARG_TEXT(c->result_json), ARG_INT(c->at_ms),
                ARG_TEXT(c->stdout_.digest), ARG_INT((int64_t) c->stdout_.len),
                ARG_BLOB(c->stdout_.data, c->stdout_.len),
                ARG_TEXT(c->output.digest), ARG_INT((int64_t) c->output.len),
                ARG_BLOB(c->output.data, c->output.len),
                ARG_TEXT(c->stdin_.digest), ARG_INT((int64_t) c->stdin_.len),
                ARG_BLOB(c->stdin_.data, c->stdin_.len) }, c->keep_stdin ? 10 : 13);
        if (changes < 0)
                return (int) changes;
        return changes == 1 ? 0 : session_refusal(s, c->id, "running", NULL);
}

int store_session_finish(Store *s, const char *id, const char *state, const char *result_json,
                         const void *stdin_data, size_t stdin_len, const void *stdout_data, size_t stdout_len,
                         const void *output, size_t output_len, int64_t at_ms) {
        SessionFinishCall c = { .id = id, .state = state, .result_json = result_json, .keep_stdin = !stdin_data };
        int r;
        if (session_check_id(s, id) < 0)
                return -EINVAL;
        if (!state || (!streq(state, "done") && !streq(state, "failed")))
                return invalid(s, -EINVAL, "a session finishes done or failed");
        if (!result_json || !*result_json)
                return invalid(s, -EINVAL, "a finished session has a result");
        if (strlen(result_json) > STORE_SESSION_RESULT_MAX)
                return invalid(s, -E2BIG, "the result is over 64 KiB");
        if (!utf8_ok(result_json))
                return invalid(s, -EINVAL, "the result is not UTF-8");
        if (at_ms < 0)
                return invalid(s, -EINVAL, "invalid time");
        c.at_ms = at_ms > 0 ? at_ms : store_now_ms();
        if ((r = session_blob_in(s, "stdin", stdin_data, stdin_len, &c.stdin_)) < 0 ||
            (r = session_blob_in(s, "stdout", stdout_data, stdout_len, &c.stdout_)) < 0 ||
            (r = session_blob_in(s, "output", output, output_len, &c.output)) < 0)
                return r;
        return store_call(s, TX_WRITE, session_finish_body, &c);
}

typedef struct SessionListCall {
        const char *ns, *after;
        size_t limit;
        StoreSession *items;
        size_t n;
        char *next;
} SessionListCall;

static int session_list_body(Store *s, void *arg) {
        SessionListCall *c = arg;
        _cleanup_(store_rows_clear) StoreRows rows = {};
        int r;

        if (c->ns)
                r = s->ops->exec(s, STMT_SESS_LIST_NS, (StoreArg[]) {
                        ARG_TEXT(c->ns), ARG_TEXT(c->after), ARG_INT((int64_t) c->limit + 1) }, 3, &rows);
        else
                r = s->ops->exec(s, STMT_SESS_LIST_ALL, (StoreArg[]) {
                        ARG_TEXT(c->after), ARG_INT((int64_t) c->limit + 1) }, 2, &rows);
        if (r < 0)
                return r;
        size_t n = rows.nrows > c->limit ? c->limit : rows.nrows;
        _cleanup_free_ char *next = NULL;
        if (rows.nrows > c->limit && !(next = strdup(cell(&rows, n - 1, 0)->data)))
                return -ENOMEM;
        StoreSession *items = calloc(n ? n : 1, sizeof *items);
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                session_from_row(&items[i], &rows, i);
        c->items = items;
        c->n = n;
        c->next = TAKE_PTR(next);
        return 0;
}

int store_session_list(Store *s, const char *ns, const char *after, size_t limit, StoreSession **ret,
                       size_t *ret_n, char **ret_next) {
        if ((ns && !name_ok(ns)) || limit == 0 || limit > STORE_LIST_MAX || !ret || !ret_n)
                return invalid(s, -EINVAL, "invalid session list arguments");
        if (after && *after && !session_id_ok(after))
                return invalid(s, -EINVAL, "a session list cursor is a session id");
        SessionListCall c = { .ns = ns, .after = after && *after ? after : SESSION_CURSOR_TOP, .limit = limit };
        int r = store_call(s, TX_NONE, session_list_body, &c);
        if (r < 0)
                return r;
        *ret = c.items;
        *ret_n = c.n;
        if (ret_next)
                *ret_next = c.next;
        else
                free(c.next);
        return 0;
}

static int session_delete_body(Store *s, void *arg) {
        const char *id = arg;
        int64_t changes = exec_changes(s, STMT_SESS_DELETE, (StoreArg[]) { ARG_TEXT(id) }, 1);
        if (changes < 0)
                return (int) changes;
        return changes > 0 ? 0 : store_set_error(s, -ENOENT, "no session %s", id);
}

int store_session_delete(Store *s, const char *id) {
        if (session_check_id(s, id) < 0)
                return -EINVAL;
        return store_call(s, TX_NONE, session_delete_body, (void *) id);
}

typedef struct SessionPruneCall {
        int64_t now_ms, changes;
} SessionPruneCall;

static int session_prune_body(Store *s, void *arg) {
        SessionPruneCall *c = arg;
        StoreRows rows = {};
        int r = s->ops->exec(s, STMT_SESS_PRUNE, (StoreArg[]) { ARG_INT(c->now_ms), ARG_INT(SESSION_PRUNE_BATCH) },
                             2, &rows);
        c->changes = rows.changes;
        store_rows_clear(&rows);
        return r < 0 ? r : 0;
}

/* In batches of SESSION_PRUNE_BATCH, each its own statement (the llm_audit
 * prune's reason, and a session's blobs make its rows large). */
int store_session_prune(Store *s, int64_t now_ms) {
        int64_t total = 0;
        if (now_ms < 0)
                return invalid(s, -EINVAL, "invalid time");
        if (now_ms == 0)
                now_ms = store_now_ms();
        for (;;) {
                SessionPruneCall c = { now_ms, 0 };
                int r = store_call(s, TX_NONE, session_prune_body, &c);
                if (r < 0)
                        return r;
                total += c.changes;
                if (c.changes < SESSION_PRUNE_BATCH)
                        break;
        }
        return (int) (total > INT32_MAX ? INT32_MAX : total);
}

/* ---- clearing and freeing ------------------------------------------------ */

void store_function_clear(StoreFunction *f) {
        if (!f)
                return;
        free(f->namespace_);
        free(f->name);
        free(f->spec_json);
        free(f->traffic_json);
        *f = (StoreFunction) {};
}

void store_revision_clear(StoreRevision *r) {
        if (!r)
                return;
        free(r->namespace_);
        free(r->function);
        free(r->spec_json);
        free(r->spec_digest);
        free(r->code_digest);
        *r = (StoreRevision) {};
}

void store_token_clear(StoreToken *t) {
        if (!t)
                return;
        free(t->id);
        free(t->secret_hash);
        free(t->role);
        free(t->namespaces);
        free(t->description);
        *t = (StoreToken) {};
}

void store_node_clear(StoreNode *n) {
        if (!n)
                return;
        free(n->name);
        free(n->labels_json);
        free(n->capacity_json);
        free(n->state);
        *n = (StoreNode) {};
}

#define DEFINE_ARRAY_FREE(fn, type, clear)                      \
        void fn(type *a, size_t n) {                            \
                for (size_t i = 0; a && i < n; i++)             \
                        clear(&a[i]);                           \
                free(a);                                        \
        }

DEFINE_ARRAY_FREE(store_function_array_free, StoreFunction, store_function_clear)
DEFINE_ARRAY_FREE(store_revision_array_free, StoreRevision, store_revision_clear)
DEFINE_ARRAY_FREE(store_token_array_free, StoreToken, store_token_clear)
DEFINE_ARRAY_FREE(store_node_array_free, StoreNode, store_node_clear)

void store_llm_audit_clear(StoreLlmAudit *a) {
        if (!a)
                return;
        free(a->request_id);
        free(a->namespace_);
        free(a->caller);
        free(a->endpoint);
        free(a->alias);
        free(a->upstream);
        free(a->chain_json);
        free(a->error_type);
        free(a->rules);
        free(a->request_body);
        free(a->response_body);
        *a = (StoreLlmAudit) {};
}

DEFINE_ARRAY_FREE(store_llm_audit_array_free, StoreLlmAudit, store_llm_audit_clear)

void store_skill_version_clear(StoreSkillVersion *v) {
        if (!v)
                return;
        free(v->namespace_);
        free(v->name);
        free(v->state);
        free(v->runtime);
        free(v->code_digest);
        free(v->description);
        free(v->doc_json);
        free(v->embedding_json);
        free(v->created_by);
        free(v->promoted_by);
        free(v->deprecated_by);
        *v = (StoreSkillVersion) {};
}

DEFINE_ARRAY_FREE(store_skill_version_array_free, StoreSkillVersion, store_skill_version_clear)

void store_session_clear(StoreSession *v) {
        if (!v)
                return;
        free(v->id);
        free(v->namespace_);
        free(v->function);
        free(v->state);
        free(v->revision);
        free(v->code_digest);
        free(v->replay_of);
        free(v->created_by);
        free(v->input_digest);
        free(v->stdin_digest);
        free(v->stdout_digest);
        free(v->output_digest);
        free(v->result_json);
        *v = (StoreSession) {};
}

DEFINE_ARRAY_FREE(store_session_array_free, StoreSession, store_session_clear)
