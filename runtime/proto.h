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
 *                      or ERROR (the request was refused or failed) */
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

/* ----- the reply, as the daemon writes it: a frame at a time ----- */

typedef struct ProtoReplyWriter {
        const JailResult *r;
        int phase;               /* RESULT, STDOUT, STDERR, END, then done */
        size_t off;
        uint8_t head[PROTO_HEADER_SIZE];
        ProtoBuf fixed;          /* the RESULT frame */
} ProtoReplyWriter;

/* The next frame as up to two iovecs (header, data); 0 when all was given. */
int proto_reply_next(ProtoReplyWriter *w, struct iovec iov[2]);
void proto_reply_writer_clear(ProtoReplyWriter *w);
