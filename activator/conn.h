/* activator/conn.h: backend connections, pooled per address and worker:
 * the runtime's invoke socket (fresh mode, fresh.c) and the service
 * instances' HTTP sockets (service mode, service.c). A connection carries
 * one request at a time and goes back to its pool when the answer is
 * complete. Internal to conn.c, fresh.c and service.c. */
#pragma once

#include <stdbool.h>
#include <uv.h>

#include "activator/httpresp.h"
#include "activator/req.h"
#include "runtime/proto.h"

#define CONN_POOL_BUCKETS   256
#define CONN_IDLE_MAX       1024      /* idle connections kept per address */
#define CONN_READ_BUF       (256u << 10)
#define CONN_FRESH_GRACE_MS 5000      /* the node answers a box's timeout by then */

typedef struct Pool {
        char *addr;
        struct Conn *idle;
        unsigned n_idle, n_conns;
        struct Pool *next;
} Pool;

struct Conn {
        Backends *b;
        Pool *pool;
        union {
                uv_handle_t handle;
                uv_stream_t stream;
                uv_pipe_t pipe;
                uv_tcp_t tcp;
        } h;
        uv_connect_t creq;
        uv_write_t wreq;
        struct Conn *next;               /* in the idle list */
        struct Conn *all_prev, *all_next; /* every connection of the worker */
        Req *req;
        bool h_init, fresh, idle, connected, reused, reading, writing, closing, hello_sent, got_bytes;
        /* fresh */
        ProtoReader rd;
        ProtoReply reply;
        ProtoBuf wbuf;
        uint8_t go_head[PROTO_HEADER_SIZE];
        uint8_t (*stdin_heads)[PROTO_HEADER_SIZE];
        uv_buf_t *iov;
        bool result_seen, result_ok;
        uint64_t out_seen, err_seen;
        /* a failed box whose caller wants its stderr (q->want_stderr): the
         * answer waits for the STDERR frames, which come before END */
        ActError deferred;               /* ACT_OK: none */
        char deferred_msg[256];
        OutcomeDetail detail;            /* detail.err: err_tail */
        char *err_tail;                  /* OUTCOME_STDERR_MAX bytes, the last ones that came */
        /* service */
        HttpResp *hp;
        char *head;
        size_t head_len;
        bool headers_seen;
};

struct Backends {
        Worker *w;
        uv_loop_t *loop;
        char *secret;
        Pool *pools[CONN_POOL_BUCKETS];
        struct Conn *conns;
        char rbuf[CONN_READ_BUF];
};

/* conn.c */
void conn_close(Conn *c);
/* The request is over for this connection: back to the pool when reusable. */
void conn_finish(Conn *c, bool reusable);
/* Take the connection away from its request (which keeps going or ends). */
void conn_detach(Conn *c);
void conn_read_start(Conn *c);

/* fresh.c */
int fresh_send(Conn *c);
void fresh_input(Conn *c, const char *data, size_t len);
void fresh_eof(Conn *c, int error);

/* service.c */
int service_send(Conn *c);
void service_input(Conn *c, const char *data, size_t len);
void service_eof(Conn *c, int error);
