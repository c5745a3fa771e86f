/* activator/gateway/openai.h: the OpenAI wire format, as the gateway
 * checks and rewrites it: requests (model, messages, prompt, input,
 * stream, max_tokens...), error bodies, usage, the token estimate used
 * when an upstream reports none, and server-sent events. Pure: no I/O. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OAI_MODEL_MAX      256
#define OAI_SSE_LINE_MAX   (1u << 20)     /* one line of an upstream's event stream */
#define OAI_MESSAGES_MAX   100000

typedef enum OaiEndpoint {
        OAI_CHAT,                /* /v1/chat/completions */
        OAI_COMPLETIONS,         /* /v1/completions */
        OAI_EMBEDDINGS,          /* /v1/embeddings */
        _OAI_ENDPOINT_MAX,
} OaiEndpoint;

const char *oai_endpoint_path(OaiEndpoint e);        /* "/chat/completions" */
const char *oai_endpoint_name(OaiEndpoint e);        /* "chat.completions" (audit) */

/* What the gateway needs of a request. */
typedef struct OaiRequest {
        char model[OAI_MODEL_MAX];
        bool stream, include_usage;
        bool has_max_tokens;
        uint64_t max_tokens;
        uint64_t prompt_tokens;          /* estimated */
} OaiRequest;

/* Check a request body against what endpoint e takes. 0, or -EINVAL with
 * a sentence in msg and the offending field in param ("" for the body).
 * max_tokens above max_tokens_limit is refused. */
int oai_request_check(OaiEndpoint e, const json_t *body, uint64_t max_tokens_limit, OaiRequest *ret, char *msg,
                      size_t msg_len, char *param, size_t param_len);

/* {"error":{"message","type","param","code"}} and a newline, malloc'd;
 * param and code may be NULL (JSON null). */
char *oai_error_json(const char *message, const char *type, const char *param, const char *code, size_t *ret_len);

/* The token estimate: one token per four bytes of text, rounded up. */
uint64_t oai_estimate_tokens(size_t text_bytes);
/* Text bytes of a request's prompt (every string in messages, prompt or
 * input), plus 4 tokens' worth per chat message. */
uint64_t oai_prompt_tokens(OaiEndpoint e, const json_t *body);
/* Text bytes a response (or a stream chunk) carries: choices[].message.content,
 * choices[].delta.content, choices[].text. */
size_t oai_completion_bytes(const json_t *resp);
/* A stream chunk read without building it, for the events that need no
 * more than to be passed on: 0 with its oai_completion_bytes() in
 * ret_bytes when p is one JSON object (as json_loadb would take it) that
 * names no "usage" and no "error"; otherwise negative (-EAGAIN: it names
 * them; -EINVAL: not read here, maybe not JSON), and the caller parses
 * it whole. */
int oai_chunk_scan(const char *p, size_t len, size_t *ret_bytes);
/* usage.prompt_tokens and usage.completion_tokens (embeddings: prompt
 * only). true when the object has a usage with them. */
bool oai_usage(const json_t *resp, uint64_t *ret_in, uint64_t *ret_out);
/* {"prompt_tokens","completion_tokens","total_tokens"} */
json_t *oai_usage_json(uint64_t in, uint64_t out);

/* A server-sent event stream taken apart line by line: data lines come
 * out one by one (a payload per line; OpenAI sends one per event). */
typedef struct OaiSse {
        char *line;
        size_t len, cap;
} OaiSse;

enum { OAI_SSE_NONE, OAI_SSE_DATA };

/* Feed bytes (data and len advance). OAI_SSE_DATA with the payload (after
 * "data:" and one optional space; valid until the next call) in
 * ret/ret_len, OAI_SSE_NONE when the bytes are used up, or -E2BIG for a
 * line over OAI_SSE_LINE_MAX, -ENOMEM. Comments, event:, id: and retry:
 * lines are skipped. */
int oai_sse_next(OaiSse *s, const char **data, size_t *len, const char **ret, size_t *ret_len);
void oai_sse_clear(OaiSse *s);
