/* activator/gateway/config.h: the gateway's configuration, read from a
 * YAML file (docs/llm-gateway.md): upstreams (an OpenAI-compatible base
 * URL or an fnbox function), model aliases over groups of upstreams with
 * a strategy, fallbacks, retries and a cooldown, the data rules, quotas
 * and audit options, and limits. A parsed config is immutable and
 * reference-counted: a reload builds a new one and requests in flight
 * keep theirs. Errors name the file, the line and the field. No logging;
 * the only I/O is reading the file and the API keys (environment, files). */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "activator/gateway/policy.h"

#define GW_CONFIG_FILE_MAX    (1u << 20)     /* the YAML file */
#define GW_NAME_MAX           128            /* upstream and alias names, models */
#define GW_URL_MAX            2048
#define GW_KEY_MAX            4096           /* an API key */
#define GW_UPSTREAMS_MAX      256
#define GW_ALIASES_MAX        1024
#define GW_MEMBERS_MAX        32             /* upstreams of one alias */
#define GW_FALLBACKS_MAX      8
#define GW_MODELS_MAX         256            /* models of one upstream */
#define GW_QUOTAS_MAX         4096
#define GW_RETRIES_MAX        7
#define GW_WEIGHT_MAX         1000000
#define GW_TIMEOUT_MAX_MS     (3600ull * 1000)
#define GW_ERROR_MAX          512            /* an error sentence */

typedef struct GwUpState GwUpState;          /* route.h: what the gateway learnt of an upstream */

typedef struct GwUpstream {
        char *name;
        char *base_url;                  /* "http(s)://host[:port][/path]" without a trailing '/', or NULL */
        char *fn_ns, *fn_name;           /* an fnbox function ("fn:NAME", "fn:NS/NAME"), or NULL */
        char *api_key;                   /* resolved at load; NULL: none. Never logged */
        char **models;
        size_t n_models;
        bool local;                      /* may receive sensitive requests */
        bool stream_usage;               /* ask for usage in streams (stream_options.include_usage) */
        uint64_t connect_ms, first_byte_ms, total_ms;
        unsigned weight;
        GwUpState *state;                /* bound by the gateway (gateway.c), NULL here */
} GwUpstream;

typedef struct GwMember {
        GwUpstream *up;
        char *model;                     /* the model name sent to the upstream */
        unsigned weight;
} GwMember;

typedef enum GwStrategy {
        GW_STRATEGY_WEIGHTED,
        GW_STRATEGY_LEAST_BUSY,
        GW_STRATEGY_LOWEST_LATENCY,
        _GW_STRATEGY_MAX,
} GwStrategy;

typedef struct GwAlias {
        char *name;                      /* what callers put in "model" */
        GwMember *members;
        size_t n_members;
        GwStrategy strategy;
        struct GwAlias **fallbacks;      /* other aliases, in order */
        size_t n_fallbacks;
        unsigned retries;                /* attempts in this group after the first */
        unsigned cooldown_failures;      /* consecutive failures of an upstream ... */
        uint64_t cooldown_ms;            /* ... cool it down this long (0 failures: never) */
        bool implicit;                   /* made from an upstream's `models` */
} GwAlias;

typedef struct GwQuotaEntry {
        char key[160];                   /* "ns:NAME" or "token:ID" */
        QuotaLimit limit;
} GwQuotaEntry;

typedef struct GwConfig {
        _Atomic unsigned refs;
        char *path;
        GwUpstream *upstreams;
        size_t n_upstreams;
        GwAlias *aliases;                /* sorted by name */
        size_t n_aliases;
        DataRuleSet rules;               /* the data rules that are on */
        uint64_t default_max_tokens;     /* reserved when a request names no max_tokens */
        uint64_t max_tokens;             /* a request's max_tokens above this: 400 */
        uint64_t max_body;               /* request bodies: 413 beyond */
        uint64_t max_response;           /* an upstream's answer: 502 beyond */
        unsigned max_depth;              /* broker calls' X-Fnbox-Depth: 400 beyond */
        GwQuotaEntry *quotas;
        size_t n_quotas;
        char **body_namespaces;          /* audit bodies for these namespaces */
        size_t n_body_namespaces;
} GwConfig;

/* Parse a config document; filename only names it in errors. On error
 * -EINVAL (or -ENOMEM) with "FILE:LINE: FIELD: what is wrong" in err. */
int gw_config_parse(const char *buf, size_t len, const char *filename, GwConfig **ret, char *err, size_t err_len);
/* Read and parse path. */
int gw_config_load(const char *path, GwConfig **ret, char *err, size_t err_len);

GwConfig *gw_config_ref(GwConfig *c);
void gw_config_unref(GwConfig *c);

/* The alias a request's "model" names (an alias, or a model an upstream
 * lists), or NULL. */
GwAlias *gw_config_alias(const GwConfig *c, const char *model);
bool gw_config_bodies(const GwConfig *c, const char *ns);
const char *gw_strategy_name(GwStrategy s);
