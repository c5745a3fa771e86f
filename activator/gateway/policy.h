/* activator/gateway/policy.h: the gateway's policy pieces, the contract
 * between the request path (gateway.c, config.c) and the pure parts that
 * decide and account (rules.c, quota.c, audit.c). Written first so that
 * both sides could be built at once; keep it true.
 *
 *   rules.c  detectors of personal data in a request's text
 *   quota.c  requests per minute and tokens per day, per namespace and per
 *            token, reserved at admission and settled from real usage
 *   audit.c  one record per gateway request, shipped to the controller in
 *            batches (POST /v1/internal/llm-audit), which keeps them in the
 *            store; `fnbox llm log` reads them back (GET /v1/llm/log)
 *
 * No I/O in rules.c and quota.c; quota.c and audit.c are safe to call from
 * every worker thread at once. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- data rules -------------------------------------------------------- */

typedef enum DataRule {
        DATA_RULE_EMAIL,        /* "email": local@domain.tld */
        DATA_RULE_PHONE,        /* "phone": international (+ and 8-15 digits), national with a trunk 0
                                 * (9-12 digits), or North American NXX-NXX-XXXX, grouped */
        DATA_RULE_CARD,         /* "card": 13-19 digits (spaces/dashes allowed) in a card network's
                                 * issuer range, passing Luhn */
        DATA_RULE_TW_ID,        /* "tw_id": Taiwan national identification number, checksum valid */
        DATA_RULE_IBAN,         /* "iban": IBAN with the country's length and a valid mod-97 check */
        _DATA_RULE_MAX,
} DataRule;

typedef uint32_t DataRuleSet;   /* bit (1u << DataRule) */
#define DATA_RULES_ALL ((DataRuleSet) ((1u << _DATA_RULE_MAX) - 1))

const char *data_rule_name(DataRule r);
int data_rule_from_name(const char *name);        /* DataRule, or -EINVAL */

/* Which of the enabled rules fire on text (not NUL-terminated; len bytes,
 * any bytes). Linear in len. */
DataRuleSet data_rules_scan(const char *text, size_t len, DataRuleSet enabled);
/* Every string value in a JSON request (messages[].content, prompt, input,
 * nested arrays of content parts...), keys excluded. Deeper than 4096
 * levels, or out of memory: every enabled rule (nothing hides). */
DataRuleSet data_rules_scan_json(const json_t *request, DataRuleSet enabled);
/* "email,card" into buf (empty for none). */
void data_rules_format(DataRuleSet set, char *buf, size_t size);

/* ---- quotas ------------------------------------------------------------ */

typedef struct QuotaLimit {
        uint64_t requests_per_minute;   /* 0: unlimited */
        uint64_t tokens_per_day;        /* 0: unlimited */
} QuotaLimit;

typedef struct Quota Quota;

/* A quota book; limits are set (and replaced on reload) per key. Keys are
 * "ns:NAMESPACE" and "token:TOKEN_ID" (else -EINVAL). A key with no limit
 * set is unlimited. The minute is a sliding window of 60 one-second
 * buckets; the day is the UTC day. */
Quota *quota_new(void);
Quota *quota_free(Quota *q);
int quota_set_limit(Quota *q, const char *key, const QuotaLimit *limit);
void quota_clear_limits(Quota *q);              /* before a reload sets them again; usage is kept */

typedef struct QuotaReservation {
        char ns_key[128];
        char token_key[64];             /* empty: no token (broker calls) */
        uint64_t tokens;                /* reserved */
        int64_t day;                    /* the UTC day it was counted against */
        bool active;
} QuotaReservation;

/* Admission: counts one request against both keys' per-minute windows and
 * reserves `tokens` (prompt estimate + max_tokens) against both keys' day,
 * all or nothing. 0, or -EDQUOT with a sentence for the caller in msg
 * (which limit, of which key, when it resets) and *retry_after_s. now_ns
 * is CLOCK_REALTIME (days are UTC days). */
int quota_admit(Quota *q, const char *ns, const char *token_id, uint64_t tokens, int64_t now_ns,
                QuotaReservation *ret, char *msg, size_t msg_len, unsigned *retry_after_s);
/* Settles a reservation with the tokens really used (usage.total_tokens);
 * the difference is given back (or charged). Idempotent; a failed request
 * settles with what it used, possibly 0. The tokens count against the day
 * of the admission (res->day); a reservation may be settled from any
 * thread, and every admitted one must be settled once. */
void quota_settle(Quota *q, QuotaReservation *res, uint64_t used_tokens);

/* Usage for /metrics and describe: JSON object {key: {rpm_used,
 * tokens_today, reserved}}, plus rpm_limit and tokens_per_day for keys with
 * a limit. */
json_t *quota_usage_json(Quota *q);

typedef struct QuotaStats {
        uint64_t reservations;          /* admitted and not yet settled: requests in flight */
        uint64_t tokens_reserved;       /* what they hold (each reservation once) */
} QuotaStats;
/* For /metrics: with nothing in flight both are 0, else a reservation leaked. */
void quota_stats(Quota *q, QuotaStats *ret);

/* ---- audit ------------------------------------------------------------- */

#define AUDIT_CHAIN_MAX         8
#define AUDIT_QUEUE_MAX         10000           /* records waiting; past it the oldest is dropped */
#define AUDIT_BATCH_MAX         1000            /* records per POST; this many waiting sends at once */
#define AUDIT_BATCH_BYTES_MAX   (4u << 20)      /* bytes of one POST body */
#define AUDIT_BODY_MAX          (64u << 10)     /* bytes kept of a request or response body */
#define AUDIT_FLUSH_MS          1000            /* a batch at least this often */
#define AUDIT_REQUEST_ID_MAX    128             /* as X-Request-Id (activator/reqid.h) */

typedef struct AuditRecord {
        char request_id[AUDIT_REQUEST_ID_MAX + 1];
        int64_t at_ms;                  /* CLOCK_REALTIME, request start */
        char ns[64];
        char caller[160];               /* "token:ID", or "fn:NS/NAME@REV" for broker calls */
        char endpoint[32];              /* "chat.completions", "completions", "embeddings" */
        char alias[128];                /* the model the caller asked for */
        char upstream[128];             /* the one that answered; empty: none did */
        char chain[AUDIT_CHAIN_MAX][128]; /* upstreams tried, in order */
        unsigned chain_n;
        uint64_t tokens_in, tokens_out;
        bool tokens_counted;            /* the gateway counted: upstream gave no usage */
        double latency_ms, ttft_ms;     /* ttft_ms < 0: not streamed / no token */
        unsigned status;                /* the HTTP status the caller got */
        char error_type[48];            /* OpenAI error type, empty on success */
        DataRuleSet rules;              /* data rules that fired */
        bool stream;
        char *request_body;             /* only when the namespace opted in; malloc'd or NULL;
                                         * kept up to AUDIT_BODY_MAX bytes (then "...Truncated") */
        char *response_body;            /* likewise */
        bool bodies;                    /* the namespace keeps bodies: a stream's answer is assembled */
        bool response_body_cut;         /* the assembled answer lost text (then "responseBodyTruncated") */
        struct AuditStream *stream_body; /* a streamed answer being assembled (audit_stream_add) */
} AuditRecord;

/* ---- a streamed answer, assembled (audit_stream.c) ------------------------ */

typedef struct AuditStream AuditStream;

/* Fold one chunk of a streamed answer (a parsed data event, as the
 * caller gets it) into rec's assembled answer; nothing unless
 * rec->bodies. Text beyond AUDIT_BODY_MAX bytes is dropped (and the
 * record says so). */
void audit_stream_add(AuditRecord *rec, const json_t *chunk);
/* The assembled answer becomes rec->response_body (unless one is set):
 * {"id", "object": "chat.completion" or "text_completion", "model",
 * "choices": [{"index", "message": {"role", "content", "tool_calls"...}
 * or "text", "finish_reason"}], "usage"}. audit_submit calls it. 0, or
 * -ENOMEM (no body then). */
int audit_stream_finish(AuditRecord *rec);
/* Free what a record owns (its bodies, an assembly in progress). */
void audit_record_clear(AuditRecord *rec);

typedef struct Audit Audit;

/* The shipper: records go into a bounded in-memory queue and a thread
 * posts them every second (and at once when AUDIT_BATCH_MAX wait) in
 * batches {"records": [...]} to controller_url + /v1/internal/llm-audit;
 * with the controller away the batch is retried with back-off (1 s
 * doubling to 10 s) and the rest wait (oldest dropped past the bound,
 * counted in dropped). controller_url: "http://HOST:PORT"; auth_header:
 * the whole header line "Authorization: Bearer TOKEN" (NULL: none).
 * NULL when out of memory or the thread cannot start. */
Audit *audit_new(const char *controller_url, const char *auth_header);
Audit *audit_free(Audit *a);                    /* flushes what it can within 2 s */
/* Copies the record and takes ownership of its bodies and assembly
 * (rec's pointers are set to NULL). Never blocks. */
void audit_submit(Audit *a, AuditRecord *rec);
/* The record as the controller takes it: {"requestId", "timeMs",
 * "namespace", "caller", "endpoint", "alias", "upstream" (null: none),
 * "chain", "tokensIn", "tokensOut", "tokensCounted", "latencyMs", "ttftMs"
 * (null: none), "status", "errorType" (null: none), "rules", "stream"} and
 * "requestBody" / "responseBody" (+ "...Truncated": true) only when set.
 * Strings are made valid UTF-8 (a bad byte becomes '?') and cut to the
 * field's size. */
json_t *audit_record_json(const AuditRecord *rec);
uint64_t audit_dropped(Audit *a);

typedef struct AuditStats {
        uint64_t queued;                /* waiting now, the batch in flight included */
        uint64_t sent;                  /* taken by the controller */
        uint64_t dropped;               /* the oldest, past AUDIT_QUEUE_MAX, or unsent at exit */
        uint64_t rejected;              /* in batches the controller refused (4xx) */
        uint64_t failures;              /* POSTs that failed and were retried */
} AuditStats;
void audit_stats(Audit *a, AuditStats *ret);
