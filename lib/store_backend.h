/* lib/store_backend.h: what lib/store.c asks of a backend (store_sqlite.c,
 * store_pg.c). The operations themselves are written once in store.c over a
 * table of shared SQL statements; a backend connects, runs one statement with
 * parameters, opens and ends transactions, and holds its migration scripts.
 * Private to the store: nothing outside lib/store*.c includes this. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The number of schema migrations; both backends have exactly this many. */
#define STORE_SCHEMA_LATEST     5

/* Every statement the store runs, written once with $1, $2, ... placeholders
 * (SQLite reads them as ?1, ?2). */
typedef enum StoreStmt {
        STMT_SCHEMA_VERSION,
        STMT_SCHEMA_INSERT,
        STMT_FN_LOCK,
        STMT_FN_GET,
        STMT_FN_EXISTS,
        STMT_FN_LIST_NS,
        STMT_FN_LIST_ALL,
        STMT_FN_INSERT,
        STMT_FN_UPDATE,
        STMT_FN_TRAFFIC,
        STMT_FN_DELETE,
        STMT_REV_DIGEST,
        STMT_REV_INSERT,
        STMT_REV_GET,
        STMT_REV_LIST,
        STMT_REV_DELETE_ALL,
        STMT_ART_EXISTS,
        STMT_ART_PUT,
        STMT_ART_GET,
        STMT_TOK_INSERT,
        STMT_TOK_GET,
        STMT_TOK_LIST,
        STMT_TOK_REVOKE,
        STMT_TOK_COUNT,
        STMT_NODE_PUT,
        STMT_NODE_LIST,
        STMT_NODE_DELETE,
        STMT_LLM_INSERT,
        STMT_LLM_LIST_NS,
        STMT_LLM_LIST_ALL,
        STMT_LLM_PRUNE,
        STMT_SKILL_STAMP,
        STMT_SKILL_STAMP_BUMP,
        STMT_SKILL_MAX,
        STMT_SKILL_EXISTS,
        STMT_SKILL_INSERT,
        STMT_SKILL_GET,
        STMT_SKILL_GET_PROMOTED,
        STMT_SKILL_GET_LATEST,
        STMT_SKILL_LOCK,
        STMT_SKILL_PROMOTE,
        STMT_SKILL_DEPRECATE,
        STMT_SKILL_LIST_ALL,
        STMT_SKILL_LIST_NS,
        STMT_SKILL_LIST_NAME,
        STMT_SKILL_LIST_BYNAME,
        STMT_SESS_INSERT,
        STMT_SESS_GET,
        STMT_SESS_STATE,
        STMT_SESS_BLOB_INPUT,
        STMT_SESS_BLOB_STDIN,
        STMT_SESS_BLOB_STDOUT,
        STMT_SESS_BLOB_OUTPUT,
        STMT_SESS_START,
        STMT_SESS_FINISH,
        STMT_SESS_FINISH_KEEP_STDIN,
        STMT_SESS_LIST_NS,
        STMT_SESS_LIST_ALL,
        STMT_SESS_DELETE,
        STMT_SESS_PRUNE,
        _STMT_MAX,
} StoreStmt;

enum {
        STORE_Q_LOCK   = 1 << 0,        /* PostgreSQL: append FOR UPDATE */
        STORE_Q_BINARY = 1 << 1,        /* PostgreSQL: binary result (one bytea column) */
};

typedef struct StoreSql {
        const char *sql;
        unsigned flags;
} StoreSql;

extern const StoreSql store_sql[_STMT_MAX];

typedef enum StoreArgType {
        STORE_ARG_TEXT,
        STORE_ARG_INT,
        STORE_ARG_BLOB,
} StoreArgType;

typedef struct StoreArg {
        StoreArgType type;
        const char *text;
        int64_t i;
        const void *blob;
        size_t len;
} StoreArg;

#define ARG_TEXT(s)     ((StoreArg) { .type = STORE_ARG_TEXT, .text = (s) })
#define ARG_INT(v)      ((StoreArg) { .type = STORE_ARG_INT, .i = (v) })
#define ARG_BLOB(p, n)  ((StoreArg) { .type = STORE_ARG_BLOB, .blob = (p), .len = (n) })

/* A result, copied out of the database: every cell is malloc()ed and
 * NUL-terminated (a NULL value is "" with null set), so callers can take
 * the strings they keep. Integers come as decimal text. */
typedef struct StoreCell {
        char *data;
        size_t len;
        bool null;
} StoreCell;

typedef struct StoreRows {
        size_t nrows, ncols;
        StoreCell *cells;
        int64_t changes;                /* rows written by INSERT/UPDATE/DELETE */
} StoreRows;

void store_rows_clear(StoreRows *r);
/* Append one row of ncols cells; the backend fills them in. */
StoreCell *store_rows_add(StoreRows *r, size_t ncols);

/* Backend errors: -EEXIST (unique key), -ENOENT (foreign key), -EAGAIN
 * (serialisation failure: store.c runs the transaction again), -ENOTCONN
 * (the connection broke outside COMMIT: store.c reconnects once and runs the
 * operation again), -EIO (anything else; the message is in the Store). */
typedef struct StoreOps {
        const char *name;
        int (*connect)(Store *s, const char *conninfo);
        void (*disconnect)(Store *s);
        int (*reconnect)(Store *s);
        /* ret may be NULL when the caller wants no rows */
        int (*exec)(Store *s, StoreStmt id, const StoreArg *args, size_t n, StoreRows *ret);
        /* SQL without parameters (migrations, locks), several statements allowed */
        int (*script)(Store *s, const char *sql);
        int (*begin)(Store *s, bool write);
        int (*commit)(Store *s);
        void (*rollback)(Store *s);
        /* around the migration run, to keep concurrent openers out; may be NULL */
        int (*migrate_lock)(Store *s);
        void (*migrate_unlock)(Store *s);
        const char *const *migrations;  /* [STORE_SCHEMA_LATEST], migration N at N-1 */
} StoreOps;

extern const StoreOps store_sqlite_ops;
extern const StoreOps store_pg_ops;

struct Store {
        const StoreOps *ops;
        void *impl;
        pthread_mutex_t lock;           /* one operation at a time per handle */
};

/* Record a message for store_last_error (kept per thread, so concurrent
 * callers each read their own); returns r. */
int store_set_error(Store *s, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int64_t store_now_ms(void);
