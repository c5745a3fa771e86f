/* activator/gateway/gwint.h: what gateway.c (the process-wide part:
 * config, reload, identity, metrics) and call.c (one request's path)
 * share. Internal to activator/gateway/. */
#pragma once

#include <pthread.h>
#include <stdint.h>

#include "activator/gateway/config.h"
#include "activator/gateway/gateway.h"
#include "activator/gateway/openai.h"
#include "activator/gateway/policy.h"
#include "activator/gateway/route.h"
#include "activator/gateway/upstream.h"
#include "activator/metrics.h"
#include "activator/req.h"

#define PROG "fnbox-activator"
#define GW_SERIES_MAX     4096            /* metric series (alias, upstream) */
#define GW_ERRBODY_MAX    (64u << 10)     /* an upstream's error answer kept */
#define GW_NS_MAX         64
#define GW_CALLER_MAX     160

typedef struct GwSeries {
        char *alias, *upstream;
        uint64_t ok, failed;             /* requests answered, by the outcome */
        uint64_t tokens_in, tokens_out;
        Histogram latency, ttft;
        struct GwSeries *next;
} GwSeries;

struct Gateway {
        pthread_mutex_t lock;            /* cfg, states, series */
        GwConfig *cfg;
        char *path;
        GwUpState *states;
        GwSeries *series;
        size_t n_series;
        uint64_t reloads_ok, reloads_failed, cooldowns;
        Quota *quota;
        Audit *audit;
        Router *router;
        bool auth;
        char *self_url, *token, *secret;
        /* the file watcher */
        pthread_t thread;
        bool thread_started;
        uv_loop_t loop;
        uv_async_t wake;
        uv_fs_event_t fs;
        uv_timer_t debounce;
        bool stopping;
};

struct GwWorker {
        Gateway *g;
        UpClient *up;
        uint64_t rng;
};

typedef enum GwEndpointKind { GW_EP_MODELS, GW_EP_OPENAI } GwEndpointKind;

struct GwCall {
        GwWorker *gw;
        Gateway *g;
        Req *q;
        GwConfig *cfg;
        OaiEndpoint ep;
        bool models;                     /* GET /v1/models or /v1/models/ID */
        char model_id[GW_NAME_MAX];      /* ID of GET /v1/models/ID (decoded), or "" */
        char ns[GW_NS_MAX];
        char caller[GW_CALLER_MAX];
        char token_id[32];               /* "" for broker calls and --auth none */
        json_t *body;
        OaiRequest rq;
        DataRuleSet fired;
        /* the plan */
        GwAlias *chain[1 + GW_FALLBACKS_MAX];
        size_t n_chain, chain_i;
        unsigned in_alias, attempts;
        bool tried[GW_MEMBERS_MAX];
        uint64_t wait_ms;                /* the shortest cooldown met */
        /* the attempt in flight */
        UpCall *call;
        GwAlias *alias;
        GwMember *member;
        GwUpState *state;                /* its inflight counted */
        uint64_t attempt_ns, ttfb_ns;
        long status;
        char retry_after[64];
        char *buf;
        size_t len, cap;
        bool too_big, garbage;
        OaiSse sse;
        bool committed, stream_done, stream_ended;
        size_t after_done;               /* bytes read after [DONE] (dropped) */
        uint64_t end_ns;                 /* when the caller's stream ended: its latency (the call may linger) */
        /* what the caller gets */
        uint64_t in, out;
        bool has_usage;
        size_t out_bytes;
        uint64_t first_token_ns;
        unsigned final_status;
        char error_type[48];
        /* the last failure, for the answer when every attempt failed */
        unsigned fail_status;
        char fail_type[48], fail_code[48], fail_msg[512], fail_retry[64];
        QuotaReservation res;
        AuditRecord rec;
        bool watching;                   /* the caller's hang-up stops the call (gateway_hangup) */
};

/* gateway.c */
GwConfig *gw_config_get(Gateway *g);
void gw_metrics_record(Gateway *g, const char *alias, const char *upstream, bool ok, uint64_t in, uint64_t out,
                       double latency_s, double ttft_s);
uint64_t gw_random(GwWorker *gw);
uint64_t gw_now_ns(void);
int64_t gw_realtime_ns(void);
/* call.c */
GwCall *gw_call_new(GwWorker *gw, Req *q);
void gw_call_free(GwCall *c);
void gw_respond_error(GwCall *c, unsigned status, const char *type, const char *code, const char *param,
                      const char *retry_after, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
