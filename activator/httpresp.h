/* activator/httpresp.h: an incremental HTTP/1.1 response parser for the
 * service-mode backends: status line and headers (bounded), then the body
 * by Content-Length, chunked, or until the connection closes. Body bytes
 * come back as pointers into the caller's input: nothing is copied but the
 * head. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPRESP_HEAD_MAX     (64u << 10)   /* status line and headers */
#define HTTPRESP_HEADERS_MAX  100
#define HTTPRESP_LINE_MAX     1024          /* a chunk-size line or a trailer */

typedef struct HttpHeader {
        const char *name, *value;
} HttpHeader;

typedef enum HttpRespEvent {
        HTTPRESP_MORE,           /* the input is used up: feed more */
        HTTPRESP_HEADERS,        /* status and headers are ready */
        HTTPRESP_BODY,           /* a piece of body */
        HTTPRESP_DONE,           /* the response is complete */
} HttpRespEvent;

typedef struct HttpResp {
        int state;
        bool head_request;       /* the request was HEAD: no body follows */
        unsigned status;
        bool keep_alive;         /* the connection may carry another request */
        bool chunked;
        bool has_length;
        uint64_t length;         /* with has_length */
        HttpHeader headers[HTTPRESP_HEADERS_MAX];
        size_t n_headers;
        /* private */
        uint64_t left;
        char head[HTTPRESP_HEAD_MAX + 1];
        size_t head_len, scan;
        char line[HTTPRESP_LINE_MAX + 1];
        size_t line_len;
} HttpResp;

/* Ready for a response to a request with that method. */
void httpresp_init(HttpResp *p, bool head_request);
/* Take input from *data (advancing it and *len) up to the next event.
 * Negative errno on a malformed response (-EBADMSG) or a head over its
 * limit (-E2BIG). After DONE the rest of the input is not ours. */
int httpresp_feed(HttpResp *p, const char **data, size_t *len, const char **ret_body, size_t *ret_body_len);
/* The connection closed: DONE (1) for a body that runs to the close,
 * else -ECONNRESET. */
int httpresp_eof(HttpResp *p);
/* A header's value (case-insensitive name), or NULL. */
const char *httpresp_header(const HttpResp *p, const char *name);
