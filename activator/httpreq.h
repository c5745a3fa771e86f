/* activator/httpreq.h: the activator's HTTP/1.1 requests as bytes, with no
 * I/O: where a request's head ends in a buffer (the empty lines allowed
 * before it, the limits on its size and its URL), its line and headers
 * checked and parsed in place (the rules against smuggling: one length,
 * chunked as the only coding, one Host, no folding, no control bytes),
 * and a chunked body's framing. activator/http.c serves connections with
 * it; what it refuses comes back as the error to answer (status, JSON
 * error type and message), which http.c sends and then closes. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "activator/outcome.h"

#define HTTPREQ_HEADERS_MAX   128     /* header fields in a request (431 beyond) */
#define HTTPREQ_CHUNK_LINE_MAX 1024   /* a chunk-size line or a trailer field, CRLF included */
#define HTTPREQ_BLANK_MAX     64u     /* CR and LF bytes before a request line */
#define HTTPREQ_LENGTH_DIGITS 18      /* a Content-Length's digits at most */

typedef struct HttpReqLimits {
        size_t head_max;                /* request line and headers (431 beyond); trailers too */
        size_t uri_max;                 /* the request target (414 beyond) */
} HttpReqLimits;

/* What a request is refused with: ACT_BAD_REQUEST (400), ACT_URI_TOO_LONG
 * (414), ACT_HEADERS_TOO_LARGE (431) or ACT_VERSION_NOT_SUPPORTED (505),
 * and why. */
typedef struct HttpReqRefusal {
        ActError error;
        char message[96];
} HttpReqRefusal;

typedef struct HttpReqHeader {
        const char *name, *value;
} HttpReqHeader;

/* A parsed head: the strings point into the caller's buffer. */
typedef struct HttpReq {
        const char *method, *uri;
        bool http10;                    /* HTTP/1.0 (else 1.1) */
        bool keep_alive;                /* the connection may carry another request */
        bool head_method;               /* HEAD: the answer has no body */
        bool expect_continue;           /* Expect: 100-continue (HTTP/1.1) */
        bool chunked;                   /* Transfer-Encoding: chunked */
        uint64_t length;                /* Content-Length (0 without one, and when chunked) */
        HttpReqHeader hdr[HTTPREQ_HEADERS_MAX];
        unsigned n_hdr;
} HttpReq;

/* Where the search for a head's end stands between reads. */
typedef struct HttpReqScan {
        size_t scan;                    /* buf[0, scan) holds no empty line */
        size_t blank_lines;             /* CR and LF bytes dropped before the request line */
} HttpReqScan;

/* Ready for a connection's next request. */
void httpreq_scan_init(HttpReqScan *sc);

/* Look for the end of the head at the start of buf[0, *len), the bytes
 * read so far (more come after them in later calls; bytes before them
 * must not change, or sc->scan must be set to 0). Empty lines before the
 * request line are dropped from buf (RFC 9112 2.2; *len shrinks). Returns
 * 1 with the head's length (up to and with its empty line) in
 * *ret_head_len, 0 when more is needed, -EBADMSG when it is refused
 * (*ret_refusal; *ret_head_len is the head's length when its end was
 * found, else 0), or -EPROTO after more than HTTPREQ_BLANK_MAX CR and LF
 * bytes before a request line (the connection ends without an answer). */
int httpreq_head_end(HttpReqScan *sc, char *buf, size_t *len, const HttpReqLimits *lim, size_t *ret_head_len,
                     HttpReqRefusal *ret_refusal);

/* Parse head[0, head_len), as httpreq_head_end found it, in place (NULs
 * end the method, the target and each header's name and value). 0, or
 * -EBADMSG with *ret_refusal. On a refusal rq holds what was parsed
 * before it. */
int httpreq_parse(HttpReq *rq, char *head, size_t head_len, const HttpReqLimits *lim, HttpReqRefusal *ret_refusal);

/* The first header of that name (case-insensitive), or NULL. */
const char *httpreq_header(const HttpReq *rq, const char *name);

/* ---- a chunked body ---- */

typedef enum HttpReqEvent {
        HTTPREQ_MORE,                   /* the input is used up, or a framing line is not complete */
        HTTPREQ_BODY,                   /* a piece of body */
        HTTPREQ_DONE,                   /* the last chunk and the trailers are in */
} HttpReqEvent;

typedef struct HttpChunked {
        int state;
        uint64_t left;                  /* of the current chunk's data */
        size_t trailer_bytes, trailer_max;
} HttpChunked;

/* Ready for a chunked body whose trailers may take trailer_max bytes. */
void httpreq_chunked_init(HttpChunked *ch, size_t trailer_max);
/* Take input from *data (advancing it and *len) up to the next event. A
 * piece of body comes back as a pointer into the input. MORE with *len
 * not 0: those bytes are a framing line not complete yet, to be fed again
 * with what follows them. -EBADMSG: malformed framing (a line without
 * CRLF or over HTTPREQ_CHUNK_LINE_MAX, a size that is not hex or of 2^60
 * or more, anything but ;extensions after it, data longer than its size,
 * trailers over trailer_max). After DONE the rest of the input is not
 * the body's. */
int httpreq_chunked_feed(HttpChunked *ch, const char **data, size_t *len, const char **ret_body,
                         size_t *ret_body_len);
