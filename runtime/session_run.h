/* runtime/session_run.h: one request that carries a session
 * (docs/sessions.md), as the node agent runs it. Before the box: claim the
 * session at the controller (POST /v1/sessions/ID/start, which answers
 * with the input archive), unpack the input and mount /output's tmpfs
 * (runtime/session_fs.h). After it: pack /output, record the outcome
 * (POST /v1/sessions/ID/finish: the result, stdin, stdout and the output
 * archive) and remove the folders. Each step runs on libuv's thread pool
 * and reports on the loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "ctlclient_http.h"
#include "jail.h"

#define SESSION_RUN_BASE        "/run/fnbox/sessions"
#define SESSION_RUN_TIMEOUT_MS  60000           /* one exchange with the controller */
#define SESSION_RUN_KEPT_MAX    (32u << 20)     /* stdout and stdin kept with a session, at most */
#define SESSION_RUN_OUTPUT_SLACK (1u << 20)     /* a full 32 MiB /output packs to a little more: the
                                                 * headers (STORE_SESSION_BLOB_MAX allows for them) */

typedef struct SessionHost {
        const HttpTarget *ctl;          /* the controller */
        const char *token;              /* the node's token */
        const char *base;               /* NULL: SESSION_RUN_BASE */
        uid_t box_uid;
        gid_t box_gid;
        int cancel_fd;                  /* readable: give up the exchanges (the node stops) */
} SessionHost;

typedef struct SessionRun SessionRun;

/* The session is claimed and its folders are made (r 0), or not (r < 0,
 * why; claimed says whether the controller holds it as running: then it
 * must still be ended, with the failure). */
typedef void (*session_begin_fn)(SessionRun *s, int r, bool claimed, const char *why, void *userdata);
/* The outcome is recorded (or could not be: r < 0 and why) and the
 * folders are gone. */
typedef void (*session_end_fn)(SessionRun *s, int r, const char *why, void *userdata);

/* Claim session id for the instance's ns/function/revision/code digest and
 * prepare its folders. All strings are copied. */
int session_run_begin(uv_loop_t *loop, const SessionHost *h, const char *id, const char *ns, const char *function,
                      const char *revision, const char *code_digest, session_begin_fn done, void *userdata,
                      SessionRun **ret);
/* The host folders the jail binds at /input and /output (after a begin
 * that succeeded). */
const char *session_run_input(const SessionRun *s);
const char *session_run_output(const SessionRun *s);
/* Record the outcome: r the box's result (NULL: it did not run; why says
 * why), stdin what it was fed. stdout is r->out, kept up to
 * SESSION_RUN_KEPT_MAX. Nothing is taken from r: it is copied. */
int session_run_end(SessionRun *s, const JailResult *r, const char *why, const void *stdin_data, size_t stdin_len,
                    session_end_fn done, void *userdata);
/* After end's callback (or a begin that failed unclaimed). */
void session_run_free(SessionRun *s);
