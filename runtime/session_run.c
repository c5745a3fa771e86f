/* runtime/session_run.c: a session's claim, folders and record
 * (session_run.h). The blocking parts (HTTP to the controller, unpacking,
 * mounting, packing) run in uv_queue_work; the callbacks run on the loop. */
#define _GNU_SOURCE
#include "session_run.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "session_fs.h"

struct SessionRun {
        uv_loop_t *loop;
        SessionHost h;
        HttpTarget ctl;
        char *token, *base, *id, *ns, *function, *revision, *code_digest;
        uv_work_t work;
        SessionFs fs;
        bool claimed;
        int r;
        char why[300];
        /* end */
        json_t *head;                   /* the finish's JSON line, less outputSize */
        char *io;                       /* stdin then stdout, as kept */
        size_t in_len, out_len;
        session_begin_fn begin_done;
        session_end_fn end_done;
        void *userdata;
};

void session_run_free(SessionRun *s) {
        if (!s)
                return;
        session_fs_remove(&s->fs);
        if (s->token) {
                explicit_bzero(s->token, strlen(s->token));
                free(s->token);
        }
        free(s->base), free(s->id), free(s->ns), free(s->function), free(s->revision), free(s->code_digest);
        json_decref(s->head);
        free(s->io);
        free(s);
}

const char *session_run_input(const SessionRun *s) {
        return s->fs.input;
}

const char *session_run_output(const SessionRun *s) {
        return s->fs.output;
}

/* The message of a controller's JSON error, or the status. */
static void answer_why(const HttpResponse *res, const char *what, char *why, size_t len) {
        json_t *o = res->body ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
        const char *msg = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
        if (msg)
                snprintf(why, len, "%s: %s", what, msg);
        else
                snprintf(why, len, "%s: the controller answered %d", what, res->status);
        json_decref(o);
}

/* ---- begin ------------------------------------------------------------------------------ */

static void begin_work(uv_work_t *w) {
        SessionRun *s = w->data;
        char path[128];
        json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "namespace", s->ns, "function", s->function, "revision",
                                 s->revision, "codeDigest", s->code_digest);
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!text) {
                s->r = -ENOMEM;
                snprintf(s->why, sizeof s->why, "out of memory");
                return;
        }
        snprintf(path, sizeof path, "/v1/sessions/%s/start", s->id);
        HttpRequest rq = { .method = "POST", .path = path, .token = s->token, .content_type = "application/json",
                           .body = text, .body_len = strlen(text), .max_body = SESSION_FS_INPUT_MAX,
                           .timeout_ms = SESSION_RUN_TIMEOUT_MS, .cancel_fd = s->h.cancel_fd };
        HttpResponse res = { 0 };
        s->r = http_do(&s->ctl, &rq, &res);
        free(text);
        if (s->r < 0)
                snprintf(s->why, sizeof s->why, "session %s: the controller did not answer: %s", s->id, strerror(-s->r));
        else if (res.status != 200) {
                char what[64];
                snprintf(what, sizeof what, "session %s", s->id);
                answer_why(&res, what, s->why, sizeof s->why);
                s->r = res.status == 404 ? -ENOENT : res.status == 409 ? -EBUSY : -EPROTO;
        } else {
                s->claimed = true;
                s->r = session_fs_make(s->base, s->id, res.body, res.body_len, s->h.box_uid, s->h.box_gid, &s->fs,
                                       s->why, sizeof s->why);
        }
        http_response_clear(&res);
}

static void begin_after(uv_work_t *w, int status) {
        SessionRun *s = w->data;
        if (status < 0 && s->r >= 0) {
                s->r = -ECANCELED;
                snprintf(s->why, sizeof s->why, "cancelled");
        }
        s->begin_done(s, s->r, s->claimed, s->why, s->userdata);
}

static char *dup_or(const char *v) {
        return strdup(v ? v : "");
}

int session_run_begin(uv_loop_t *loop, const SessionHost *h, const char *id, const char *ns, const char *function,
                      const char *revision, const char *code_digest, session_begin_fn done, void *userdata,
                      SessionRun **ret) {
        SessionRun *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        *s = (SessionRun) { .loop = loop, .h = *h, .ctl = *h->ctl, .begin_done = done, .userdata = userdata };
        s->token = dup_or(h->token);
        s->base = dup_or(h->base ? h->base : SESSION_RUN_BASE);
        s->id = dup_or(id), s->ns = dup_or(ns), s->function = dup_or(function), s->revision = dup_or(revision);
        s->code_digest = dup_or(code_digest);
        s->h.ctl = &s->ctl, s->h.token = s->token, s->h.base = s->base;
        if (!s->token || !s->base || !s->id || !s->ns || !s->function || !s->revision || !s->code_digest) {
                session_run_free(s);
                return -ENOMEM;
        }
        s->work.data = s;
        int r = uv_queue_work(loop, &s->work, begin_work, begin_after);
        if (r < 0) {
                session_run_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

/* ---- end -------------------------------------------------------------------------------- */

static json_t *result_json(const JailResult *r, const char *why) {
        if (!r)
                return json_pack("{s:s, s:s}", "status", "not_run", "error", why ? why : "");
        json_t *o = json_pack("{s:s, s:f, s:f, s:I}", "status", jail_status_to_string(r->status), "wallMs", r->wall_ms,
                              "cpuMs", r->cpu_ms, "maxRssKb", (json_int_t) r->max_rss_kb);
        if (o && r->status == JAIL_EXITED)
                json_object_set_new(o, "exitCode", json_integer(r->exit_code));
        if (o && r->signal)
                json_object_set_new(o, "signal", json_integer(r->signal));
        if (o && r->status == JAIL_SETUP_ERROR)
                json_object_set_new(o, "error", json_string(r->error));
        if (o && r->out.len > SESSION_RUN_KEPT_MAX)
                json_object_set_new(o, "stdoutKept", json_integer(SESSION_RUN_KEPT_MAX));
        return o;
}

static void end_work(uv_work_t *w) {
        SessionRun *s = w->data;
        char path[128];
        void *out = NULL;
        size_t out_len = 0;
        int pr = s->fs.output ? session_fs_pack_output(&s->fs, &out, &out_len, s->why, sizeof s->why) : 0;
        if (pr == 0 && out_len > SESSION_RUN_KEPT_MAX + SESSION_RUN_OUTPUT_SLACK) {
                pr = -E2BIG;
                snprintf(s->why, sizeof s->why, "output: the archive of /output is over %u bytes",
                         SESSION_RUN_KEPT_MAX + SESSION_RUN_OUTPUT_SLACK);
        }
        if (pr < 0) {
                json_object_set_new(s->head, "state", json_string("failed"));
                json_object_set_new(json_object_get(s->head, "result"), "outputError", json_string(s->why));
                free(out);
                out = NULL, out_len = 0;
        }
        json_object_set_new(s->head, "outputSize", json_integer((json_int_t) out_len));
        /* one line of JSON, then stdin, stdout and the output archive */
        char *line = json_dumps(s->head, JSON_COMPACT);
        size_t ll = line ? strlen(line) : 0, total = ll + 1 + s->in_len + s->out_len + out_len;
        char *body = line ? malloc(total) : NULL;
        if (!body) {
                free(line), free(out);
                s->r = -ENOMEM;
                snprintf(s->why, sizeof s->why, "out of memory");
                return;
        }
        memcpy(body, line, ll);
        body[ll] = '\n';
        if (s->in_len + s->out_len)
                memcpy(body + ll + 1, s->io, s->in_len + s->out_len);
        if (out_len)
                memcpy(body + ll + 1 + s->in_len + s->out_len, out, out_len);
        free(line), free(out);
        snprintf(path, sizeof path, "/v1/sessions/%s/finish", s->id);
        HttpRequest rq = { .method = "POST", .path = path, .token = s->token,
                           .content_type = "application/x-fnbox-session-result", .body = body, .body_len = total,
                           .max_body = 64 << 10, .timeout_ms = SESSION_RUN_TIMEOUT_MS, .cancel_fd = s->h.cancel_fd };
        HttpResponse res = { 0 };
        s->r = http_do(&s->ctl, &rq, &res);
        free(body);
        if (s->r < 0)
                snprintf(s->why, sizeof s->why, "session %s: recording the outcome: %s", s->id, strerror(-s->r));
        else if (res.status != 200) {
                char what[96];
                snprintf(what, sizeof what, "session %s: recording the outcome", s->id);
                answer_why(&res, what, s->why, sizeof s->why);
                s->r = -EPROTO;
        } else
                s->r = 0;
        http_response_clear(&res);
        session_fs_remove(&s->fs);
}

static void end_after(uv_work_t *w, int status) {
        SessionRun *s = w->data;
        if (status < 0 && s->r >= 0) {
                s->r = -ECANCELED;
                snprintf(s->why, sizeof s->why, "cancelled");
        }
        s->end_done(s, s->r, s->why, s->userdata);
}

int session_run_end(SessionRun *s, const JailResult *r, const char *why, const void *stdin_data, size_t stdin_len,
                    session_end_fn done, void *userdata) {
        size_t so_len = r ? r->out.len : 0, in_len = stdin_len;
        if (so_len > SESSION_RUN_KEPT_MAX)
                so_len = SESSION_RUN_KEPT_MAX;
        if (in_len > SESSION_RUN_KEPT_MAX)
                in_len = SESSION_RUN_KEPT_MAX;
        json_t *head = json_pack("{s:s, s:o, s:I, s:I}", "state", r ? "done" : "failed", "result",
                                 result_json(r, why), "stdinSize", (json_int_t) in_len, "stdoutSize",
                                 (json_int_t) so_len);
        char *io = malloc(in_len + so_len + 1);
        if (!head || !io) {
                json_decref(head);
                free(io);
                return -ENOMEM;
        }
        if (in_len)
                memcpy(io, stdin_data, in_len);
        if (so_len)
                memcpy(io + in_len, r->out.data, so_len);
        json_decref(s->head);
        free(s->io);
        s->head = head, s->io = io, s->in_len = in_len, s->out_len = so_len;
        s->end_done = done;
        s->userdata = userdata;
        s->r = 0;
        s->why[0] = 0;
        s->work.data = s;
        return uv_queue_work(s->loop, &s->work, end_work, end_after);
}
