/* activator/httpreq.c: the activator's HTTP/1.1 requests parsed from bytes
 * (see httpreq.h): a head's end and limits, its line and headers, and the
 * framing of a chunked body. No I/O; activator/http.c drives it. */
#include "activator/httpreq.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/httpver.h"

enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE };

/* Fill *r and return -EBADMSG. */
__attribute__((format(printf, 3, 4))) static int refuse(HttpReqRefusal *r, ActError e, const char *fmt, ...) {
        va_list ap;
        r->error = e;
        va_start(ap, fmt);
        vsnprintf(r->message, sizeof r->message, fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

/* RFC 9110 token characters (method, header names). */
static bool tchar(unsigned char ch) {
        static const char extra[] = "!#$%&'*+-.^_`|~";
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               (ch && strchr(extra, ch));
}

/* Whether the comma-separated list v has token (case-insensitive). */
static bool list_has(const char *v, const char *token) {
        size_t n = strlen(token);
        for (const char *p = v; p && *p;) {
                p += strspn(p, " \t,");
                size_t k = strcspn(p, ",");
                size_t t = k;
                while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
                        t--;
                if (t == n && strncasecmp(p, token, n) == 0)
                        return true;
                p += k;
        }
        return false;
}

/* ---- the head's end --------------------------------------------------------------------------- */

void httpreq_scan_init(HttpReqScan *sc) {
        sc->scan = 0;
        sc->blank_lines = 0;
}

/* The offset after the empty line ending buf[0, len), searching from
 * *from (moved on to where the search goes on next time), or 0. */
static size_t empty_line_end(const char *buf, size_t len, size_t *from) {
        size_t i = *from;
        while (i < len) {
                const char *nl = memchr(buf + i, '\n', len - i);
                if (!nl)
                        break;
                size_t at = (size_t) (nl - buf);
                bool empty = at == i || (at == i + 1 && buf[i] == '\r');
                i = at + 1;
                if (empty)
                        return i;
        }
        *from = i;
        return 0;
}

int httpreq_head_end(HttpReqScan *sc, char *buf, size_t *len, const HttpReqLimits *lim, size_t *ret_head_len,
                     HttpReqRefusal *ret_refusal) {
        size_t lead = 0;
        while (lead < *len && (buf[lead] == '\r' || buf[lead] == '\n'))
                lead++;
        sc->blank_lines += lead;
        if (sc->blank_lines > HTTPREQ_BLANK_MAX)
                return -EPROTO;
        if (lead) {
                memmove(buf, buf + lead, *len - lead);
                *len -= lead;
                sc->scan = 0;
        }
        *ret_head_len = 0;
        size_t end = empty_line_end(buf, *len, &sc->scan);
        if (end == 0) {
                if (*len <= lim->head_max)
                        return 0;
                if (!memchr(buf, '\n', *len))
                        return refuse(ret_refusal, ACT_URI_TOO_LONG, "the URL is over %zu bytes", lim->uri_max);
                return refuse(ret_refusal, ACT_HEADERS_TOO_LARGE, "the request line and headers exceed %zu bytes",
                              lim->head_max);
        }
        *ret_head_len = end;
        if (end > lim->head_max)
                return refuse(ret_refusal, ACT_HEADERS_TOO_LARGE, "the request line and headers exceed %zu bytes",
                              lim->head_max);
        return 1;
}

/* ---- the head ------------------------------------------------------------------------------------- */

/* The end of the line at p (its CR or LF), with *ret_eol at its LF. */
static char *line_end(char *p, char *end, char **ret_eol) {
        char *eol = memchr(p, '\n', (size_t) (end - p));
        *ret_eol = eol;
        return eol && eol > p && eol[-1] == '\r' ? eol - 1 : eol;
}

/* METHOD SP target SP HTTP/1.x, NUL-terminated at line_end. */
static int request_line(HttpReq *rq, char *p, const HttpReqLimits *lim, HttpReqRefusal *ret_refusal) {
        char *sp1 = strchr(p, ' ');
        char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1 || strchr(sp2 + 1, ' '))
                return refuse(ret_refusal, ACT_BAD_REQUEST, "malformed request line");
        *sp1 = *sp2 = 0;
        for (char *m = p; *m; m++)
                if (!tchar((unsigned char) *m))
                        return refuse(ret_refusal, ACT_BAD_REQUEST, "malformed request method");
        if ((size_t) (sp2 - sp1 - 1) > lim->uri_max)
                return refuse(ret_refusal, ACT_URI_TOO_LONG, "the URL is over %zu bytes", lim->uri_max);
        for (char *u = sp1 + 1; *u; u++)
                if ((unsigned char) *u <= 0x20 || *u == 0x7f)
                        return refuse(ret_refusal, ACT_BAD_REQUEST, "malformed request target");
        const char *ver = sp2 + 1;
        int v = http_version_parse(ver, strlen(ver));
        if (v == -EPROTONOSUPPORT)
                return refuse(ret_refusal, ACT_VERSION_NOT_SUPPORTED, "HTTP version not supported: 1.0 and 1.1 are");
        if (v < 0)
                return refuse(ret_refusal, ACT_BAD_REQUEST, "malformed request line");
        rq->http10 = v == 10;
        rq->method = p;
        rq->uri = sp1 + 1;
        return 0;
}

/* One "Name: value" line in [p, le): checked, NUL-terminated, added. */
static int header_line(HttpReq *rq, char *p, char *le, HttpReqRefusal *ret_refusal) {
        if (*p == ' ' || *p == '\t')
                return refuse(ret_refusal, ACT_BAD_REQUEST, "folded header lines are not accepted");
        char *colon = p;
        while (colon < le && tchar((unsigned char) *colon))
                colon++;
        if (colon == p || colon == le || *colon != ':')
                return refuse(ret_refusal, ACT_BAD_REQUEST, "malformed header line");
        if (rq->n_hdr == HTTPREQ_HEADERS_MAX)
                return refuse(ret_refusal, ACT_HEADERS_TOO_LARGE, "more than %u header fields", HTTPREQ_HEADERS_MAX);
        *colon = 0;
        char *v = colon + 1, *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
        for (char *x = v; x < ve; x++)
                if (((unsigned char) *x < 0x20 && *x != '\t') || *x == 0x7f)
                        return refuse(ret_refusal, ACT_BAD_REQUEST, "a header value has control characters");
        *ve = 0;
        rq->hdr[rq->n_hdr++] = (HttpReqHeader) { p, v };
        return 0;
}

/* What the headers that frame the request said. */
typedef struct Framing {
        const char *cl, *te, *expect;
        bool host, conn_close, conn_keep;
} Framing;

/* The rules on the header just added: one length, one coding, one Host. */
static int header_rules(const HttpReqHeader *h, Framing *f, HttpReqRefusal *ret_refusal) {
        if (strcasecmp(h->name, "Content-Length") == 0) {
                if (f->cl && strcmp(f->cl, h->value) != 0)
                        return refuse(ret_refusal, ACT_BAD_REQUEST, "conflicting Content-Length headers");
                f->cl = h->value;
        } else if (strcasecmp(h->name, "Transfer-Encoding") == 0) {
                if (f->te)
                        return refuse(ret_refusal, ACT_BAD_REQUEST, "more than one Transfer-Encoding header");
                f->te = h->value;
        } else if (strcasecmp(h->name, "Connection") == 0) {
                f->conn_close = f->conn_close || list_has(h->value, "close");
                f->conn_keep = f->conn_keep || list_has(h->value, "keep-alive");
        } else if (strcasecmp(h->name, "Expect") == 0)
                f->expect = h->value;
        else if (strcasecmp(h->name, "Host") == 0) {
                if (f->host)
                        return refuse(ret_refusal, ACT_BAD_REQUEST, "more than one Host header");
                f->host = true;
        }
        return 0;
}

/* How the body is framed, and whether the connection stays. */
static int framing(HttpReq *rq, const Framing *f, HttpReqRefusal *ret_refusal) {
        if (!rq->http10 && !f->host)
                return refuse(ret_refusal, ACT_BAD_REQUEST, "an HTTP/1.1 request needs a Host header");
        rq->keep_alive = rq->http10 ? f->conn_keep && !f->conn_close : !f->conn_close;
        rq->head_method = strcmp(rq->method, "HEAD") == 0;
        rq->expect_continue = f->expect && strcasecmp(f->expect, "100-continue") == 0 && !rq->http10;
        if (f->te) {
                if (f->cl)
                        return refuse(ret_refusal, ACT_BAD_REQUEST, "both Content-Length and Transfer-Encoding");
                if (strcasecmp(f->te, "chunked") != 0 || rq->http10)
                        return refuse(ret_refusal, ACT_BAD_REQUEST,
                                      "Transfer-Encoding: only chunked is accepted (HTTP/1.1)");
                rq->chunked = true;
        } else if (f->cl) {
                size_t n = strlen(f->cl);
                if (n == 0 || n > HTTPREQ_LENGTH_DIGITS || f->cl[strspn(f->cl, "0123456789")])
                        return refuse(ret_refusal, ACT_BAD_REQUEST, "malformed Content-Length");
                for (const char *d = f->cl; *d; d++)
                        rq->length = rq->length * 10 + (uint64_t) (*d - '0');
        }
        return 0;
}

int httpreq_parse(HttpReq *rq, char *head, size_t head_len, const HttpReqLimits *lim, HttpReqRefusal *ret_refusal) {
        char *p = head, *end = head + head_len, *eol;
        rq->method = rq->uri = NULL;
        rq->head_method = rq->http10 = rq->expect_continue = rq->keep_alive = rq->chunked = false;
        rq->length = 0;
        rq->n_hdr = 0;
        if (memchr(p, 0, head_len))
                return refuse(ret_refusal, ACT_BAD_REQUEST, "a NUL byte in the request line or headers");
        while (p < end && (*p == '\r' || *p == '\n'))   /* empty lines before a request */
                p++;
        char *le = line_end(p, end, &eol);
        if (!le)                                        /* not a head httpreq_head_end found */
                return refuse(ret_refusal, ACT_BAD_REQUEST, "malformed request line");
        *le = 0;
        int r = request_line(rq, p, lim, ret_refusal);
        if (r < 0)
                return r;
        Framing f = { 0 };
        for (p = eol + 1; p < end; p = eol + 1) {
                le = line_end(p, end, &eol);
                if (!le || le == p)
                        break;                          /* the empty line */
                if ((r = header_line(rq, p, le, ret_refusal)) < 0 ||
                    (r = header_rules(&rq->hdr[rq->n_hdr - 1], &f, ret_refusal)) < 0)
                        return r;
        }
        return framing(rq, &f, ret_refusal);
}

const char *httpreq_header(const HttpReq *rq, const char *name) {
        for (unsigned i = 0; i < rq->n_hdr; i++)
                if (strcasecmp(rq->hdr[i].name, name) == 0)
                        return rq->hdr[i].value;
        return NULL;
}

/* ---- a chunked body --------------------------------------------------------------------------------- */

void httpreq_chunked_init(HttpChunked *ch, size_t trailer_max) {
        ch->state = CH_SIZE;
        ch->left = 0;
        ch->trailer_bytes = 0;
        ch->trailer_max = trailer_max;
}

/* A chunk-size line's text (n bytes, CRLF gone): hex digits, optional
 * blanks, then nothing or ;extensions. */
static int chunk_size(HttpChunked *ch, const char *line, size_t n) {
        uint64_t v = 0;
        size_t i = 0;
        for (; i < n; i++) {
                char c = line[i];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0)
                        break;
                if (v >> 56)
                        return -EBADMSG;
                v = v * 16 + (uint64_t) d;
        }
        size_t e = i;
        while (e < n && (line[e] == ' ' || line[e] == '\t'))
                e++;
        if (i == 0 || (e < n && line[e] != ';'))
                return -EBADMSG;
        ch->left = v;
        ch->state = v ? CH_DATA : CH_TRAILER;
        return 0;
}

/* A whole framing line (its CRLF included) after a chunk's data, as a
 * chunk's size, or as a trailer field. */
static int framing_line(HttpChunked *ch, const char *line, size_t ll) {
        size_t n = ll - 2;
        switch (ch->state) {
        case CH_DATA_END:
                if (n != 0)
                        return -EBADMSG;
                ch->state = CH_SIZE;
                return 0;
        case CH_SIZE:
                return chunk_size(ch, line, n);
        default:                                        /* CH_TRAILER: up to the empty line */
                ch->trailer_bytes += ll;
                if (ch->trailer_bytes > ch->trailer_max)
                        return -EBADMSG;
                if (n == 0)
                        ch->state = CH_DONE;
                return 0;
        }
}

int httpreq_chunked_feed(HttpChunked *ch, const char **data, size_t *len, const char **ret_body,
                         size_t *ret_body_len) {
        while (ch->state != CH_DONE) {
                if (*len == 0)
                        return HTTPREQ_MORE;
                if (ch->state == CH_DATA) {
                        size_t n = *len < ch->left ? *len : (size_t) ch->left;
                        *ret_body = *data;
                        *ret_body_len = n;
                        *data += n;
                        *len -= n;
                        ch->left -= n;
                        if (ch->left == 0)
                                ch->state = CH_DATA_END;
                        return HTTPREQ_BODY;
                }
                const char *nl = memchr(*data, '\n', *len);
                if (!nl)        /* a partial line: the caller keeps it for the next read */
                        return *len > HTTPREQ_CHUNK_LINE_MAX ? -EBADMSG : HTTPREQ_MORE;
                const char *line = *data;
                size_t ll = (size_t) (nl - line) + 1;
                if (ll > HTTPREQ_CHUNK_LINE_MAX || ll < 2 || line[ll - 2] != '\r')
                        return -EBADMSG;                /* framing lines end in CRLF */
                *data += ll;
                *len -= ll;
                int r = framing_line(ch, line, ll);
                if (r < 0)
                        return r;
        }
        return HTTPREQ_DONE;
}
