/* tests/fuzz/fuzz_httpreq.c: libFuzzer target for the activator's request
 * parser (activator/httpreq.c), fed as activator/http.c feeds it: the
 * input, cut into pieces at points the input's first bytes choose, lands
 * in one buffer; the head's end is looked for after each piece, the head
 * parsed in place, then a chunked body decoded with partial framing lines
 * kept. Besides crashes and reads past the input (ASan: every piece is a
 * buffer of its own size), it checks what the parser promises: a refusal
 * is one of 400, 414, 431 with a message; a head is within its limits and
 * ends with an empty line; a parsed request is consistent (one Host for
 * HTTP/1.1, chunked only without a length, no control bytes in values);
 * the body's pieces lie inside the input and add up to what the chunk
 * sizes said; and the same input fed whole gives the same outcome. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "activator/httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 20000

typedef struct Outcome {
        int result;              /* 1 complete, 0 more needed, -EBADMSG, -EPROTO, -EILSEQ (body) */
        ActError error;
        size_t head_len, body_len, rest;
        uint64_t body_sum;       /* a checksum of the body's bytes */
} Outcome;

/* The bytes read and not handled yet, in a buffer of exactly their size
 * (so that ASan sees a read past them), as http.c's buffer holds them. */
typedef struct Feeder {
        char *buf, *head;
        size_t len;
        HttpReqScan sc;
        HttpReq rq;
        HttpChunked ch;
        bool have_head;
} Feeder;

static char *exact_copy(const char *a, size_t an, const char *b, size_t bn) {
        char *p = malloc(an + bn ? an + bn : 1);
        if (!p)
                abort();
        if (an)
                memcpy(p, a, an);
        if (bn)
                memcpy(p + an, b, bn);
        return p;
}

/* Drop buf[0, n). */
static void drop(Feeder *f, size_t n) {
        char *p = exact_copy(f->buf + n, f->len - n, NULL, 0);
        free(f->buf);
        f->buf = p;
        f->len -= n;
}

static void check_refusal(const HttpReqRefusal *no) {
        unsigned st = act_error_status(no->error);
        if (!((no->error == ACT_BAD_REQUEST && st == 400) || (no->error == ACT_URI_TOO_LONG && st == 414) ||
              (no->error == ACT_HEADERS_TOO_LARGE && st == 431) ||
              (no->error == ACT_VERSION_NOT_SUPPORTED && st == 505)))
                abort();
        if (!no->message[0] || !memchr(no->message, 0, sizeof no->message))
                abort();
}

/* What a parsed head must be. */
static void check_request(const HttpReq *rq, const char *head, size_t head_len, const HttpReqLimits *lim) {
        if (!rq->method || !rq->uri || !*rq->method || !*rq->uri || strlen(rq->uri) > lim->uri_max)
                abort();
        if (rq->method < head || rq->uri >= head + head_len || rq->n_hdr > HTTPREQ_HEADERS_MAX)
                abort();
        if (rq->chunked && (rq->length || rq->http10 || httpreq_header(rq, "Content-Length")))
                abort();
        if (!rq->http10 && !httpreq_header(rq, "Host"))
                abort();
        if (rq->expect_continue && rq->http10)
                abort();
        for (unsigned i = 0; i < rq->n_hdr; i++) {
                const char *n = rq->hdr[i].name, *v = rq->hdr[i].value;
                if (n < head || v >= head + head_len || !*n || strpbrk(n, " \t:\r\n"))
                        abort();
                for (const char *x = v; *x; x++)
                        if (((unsigned char) *x < 0x20 && *x != '\t') || *x == 0x7f)
                                abort();
        }
}

static int feed_head(Feeder *f, Outcome *o, const HttpReqLimits *lim) {
        HttpReqRefusal no = { 0 };
        size_t before = f->len;
        int r = httpreq_head_end(&f->sc, f->buf, &f->len, lim, &o->head_len, &no);
        if (f->len > before || (r == 1 && (o->head_len > f->len || o->head_len > lim->head_max)))
                abort();
        if (r == 1) {
                const char *h = f->buf;
                size_t n = o->head_len;
                if (n < 3 || h[n - 1] != '\n' || !(h[n - 2] == '\n' || (h[n - 2] == '\r' && h[n - 3] == '\n')))
                        abort();
                f->head = exact_copy(h, n, NULL, 0);    /* parsed on its own: nothing past it is read */
                r = httpreq_parse(&f->rq, f->head, n, lim, &no);
                if (r == 0)
                        check_request(&f->rq, f->head, n, lim);
        }
        if (r == -EBADMSG) {
                check_refusal(&no);
                o->error = no.error;
        } else if (r < 0 && r != -EPROTO)
                abort();
        if (r != 0)
                return r;
        if (f->head) {
                f->have_head = true;
                drop(f, o->head_len);
                httpreq_chunked_init(&f->ch, lim->head_max);
        }
        return 0;
}

/* A chunked body in buf: 1 complete, 0 more needed, -EILSEQ malformed.
 * What was handled is dropped, a partial framing line kept. */
static int feed_chunked(Feeder *f, Outcome *o) {
        const char *d = f->buf;
        size_t left = f->len;
        int ev;
        for (;;) {
                const char *at = d, *p = NULL;
                size_t n = 0;
                ev = httpreq_chunked_feed(&f->ch, &d, &left, &p, &n);
                if (d < at || d + left != f->buf + f->len)
                        abort();
                if (ev != HTTPREQ_BODY)
                        break;
                if (n == 0 || p < at || p + n != d)
                        abort();
                o->body_len += n;
                for (size_t i = 0; i < n; i++)
                        o->body_sum = o->body_sum * 31 + (unsigned char) p[i];
        }
        if (ev == HTTPREQ_MORE && (left > HTTPREQ_CHUNK_LINE_MAX || memchr(d, '\n', left)))
                abort();                /* only a partial framing line is left */
        if (ev < 0 && ev != -EBADMSG)
                abort();
        drop(f, (size_t) (d - f->buf));
        return ev < 0 ? -EILSEQ : ev == HTTPREQ_DONE;
}

/* Feed data in pieces ending at cuts[] (ascending, the last at size). */
static Outcome run(const uint8_t *data, size_t size, const size_t *cuts, size_t n_cuts, const HttpReqLimits *lim) {
        Feeder f = { .buf = exact_copy(NULL, 0, NULL, 0) };
        Outcome o = { 0 };
        httpreq_scan_init(&f.sc);
        for (size_t k = 0, off = 0; k < n_cuts && o.result == 0; off = cuts[k++]) {
                char *p = exact_copy(f.buf, f.len, (const char *) data + off, cuts[k] - off);
                free(f.buf);
                f.buf = p;
                f.len += cuts[k] - off;
                int r = f.have_head ? 0 : feed_head(&f, &o, lim);
                if (r == 0 && f.have_head)
                        /* a length's body is http.c's to count */
                        r = f.rq.chunked ? feed_chunked(&f, &o) : 1;
                o.result = r;
                o.rest = f.len + (size - cuts[k]);
        }
        free(f.buf);
        free(f.head);
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 2)
                return 0;
        /* the first bytes pick the limits and the cuts */
        HttpReqLimits lim = { .head_max = 64 + (size_t) data[0] * 16, .uri_max = 8 + (size_t) data[1] * 4 };
        unsigned seed = data[0] * 256u + data[1];
        data += 2;
        size -= 2;
        if (size > INPUT_MAX)
                size = INPUT_MAX;
        size_t cuts[256], n_cuts = 0;
        for (size_t at = 0; n_cuts < 255;) {
                seed = seed * 1103515245u + 12345u;
                at += 1 + (seed >> 16) % (seed & 0x8000 ? 5 : 97);      /* often a few bytes */
                if (at >= size)
                        break;
                cuts[n_cuts++] = at;
        }
        cuts[n_cuts++] = size;
        size_t whole_cut = size;
        Outcome a = run(data, size, cuts, n_cuts, &lim);
        Outcome b = run(data, size, &whole_cut, 1, &lim);
        /* split or whole, the same outcome (but a head over its limit may be
         * refused as 414 or 431 at a cut before its end is in) */
        if (a.result != b.result)
                abort();
        bool too_large = (a.error == ACT_URI_TOO_LONG || a.error == ACT_HEADERS_TOO_LARGE) &&
                         (b.error == ACT_URI_TOO_LONG || b.error == ACT_HEADERS_TOO_LARGE);
        if (a.result == -EBADMSG && a.error != b.error && !too_large)
                abort();
        if (a.result >= 0 || a.result == -EILSEQ) {
                if (a.head_len != b.head_len || a.body_len != b.body_len || a.body_sum != b.body_sum ||
                    a.rest != b.rest)
                        abort();
        }
        return 0;
}
