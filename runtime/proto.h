/* runtime/proto.h: the messages between `fnbox-runtime run` and the runtime
 * daemon (`fnbox-runtime serve`) on its unix stream socket. A message is a
 * frame: an 8-byte header (type and payload length, u32 each, in host byte
 * order: both ends are on one machine) and the payload. Every type has a
 * payload limit and every field a bound; an unknown type, an oversize or
 * malformed payload, or a frame out of order is refused (and the daemon
 * drops the connection). The code's O_PATH fd travels as SCM_RIGHTS with
 * the RUN frame.
 *
 *   client -> daemon   RUN, STDIN (any number), GO
 *   daemon -> client   RESULT, STDOUT (any number), STDERR (any number), END
 *                      or ERROR (the request was refused or failed)
 *
 * The node agent's invoke socket (docs/internals.md) speaks the same
 * frames with two more, and carries any number of requests in a row:
 *
 *   client -> runtime  HELLO (once, first), then per request
 *                      INVOKE, STDIN (any number), GO
 *   runtime -> client  RESULT, STDOUT (any number), END (no STDERR: it goes
 *                      to the node's logs), or ERROR with PROTO_INVOKE_*;
 *                      an INVOKE with "stderr": true also gets STDERR
 *                      frames before END: the last PROTO_STDERR_TAIL
 *                      bytes of the box's stderr (which still goes to the
 *                      node's logs)
 *
 * This file links without the jail (the activator uses it): it needs
 * jail_config.c, lib/util.c and jansson only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "jail.h"

enum {
        PROTO_RUN = 1,      /* the request: options, code path, arguments, environment */
        PROTO_STDIN = 2,    /* a piece of the box's stdin */
        PROTO_GO = 3,       /* the request is complete: run it (empty) */
        PROTO_HELLO = 4,    /* invoke socket: {"version": 1, "secret": "..."} */
        PROTO_INVOKE = 5,   /* invoke socket: the request's JSON (instead of RUN) */
        PROTO_RESULT = 16,  /* the result's fixed part */
        PROTO_STDOUT = 17,  /* a piece of the box's stdout */
        PROTO_STDERR = 18,  /* a piece of its stderr */
        PROTO_END = 19,     /* the reply is complete (empty) */
        PROTO_ERROR = 20,   /* refused or failed: an exit status and one line */
};

#define PROTO_VERSION     1
#define PROTO_HEADER_SIZE 8
#define PROTO_CHUNK_MAX   (1U << 20)   /* STDIN, STDOUT, STDERR payloads */
#define PROTO_RUN_MAX     (12U << 20)  /* RUN payload */
#define PROTO_OUTPUT_MAX  (1ULL << 30) /* stdout, stderr: the most --output allows */
#define PROTO_TEXT_MAX    512          /* ERROR message */
#define PROTO_PATH_MAX    4096         /* code, entry, cgroup parent */
#define PROTO_ARG_MAX     (128U << 10) /* one argument or KEY=VALUE */
#define PROTO_ARGS_MAX    4096
#define PROTO_ENV_MAX     256
#define PROTO_HELLO_MAX   1024         /* HELLO payload */
#define PROTO_INVOKE_MAX  (64U << 10)  /* INVOKE payload */
#define PROTO_SECRET_MAX  256          /* HELLO secret, bytes */
#define PROTO_ID_MAX      128          /* INVOKE instance id */
#define PROTO_REQID_MAX   200          /* INVOKE requestId */
#define PROTO_TRACE_MAX   128          /* INVOKE traceparent */
#define PROTO_METHOD_MAX  16           /* INVOKE method: an HTTP token */
#define PROTO_URLPART_MAX 8192         /* INVOKE path, query */
#define PROTO_TIMEOUT_MS_MAX (24ULL * 3600 * 1000)
#define PROTO_STDERR_TAIL 4096         /* INVOKE "stderr": the tail of stderr sent back */
#define PROTO_SESSION_MAX 34           /* INVOKE session: "s-" and 32 hex digits */

/* ERROR exit statuses on the invoke socket (docs/internals.md) */
enum {
        PROTO_INVOKE_NO_INSTANCE = 1,  /* no such instance on this node */
        PROTO_INVOKE_NOT_READY = 2,    /* draining or not ready */
        PROTO_INVOKE_BUSY = 3,         /* no free slot */
        PROTO_INVOKE_FAILED = 4,       /* the node failed to run the request */
        PROTO_INVOKE_PROTOCOL = 5,     /* no or a bad HELLO, a bad frame: the connection is closed */
};

typedef struct ProtoFrame {
        uint32_t type;
        uint32_t len;
        const uint8_t *payload;  /* valid until the reader is used again */
} ProtoFrame;

/* The payload limit of a type, or -EBADMSG for a type that does not exist. */
long proto_payload_max(uint32_t type);

/* ----- encoding: frames appended to a growable buffer ----- */

typedef struct ProtoBuf {
        uint8_t *data;
        size_t len, cap;
} ProtoBuf;

void proto_buf_clear(ProtoBuf *b);
int proto_put_frame(ProtoBuf *b, uint32_t type, const void *payload, size_t len);
/* A RUN frame. uid 0 and an empty cgroup parent mean the daemon's defaults. */
int proto_put_run(ProtoBuf *b, const JailConfig *c, uid_t uid, const char *cgroup_parent);
int proto_put_result(ProtoBuf *b, const JailResult *r);
int proto_put_error(ProtoBuf *b, int exit_status, const char *text);

/* ----- a byte stream in, frames out ----- */

typedef struct ProtoReader {
        uint8_t *buf;
        size_t len, cap, start;   /* unread bytes are buf[start..len) */
} ProtoReader;

/* Room to receive into: at least one byte, at most what completes the
 * current frame (so a reader never holds more than one frame). */
int proto_reader_space(ProtoReader *r, uint8_t **ret, size_t *ret_len);
void proto_reader_advance(ProtoReader *r, size_t n);
/* 1 and the next frame, 0 if more bytes are needed, or -EBADMSG / -EMSGSIZE. */
int proto_reader_next(ProtoReader *r, ProtoFrame *ret);
void proto_reader_clear(ProtoReader *r);

/* ----- the request, as the daemon assembles it ----- */

typedef struct ProtoRequest {
        int state;               /* PROTO_RUN, PROTO_STDIN (RUN seen), PROTO_GO (complete) */
        JailConfig cfg;          /* strings point into run; stdin into stdin_data */
        uid_t uid;               /* 0: the daemon's default */
        const char *cgroup_parent; /* NULL: the daemon's */
        uint8_t *run;
        char **args, **env;
        char *stdin_data;
        size_t stdin_len, stdin_cap;
} ProtoRequest;

/* Take one frame: 1 once the request is complete (GO), 0 for more,
 * negative for a frame that is not allowed here. */
int proto_request_feed(ProtoRequest *q, const ProtoFrame *f);
int proto_run_decode(const uint8_t *p, size_t len, ProtoRequest *q);
void proto_request_clear(ProtoRequest *q);

/* ----- the reply, as the client assembles it ----- */

typedef struct ProtoReply {
        int state;               /* the next frame expected; PROTO_END when complete */
        JailResult result;
        uint64_t out_len, err_len;  /* as announced by RESULT */
        bool refused;            /* ERROR instead of a result */
        int exit_status;         /* with refused */
        char text[PROTO_TEXT_MAX + 1];
} ProtoReply;

void proto_reply_init(ProtoReply *p);
int proto_reply_feed(ProtoReply *p, const ProtoFrame *f);
void proto_reply_clear(ProtoReply *p);

/* ----- the reply, as the daemon writes it: whole frames, a batch at a time ----- */

/* The iovecs of one batch: RESULT, up to seven output chunks, END. */
#define PROTO_REPLY_IOV 16

typedef struct ProtoReplyWriter {
        const JailResult *r;
        bool no_stderr;          /* the invoke socket: RESULT announces no stderr */
        int phase;               /* RESULT, STDOUT, STDERR, END, then done */
        size_t off;
        uint8_t heads[PROTO_REPLY_IOV / 2][PROTO_HEADER_SIZE];   /* the batch's chunk and END headers */
        ProtoBuf fixed;          /* the RESULT frame */
} ProtoReplyWriter;

/* ----- the invoke socket ----- */

typedef struct ProtoHello {
        uint32_t version;
        char secret[PROTO_SECRET_MAX + 1];   /* "" when none was sent */
} ProtoHello;

int proto_put_hello(ProtoBuf *b, const char *secret);
/* Decode a HELLO payload: -EBADMSG unless it is a JSON object with an
 * integer version (only PROTO_VERSION is accepted: -EPROTONOSUPPORT) and an
 * optional string secret of at most PROTO_SECRET_MAX bytes. */
int proto_hello_decode(const uint8_t *p, size_t len, ProtoHello *ret);

typedef struct ProtoInvoke {
        char instance[PROTO_ID_MAX + 1];
        char request_id[PROTO_REQID_MAX + 1];    /* "" when none */
        char traceparent[PROTO_TRACE_MAX + 1];   /* "" when none */
        char method[PROTO_METHOD_MAX + 1];       /* default "POST" */
        char path[PROTO_URLPART_MAX + 1];        /* default "/" */
        char query[PROTO_URLPART_MAX + 1];       /* "" when none */
        uint64_t timeout_ms;                     /* 0: the instance's own */
        unsigned depth;                          /* broker calls nested above this one (0..64) */
        bool stderr_tail;                        /* "stderr": true: send the stderr's tail back */
        char session[PROTO_SESSION_MAX + 1];     /* "" or a session (docs/sessions.md): input files at
                                                  * /input, /output kept; the runtime claims it */
} ProtoInvoke;
/* A session id: "s-" and 32 lowercase hex digits. */
bool proto_session_valid(const char *s);
#define PROTO_DEPTH_MAX 64

int proto_put_invoke(ProtoBuf *b, const ProtoInvoke *inv);
/* Decode an INVOKE payload: a JSON object (no unknown keys) whose strings
 * are within their bounds and free of control characters; instance is
 * required; the method is an HTTP token; the path starts with '/'. */
int proto_invoke_decode(const uint8_t *p, size_t len, ProtoInvoke *ret);

/* One request on the invoke socket, as the runtime assembles it. */
typedef struct ProtoInvokeRequest {
        int state;               /* 0, PROTO_STDIN (INVOKE seen), PROTO_GO (complete) */
        ProtoInvoke inv;
        char *stdin_data;
        size_t stdin_len, stdin_cap;
        uint64_t stdin_max;      /* 0: JAIL_STDIN_MAX */
} ProtoInvokeRequest;

/* Take one frame: 1 once the request is complete (GO), 0 for more, -EFBIG
 * for a body over stdin_max, -EBADMSG (or the decoder's error) for a frame
 * that is not allowed here. */
int proto_invoke_feed(ProtoInvokeRequest *q, const ProtoFrame *f);
/* Free the body and make q ready for the next request (stdin_max kept). */
void proto_invoke_request_clear(ProtoInvokeRequest *q);

/* The next whole frames of the reply, as many as PROTO_REPLY_IOV iovecs
 * hold: the number of iovecs, 0 when all was given. They stay valid until
 * the next call. A reply of up to seven chunks is one batch, so one writev:
 * a daemon killed while it answers leaves all of it or none of it on the
 * socket, not a RESULT whose output never comes. */
int proto_reply_next(ProtoReplyWriter *w, struct iovec iov[PROTO_REPLY_IOV]);
void proto_reply_writer_clear(ProtoReplyWriter *w);
