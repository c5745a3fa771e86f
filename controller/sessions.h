/* controller/sessions.h: what the sessions' REST handlers
 * (controller/api_sessions.c) share with the rest of the controller: ids,
 * the input archive's listing, the JSON form, the limits and retention. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "controller/api.h"
#include "lib/store.h"

#define SESSION_INPUT_ENTRIES_MAX       1000            /* entries of an input archive */
#define SESSION_INPUT_MAX               (32u << 20)     /* bytes of an input archive */
#define SESSION_FINISH_HEAD_MAX         (64u << 10)     /* the JSON line of a finish */
#define SESSION_FINISH_MAX              (3 * (size_t) STORE_SESSION_BLOB_MAX + SESSION_FINISH_HEAD_MAX)
#define SESSION_REPLAY_TIMEOUT_MS       600000L         /* a replay's call, cold start included */
#define SESSION_RETENTION_DEFAULT_MS    (7LL * 86400000)
#define SESSION_RETENTION_MAX_MS        (365LL * 86400000)
#define SESSION_PREVIEW_LINES           6
#define SESSION_PREVIEW_BYTES           1024
#define SESSIONS_PRUNE_TICKS            240             /* the skills ticker's 250 ms turns: a minute */

/* "s-" and 32 lowercase hex digits. */
bool session_id_valid(const char *s);
/* Add a session in state created (function NULL: any of the namespace's
 * may run it; replay_of NULL: none) kept keep_ms from now: its id. */
int session_new(Api *api, const char *ns, const char *function, const char *replay_of, const char *by,
                const void *input, size_t input_len, const void *stdin_data, size_t stdin_len, int64_t keep_ms,
                char ret_id[STORE_SESSION_ID_LEN + 1]);
/* The plain files of an input or output archive as [{"name", "size"}]
 * ([] for an empty one), or NULL with why (a malformed or unsafe archive,
 * more than SESSION_INPUT_ENTRIES_MAX entries, a name twice). */
json_t *session_archive_files(const void *data, size_t len, char *why, size_t why_len);
/* What a model is told of an input archive: each file's path, size and,
 * for text, its first SESSION_PREVIEW_LINES lines (malloc'd; NULL for none). */
char *session_files_preview(const void *data, size_t len);
/* The JSON form (docs/api.md); files: list the archives' files too. */
json_t *session_render(Api *api, const StoreSession *s, bool files);
/* Delete the expired sessions: how many, or a negative errno. */
int sessions_prune(Api *api);
