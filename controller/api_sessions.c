/* controller/api_sessions.c: sessions (docs/sessions.md): runs of a fresh
 * box with input files at /input and what it wrote to /output, kept with
 * its stdin, stdout, revision and code digest until the session expires,
 * and replayed on the same revision. The CLI creates a session with its
 * input archive; the node agent that runs the request claims it (start,
 * which hands it the archive) and records the outcome (finish); a replay
 * is a new session of the original's revision, pinned into the route table
 * while a worker calls it through the activator. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "controller/api.h"
#include "controller/cluster.h"
#include "controller/retention.h"
#include "controller/sessions.h"
#include "controller/skills_internal.h"
#include "lib/artifact.h"
#include "lib/manifest.h"

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "s-" + the time in ms (12 hex digits) + 80 random bits (20 hex digits):
 * ids sort by creation. */
static int session_id_new(char buf[STORE_SESSION_ID_LEN + 1]) {
        uint8_t rnd[10];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
                return -EIO;
        int n = snprintf(buf, STORE_SESSION_ID_LEN + 1, "s-%012" PRIx64, (uint64_t) now_ms() & (uint64_t) 0xffffffffffff);
        for (size_t i = 0; i < sizeof rnd; i++)
                n += snprintf(buf + n, STORE_SESSION_ID_LEN + 1 - (size_t) n, "%02x", rnd[i]);
        return 0;
}

bool session_id_valid(const char *s) {
        if (!s || strlen(s) != STORE_SESSION_ID_LEN || strncmp(s, "s-", 2) != 0)
                return false;
        for (const char *p = s + 2; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

int session_new(Api *api, const char *ns, const char *function, const char *replay_of, const char *by,
                const void *input, size_t input_len, const void *stdin_data, size_t stdin_len, int64_t keep_ms,
                char ret_id[STORE_SESSION_ID_LEN + 1]) {
        int r = session_id_new(ret_id);
        if (r < 0)
                return r;
        int64_t now = now_ms();
        StoreSession s = { .id = ret_id, .namespace_ = (char *) ns, .function = (char *) (function ? function : ""),
                           .replay_of = (char *) (replay_of ? replay_of : ""), .created_by = (char *) by,
                           .created_ms = now, .expires_ms = now + keep_ms };
        return store_session_create(api->store, &s, input_len ? input : NULL, input_len,
                                    stdin_len ? stdin_data : NULL, stdin_len);
}

/* ---- the input archive --------------------------------------------------------------- */

typedef struct Listing {
        json_t *files;          /* [{"name", "size"}] */
        size_t entries;
        char why[200];
} Listing;

static int list_entry(const char *path, char type, const void *content, size_t size, void *userdata) {
        (void) content;
        Listing *l = userdata;
        if (++l->entries > SESSION_INPUT_ENTRIES_MAX) {
                snprintf(l->why, sizeof l->why, "input: more than %u entries", SESSION_INPUT_ENTRIES_MAX);
                return -E2BIG;
        }
        if (type != '0')
                return 0;
        size_t i;
        json_t *f;
        json_array_foreach(l->files, i, f)
                if (strcmp(json_string_value(json_object_get(f, "name")), path) == 0) {
                        snprintf(l->why, sizeof l->why, "input: %.100s appears twice", path);
                        return -EINVAL;
                }
        return json_array_append_new(l->files, json_pack("{s:s, s:I}", "name", path, "size", (json_int_t) size));
}

/* The files of an archive ([] for none), or NULL with why. */
json_t *session_archive_files(const void *data, size_t len, char *why, size_t why_len) {
        Listing l = { .files = json_array() };
        if (!l.files)
                return snprintf(why, why_len, "out of memory"), NULL;
        if (len == 0)
                return l.files;
        int r = artifact_list(data, len, list_entry, &l);
        if (r < 0) {
                if (l.why[0])
                        snprintf(why, why_len, "%s", l.why);
                else
                        snprintf(why, why_len, "input: entry %zu of the archive is malformed or not allowed (a ustar "
                                 "archive of plain files and folders, relative paths without '..')", l.entries + 1);
                json_decref(l.files);
                return NULL;
        }
        return l.files;
}

typedef struct Preview {
        char *text;
        size_t len, cap;
} Preview;

static void preview_add(Preview *p, const char *s, size_t n) {
        if (p->len + n + 1 > p->cap) {
                size_t cap = (p->len + n + 1) * 2;
                char *t = realloc(p->text, cap);
                if (!t)
                        return;
                p->text = t, p->cap = cap;
        }
        memcpy(p->text + p->len, s, n);
        p->len += n;
        p->text[p->len] = 0;
}

static int preview_entry(const char *path, char type, const void *content, size_t size, void *userdata) {
        Preview *p = userdata;
        char line[400];
        if (type != '0')
                return 0;
        preview_add(p, line, (size_t) snprintf(line, sizeof line, "- /input/%.250s (%zu bytes)", path, size));
        const char *c = content;
        size_t head = size < SESSION_PREVIEW_BYTES ? size : SESSION_PREVIEW_BYTES;
        if (size == 0 || memchr(c, 0, head)) {
                preview_add(p, "\n", 1);
                return 0;
        }
        preview_add(p, ", its first lines:\n", 19);
        for (unsigned lines = 0; head > 0 && lines < SESSION_PREVIEW_LINES; lines++) {
                const char *nl = memchr(c, '\n', head);
                size_t n = nl ? (size_t) (nl - c) : head;
                preview_add(p, "    ", 4);
                preview_add(p, c, n);
                preview_add(p, "\n", 1);
                c += nl ? n + 1 : n;
                head -= nl ? n + 1 : n;
        }
        return 0;
}

char *session_files_preview(const void *data, size_t len) {
        Preview p = {};
        if (len == 0 || artifact_list(data, len, preview_entry, &p) < 0) {
                free(p.text);
                return NULL;
        }
        return p.text;
}

/* ---- rendering ------------------------------------------------------------------------ */

static json_t *blob_json(const char *digest, int64_t size) {
        return json_pack("{s:s, s:I}", "digest", digest ? digest : "", "size", (json_int_t) size);
}

static json_t *time_or_null(int64_t ms) {
        return ms > 0 ? api_time_json(ms) : json_null();
}

json_t *session_render(Api *api, const StoreSession *s, bool files) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", s->id,
                              "namespace", s->namespace_, "function", s->function ? s->function : "", "state",
                              s->state, "revision", s->revision ? s->revision : "", "codeDigest",
                              s->code_digest ? s->code_digest : "", "replayOf", s->replay_of ? s->replay_of : "",
                              "createdBy", s->created_by ? s->created_by : "", "createdAt", time_or_null(s->created_ms),
                              "startedAt", time_or_null(s->started_ms), "finishedAt", time_or_null(s->finished_ms),
                              "expiresAt", time_or_null(s->expires_ms));
        if (!o)
                return NULL;
        json_t *in = blob_json(s->input_digest, s->input_size), *out = blob_json(s->output_digest, s->output_size);
        json_object_set_new(o, "input", in);
        json_object_set_new(o, "stdin", blob_json(s->stdin_digest, s->stdin_size));
        json_object_set_new(o, "stdout", blob_json(s->stdout_digest, s->stdout_size));
        json_object_set_new(o, "output", out);
        json_object_set_new(o, "result", api_json_text(s->result_json));
        /* the file lists, read from the archives (a show, not a list) */
        static const char *const which[] = { "input", "output" };
        json_t *holders[] = { in, out };
        for (size_t k = 0; files && k < 2; k++) {
                void *data = NULL;
                size_t len = 0;
                char why[256];
                if (store_session_blob(api->store, s->id, which[k], &data, &len) < 0)
                        continue;
                json_t *list = session_archive_files(data, len, why, sizeof why);
                free(data);
                if (holders[k] && list)
                        json_object_set_new(holders[k], "files", list);
        }
        return o;
}

/* ---- handlers -------------------------------------------------------------------------- */

/* The session of params[0] when the caller may act in its namespace with
 * min_role: 0, or -1 with resp filled (404 for one it may not see). */
static int session_param(Api *api, HttpRequest *req, TokenRole min_role, StoreSession *ret, HttpResponse *resp) {
        const char *id = req->n_params > 0 ? req->params[0] : "";
        if (!session_id_valid(id)) {
                http_error(resp, 400, "bad_request", "id", "a session id is s- and 32 hex digits");
                return -1;
        }
        int r = store_session_get(api->store, id, ret);
        /* another namespace's, or expired (the pruning comes once a minute) */
        if (r == 0 && (!auth_allows(&req->principal, TOKEN_ROLE_INVOKER, ret->namespace_) ||
                       ret->expires_ms <= now_ms())) {
                store_session_clear(ret);
                r = -ENOENT;
        }
        if (r == -ENOENT) {
                http_error(resp, 404, "not_found", NULL, "no session %s", id);
                return -1;
        }
        if (r < 0) {
                api_store_error(api, resp, r, "session");
                return -1;
        }
        if (!auth_allows(&req->principal, min_role, ret->namespace_)) {
                http_error(resp, 403, "forbidden", NULL, "this needs the %s role in namespace %s",
                           token_role_to_string(min_role), ret->namespace_);
                store_session_clear(ret);
                return -1;
        }
        return 0;
}

void api_session_create(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns, *fn = http_query(req, "function"), *keep = http_query(req, "retention");
        char why[256], id[STORE_SESSION_ID_LEN + 1], by[160];
        int64_t keep_ms = api->session_retention_ms;
        if (api_namespace(req, TOKEN_ROLE_INVOKER, false, &ns, resp) < 0)
                return;
        if (fn && !manifest_name_valid(fn)) {
                http_error(resp, 400, "bad_request", "function", "function: expected a DNS-1123 label");
                return;
        }
        if (keep && (retention_parse(keep, api->session_retention_ms, &keep_ms) < 0 || keep_ms <= 0)) {
                http_error(resp, 400, "bad_request", "retention",
                           "retention: a duration such as 7d, 12h or 90m, above 0 and at most the controller's "
                           "--session-retention");
                return;
        }
        if (fn) {
                StoreFunction f = {};
                int r = store_function_get(api->store, ns, fn, &f);
                store_function_clear(&f);
                if (r == -ENOENT) {
                        http_error(resp, 404, "not_found", "function", "no function %s/%s", ns, fn);
                        return;
                }
                if (r < 0) {
                        api_store_error(api, resp, r, "function");
                        return;
                }
        }
        _cleanup_json_ json_t *files = session_archive_files(req->body, req->body_len, why, sizeof why);
        if (!files) {
                http_error(resp, 400, "bad_request", "input", "%s", why);
                return;
        }
        api_by(req, by, sizeof by);
        int r = session_new(api, ns, fn, NULL, by, req->body, req->body_len, NULL, 0, keep_ms, id);
        if (r < 0) {
                api_store_error(api, resp, r, "session");
                return;
        }
        StoreSession got = {};
        if ((r = store_session_get(api->store, id, &got)) < 0) {
                api_store_error(api, resp, r, "session");
                return;
        }
        json_t *o = session_render(api, &got, false);
        store_session_clear(&got);
        if (o)
                json_object_set(json_object_get(o, "input"), "files", files);
        http_reply(resp, 201, o);
}

void api_sessions_list(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *ns;
        size_t limit;
        if (api_namespace(req, TOKEN_ROLE_INVOKER, false, &ns, resp) < 0 || api_limit(req, &limit, resp) < 0)
                return;
        const char *after = http_query(req, "after");
        if (after && !session_id_valid(after)) {
                http_error(resp, 400, "bad_request", "after", "after: a session id");
                return;
        }
        StoreSession *a = NULL;
        size_t n = 0;
        char *next = NULL;
        int r = store_session_list(api->store, ns, after, limit, &a, &n, &next);
        if (r < 0) {
                api_store_error(api, resp, r, "sessions");
                return;
        }
        json_t *items = json_array();
        for (size_t i = 0; items && i < n; i++)
                json_array_append_new(items, session_render(api, &a[i], false));
        store_session_array_free(a, n);
        http_reply(resp, 200, json_pack("{s:o, s:o}", "items", items ? items : json_array(), "next",
                                        next ? json_string(next) : json_null()));
        free(next);
}

void api_session_get(Api *api, HttpRequest *req, HttpResponse *resp) {
        StoreSession s = {};
        if (session_param(api, req, TOKEN_ROLE_INVOKER, &s, resp) < 0)
                return;
        http_reply(resp, 200, session_render(api, &s, true));
        store_session_clear(&s);
}

void api_session_blob(Api *api, HttpRequest *req, HttpResponse *resp) {
        static const char *const kinds[] = { "input", "stdin", "stdout", "output" };
        const char *which = req->n_params > 1 ? req->params[1] : "";
        bool known = false;
        for (size_t i = 0; i < 4; i++)
                known = known || strcmp(which, kinds[i]) == 0;
        if (!known) {
                http_error(resp, 404, "not_found", NULL, "a session has input, stdin, stdout and output");
                return;
        }
        StoreSession s = {};
        if (session_param(api, req, TOKEN_ROLE_INVOKER, &s, resp) < 0)
                return;
        void *data = NULL;
        size_t len = 0;
        int r = store_session_blob(api->store, s.id, which, &data, &len);
        store_session_clear(&s);
        if (r < 0) {
                api_store_error(api, resp, r, "session");
                return;
        }
        bool tar = strcmp(which, "input") == 0 || strcmp(which, "output") == 0;
        http_reply_raw(resp, 200, tar ? "application/x-tar" : "application/octet-stream", data, len);
}

void api_session_delete(Api *api, HttpRequest *req, HttpResponse *resp) {
        StoreSession s = {};
        if (session_param(api, req, TOKEN_ROLE_DEVELOPER, &s, resp) < 0)
                return;
        int r = store_session_delete(api->store, s.id);
        store_session_clear(&s);
        if (r < 0)
                api_store_error(api, resp, r, "session");
        else
                http_reply_empty(resp, 204);
}

/* ---- node agents: claim and record --------------------------------------------------- */

static const char *str_field(const json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

void api_session_start(Api *api, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_t *body = NULL;
        StoreSession s = {};
        if (api_body_object(req, &body, resp) < 0 || session_param(api, req, TOKEN_ROLE_ADMIN, &s, resp) < 0)
                return;
        const char *ns = str_field(body, "namespace"), *fn = str_field(body, "function"),
                   *rev = str_field(body, "revision"), *digest = str_field(body, "codeDigest");
        if (!ns || !fn || !rev || !digest || !manifest_name_valid(fn) || api_revision_number(fn, rev) <= 0 ||
            !artifact_digest_valid(digest)) {
                http_error(resp, 400, "bad_request", NULL,
                           "expected {namespace, function, revision (FUNCTION-NNNNN), codeDigest}");
                store_session_clear(&s);
                return;
        }
        int r = 0;
        if (strcmp(ns, s.namespace_) != 0)
                http_error(resp, 409, "conflict", "namespace", "session %s belongs to namespace %s, not %s", s.id,
                           s.namespace_, ns);
        else if (s.function[0] && strcmp(fn, s.function) != 0)
                http_error(resp, 409, "conflict", "function", "session %s is for function %s, not %s", s.id,
                           s.function, fn);
        else if ((r = store_session_start(api->store, s.id, fn, rev, digest, 0)) == -EBUSY)
                http_error(resp, 409, "conflict", NULL, "session %s has already run (a session runs once; "
                           "replay it for another run)", s.id);
        else if (r < 0)
                api_store_error(api, resp, r, "session");
        else {
                void *data = NULL;
                size_t len = 0;
                if ((r = store_session_blob(api->store, s.id, "input", &data, &len)) < 0)
                        api_store_error(api, resp, r, "session");
                else
                        http_reply_raw(resp, 200, "application/x-tar", data, len);
        }
        store_session_clear(&s);
}

/* The finish body: one line of JSON {"state", "result", "stdinSize",
 * "stdoutSize", "outputSize"}, then that many bytes of each, in order. */
void api_session_finish(Api *api, HttpRequest *req, HttpResponse *resp) {
        StoreSession s = {};
        if (session_param(api, req, TOKEN_ROLE_ADMIN, &s, resp) < 0)
                return;
        const char *nl = req->body ? memchr(req->body, '\n', req->body_len < SESSION_FINISH_HEAD_MAX ?
                                                               req->body_len : SESSION_FINISH_HEAD_MAX) : NULL;
        json_error_t err;
        _cleanup_json_ json_t *head = nl ? json_loadb(req->body, (size_t) (nl - req->body), 0, &err) : NULL;
        const char *state = str_field(head, "state");
        json_t *result = json_object_get(head, "result");
        json_int_t sizes[3] = { json_integer_value(json_object_get(head, "stdinSize")),
                                json_integer_value(json_object_get(head, "stdoutSize")),
                                json_integer_value(json_object_get(head, "outputSize")) };
        size_t rest = nl ? req->body_len - (size_t) (nl + 1 - req->body) : 0, total = 0;
        bool ok = head && state && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0) &&
                  json_is_object(result);
        for (size_t i = 0; ok && i < 3; i++) {
                ok = sizes[i] >= 0 && (size_t) sizes[i] <= STORE_SESSION_BLOB_MAX;
                total += ok ? (size_t) sizes[i] : 0;
        }
        if (!ok || total != rest) {
                http_error(resp, 400, "bad_request", NULL, "expected a line of JSON {state: done|failed, result, "
                           "stdinSize, stdoutSize, outputSize} and then those bytes");
                store_session_clear(&s);
                return;
        }
        _cleanup_free_ char *text = json_dumps(result, JSON_COMPACT);
        const char *p = nl + 1;
        int r = text ? store_session_finish(api->store, s.id, state, text, p, (size_t) sizes[0], p + sizes[0],
                                            (size_t) sizes[1], p + sizes[0] + sizes[1], (size_t) sizes[2], 0)
                     : -ENOMEM;
        if (r == -EBUSY)
                http_error(resp, 409, "conflict", NULL, "session %s is %s, not running", s.id, s.state);
        else if (r < 0)
                api_store_error(api, resp, r, "session");
        else
                http_reply(resp, 200, json_pack("{s:s, s:s}", "id", s.id, "state", state));
        store_session_clear(&s);
}

/* ---- replay ---------------------------------------------------------------------------- */

typedef struct Replay {
        Api *api;
        HttpRequest *req;
        char *token;
        StoreSession orig;
        char id[STORE_SESSION_ID_LEN + 1];
        void *stdin_data;
        size_t stdin_len;
} Replay;

static void replay_free(Replay *p) {
        store_session_clear(&p->orig);
        free(p->token);
        free(p->stdin_data);
        free(p);
}

static bool same_str(const char *a, const char *b) {
        return strcmp(a ? a : "", b ? b : "") == 0;
}

static void replay_run(Replay *p, HttpResponse *resp) {
        Api *api = p->api;
        char tag[64], path[512], why[256];
        const StoreSession *o = &p->orig;
        int r = cluster_pin(api->cluster, o->namespace_, o->function, o->revision, tag, sizeof tag);
        if (r < 0) {
                http_error(resp, 500, "internal", NULL, "could not route revision %s: %s", o->revision, strerror(-r));
                return;
        }
        snprintf(path, sizeof path, "/fn/%s/%s@%s", o->namespace_, o->function, tag);
        SkillsAnswer a = {};
        r = skills_call(api->skills, path, p->token, p->id, p->stdin_data, p->stdin_len, SESSION_REPLAY_TIMEOUT_MS,
                        &a);
        cluster_unpin(api->cluster, o->namespace_, o->function, o->revision);
        /* the session says whether the box ran (its answer may well be a
         * box's error, or more than this client keeps); the answer says why
         * when it did not */
        if (r < 0)
                snprintf(why, sizeof why, "%s", strerror(-r));
        else
                skills_answer_why(api->skills, &a, why, sizeof why);
        skills_answer_clear(&a);
        StoreSession now = {};
        if ((r = store_session_get(api->store, p->id, &now)) < 0) {
                api_store_error(api, resp, r, "session");
                return;
        }
        if (strcmp(now.state, "done") != 0 && strcmp(now.state, "failed") != 0) {
                http_error(resp, 502, "unavailable", NULL, "the replay %s did not run (it is %s): %s", now.id,
                           now.state, why);
                store_session_clear(&now);
                return;
        }
        _cleanup_json_ json_t *res_o = api_json_text(o->result_json), *res_n = api_json_text(now.result_json);
        bool same_status = json_equal(json_object_get(res_o, "status"), json_object_get(res_n, "status")) &&
                           json_equal(json_object_get(res_o, "exitCode"), json_object_get(res_n, "exitCode"));
        json_t *same = json_pack("{s:b, s:b, s:b, s:b}", "stdout", same_str(o->stdout_digest, now.stdout_digest),
                                 "output", same_str(o->output_digest, now.output_digest), "status", same_status,
                                 "code", same_str(o->code_digest, now.code_digest));
        http_reply(resp, 200, json_pack("{s:o, s:s, s:o}", "session", session_render(api, &now, true), "replayOf",
                                        o->id, "same", same));
        store_session_clear(&now);
}

static void *replay_main(void *arg) {
        Replay *p = arg;
        HttpResponse resp = {};
        replay_run(p, &resp);
        http_resume(p->req, &resp);
        replay_free(p);
        return NULL;
}

void api_session_replay(Api *api, HttpRequest *req, HttpResponse *resp) {
        char by[160];
        const char *token = api_bearer(req);
        Replay *p = calloc(1, sizeof *p);
        if (!token) {
                http_error(resp, 401, "unauthenticated", NULL, "a replay needs a bearer token");
                free(p);
                return;
        }
        if (!p || !(p->token = strdup(token))) {
                http_error(resp, 500, "internal", NULL, "out of memory");
                if (p)
                        replay_free(p);
                return;
        }
        p->api = api;
        p->req = req;
        if (session_param(api, req, TOKEN_ROLE_INVOKER, &p->orig, resp) < 0) {
                replay_free(p);
                return;
        }
        StoreSession *o = &p->orig;
        if (strcmp(o->state, "done") != 0 && strcmp(o->state, "failed") != 0) {
                http_error(resp, 409, "conflict", NULL, "session %s is %s: only a finished session can be replayed",
                           o->id, o->state);
                replay_free(p);
                return;
        }
        StoreRevision rev = {};
        int64_t number = api_revision_number(o->function, o->revision);
        int r = number > 0 ? store_revision_get(api->store, o->namespace_, o->function, number, &rev) : -ENOENT;
        store_revision_clear(&rev);
        if (r == -ENOENT) {
                http_error(resp, 410, "gone", NULL, "revision %s of %s/%s that session %s ran is gone",
                           o->revision[0] ? o->revision : "(none)", o->namespace_, o->function, o->id);
                replay_free(p);
                return;
        }
        void *input = NULL;
        size_t input_len = 0;
        if (r < 0 || (r = store_session_blob(api->store, o->id, "input", &input, &input_len)) < 0 ||
            (r = store_session_blob(api->store, o->id, "stdin", &p->stdin_data, &p->stdin_len)) < 0) {
                free(input);
                api_store_error(api, resp, r, "session");
                replay_free(p);
                return;
        }
        api_by(req, by, sizeof by);
        r = session_new(api, o->namespace_, o->function, o->id, by, input, input_len, p->stdin_data, p->stdin_len,
                        api->session_retention_ms, p->id);
        free(input);
        if (r < 0) {
                api_store_error(api, resp, r, "session");
                replay_free(p);
                return;
        }
        http_defer(req);
        if (skills_worker_start(api->skills, replay_main, p) < 0) {
                HttpResponse busy = {};
                http_error(&busy, 429, "busy", NULL, "%u skill jobs, promotions and replays already run here; "
                           "retry later", SKILLS_WORKERS);
                replay_free(p);
                http_resume(req, &busy);
        }
}

/* ---- retention ------------------------------------------------------------------------- */

int sessions_prune(Api *api) {
        return store_session_prune(api->store, now_ms());
}
