/* activator/httpresp.c: the service backends' responses, parsed as they
 * arrive (see httpresp.h). */
#include "activator/httpresp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
        ST_HEAD,
        ST_LENGTH,               /* Content-Length body */
        ST_CLOSE,                /* body until the connection closes */
        ST_CHUNK_SIZE,
        ST_CHUNK_DATA,
        ST_CHUNK_CRLF,
        ST_TRAILERS,
        ST_DONE,
};

void httpresp_init(HttpResp *p, bool head_request) {
        p->state = ST_HEAD;
        p->head_request = head_request;
        p->status = 0;
        p->keep_alive = p->chunked = p->has_length = false;
        p->length = p->left = 0;
        p->n_headers = p->head_len = p->scan = p->line_len = 0;
}

const char *httpresp_header(const HttpResp *p, const char *name) {
        for (size_t i = 0; i < p->n_headers; i++)
                if (strcasecmp(p->headers[i].name, name) == 0)
                        return p->headers[i].value;
        return NULL;
}

static bool token_in(const char *list, const char *token) {
        size_t tl = strlen(token);
        for (const char *s = list; s && *s;) {
                s += strspn(s, " \t,");
                size_t n = strcspn(s, " \t,");
                if (n == tl && strncasecmp(s, token, n) == 0)
                        return true;
                s += n;
        }
        return false;
}

/* Split the head (NUL-terminated at the blank line) into status and headers. */
static int head_parse(HttpResp *p) {
        char *save = NULL, *line = strtok_r(p->head, "\r\n", &save);
        int minor;
        if (!line || strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
                return -EBADMSG;
        minor = line[7] - '0';
        char *end;
        unsigned long st = strtoul(line + 9, &end, 10);
        if (end != line + 12 || st < 100 || st > 999 || (*end && *end != ' '))
                return -EBADMSG;
        p->status = (unsigned) st;
        p->n_headers = 0;
        while ((line = strtok_r(NULL, "\r\n", &save))) {
                char *colon = strchr(line, ':');
                if (!colon || colon == line || strcspn(line, " \t") < (size_t) (colon - line))
                        return -EBADMSG;
                if (p->n_headers == HTTPRESP_HEADERS_MAX)
                        return -E2BIG;
                *colon = 0;
                char *v = colon + 1 + strspn(colon + 1, " \t");
                size_t vl = strlen(v);
                while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                        v[--vl] = 0;
                p->headers[p->n_headers++] = (HttpHeader) { line, v };
        }
        const char *conn = httpresp_header(p, "Connection");
        p->keep_alive = minor == 1 ? !token_in(conn, "close") : token_in(conn, "keep-alive");
        const char *te = httpresp_header(p, "Transfer-Encoding"), *cl = httpresp_header(p, "Content-Length");
        if (te) {
                if (!token_in(te, "chunked"))
                        return -EBADMSG;
                p->chunked = true;
        } else if (cl) {
                if (!*cl || strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 18)
                        return -EBADMSG;
                p->has_length = true;
                p->length = strtoull(cl, NULL, 10);
        }
        return 0;
}

/* After the head: where the body goes. */
static int body_start(HttpResp *p) {
        if (p->head_request || p->status == 204 || p->status == 304 || p->status < 200) {
                p->state = ST_DONE;
                return 0;
        }
        if (p->chunked)
                p->state = ST_CHUNK_SIZE;
        else if (p->has_length) {
                p->left = p->length;
                p->state = p->left ? ST_LENGTH : ST_DONE;
        } else {
                p->keep_alive = false;
                p->state = ST_CLOSE;
        }
        return 0;
}

/* Gather head bytes up to the blank line. 1 when complete. */
static int head_take(HttpResp *p, const char **data, size_t *len) {
        size_t room = HTTPRESP_HEAD_MAX - p->head_len, n = *len < room ? *len : room;
        size_t from = p->head_len >= 2 ? p->head_len - 2 : 0, total = p->head_len + n;
        memcpy(p->head + p->head_len, *data, n);
        for (char *nl = memchr(p->head + from, '\n', total - from); nl;
             nl = memchr(nl + 1, '\n', (size_t) (p->head + total - nl - 1))) {
                size_t i = (size_t) (nl - p->head), end = 0;
                if (i + 1 < total && p->head[i + 1] == '\n')
                        end = i + 2;
                else if (i + 2 < total && p->head[i + 1] == '\r' && p->head[i + 2] == '\n')
                        end = i + 3;
                if (end) {
                        *data += end - p->head_len;
                        *len -= end - p->head_len;
                        p->head_len = end;
                        p->head[end] = 0;
                        return 1;
                }
        }
        *data += n;
        *len -= n;
        p->head_len = total;
        return total == HTTPRESP_HEAD_MAX ? -E2BIG : 0;
}

/* A line (chunk size, CRLF after data, trailer) into p->line. 1 when complete. */
static int line_take(HttpResp *p, const char **data, size_t *len) {
        while (*len > 0) {
                char c = *(*data)++;
                (*len)--;
                if (c == '\n') {
                        if (p->line_len && p->line[p->line_len - 1] == '\r')
                                p->line_len--;
                        p->line[p->line_len] = 0;
                        p->line_len = 0;
                        return 1;
                }
                if (p->line_len == HTTPRESP_LINE_MAX)
                        return -E2BIG;
                p->line[p->line_len++] = c;
        }
        return 0;
}

static int chunk_size(HttpResp *p) {
        char *end;
        size_t n = strspn(p->line, "0123456789abcdefABCDEF");
        if (n == 0 || n > 15)
                return -EBADMSG;
        p->left = strtoull(p->line, &end, 16);
        if (*end && *end != ';' && *end != ' ' && *end != '\t')
                return -EBADMSG;
        p->state = p->left ? ST_CHUNK_DATA : ST_TRAILERS;
        return 0;
}

static int body_take(HttpResp *p, const char **data, size_t *len, const char **ret_body, size_t *ret_body_len) {
        size_t n = *len;
        if (p->state != ST_CLOSE && n > p->left)
                n = (size_t) p->left;
        *ret_body = *data;
        *ret_body_len = n;
        *data += n;
        *len -= n;
        if (p->state != ST_CLOSE) {
                p->left -= n;
                if (p->left == 0)
                        p->state = p->state == ST_LENGTH ? ST_DONE : ST_CHUNK_CRLF;
        }
        return HTTPRESP_BODY;
}

int httpresp_feed(HttpResp *p, const char **data, size_t *len, const char **ret_body, size_t *ret_body_len) {
        int r;
        for (;;) {
                switch (p->state) {
                case ST_HEAD:
                        if ((r = head_take(p, data, len)) <= 0)
                                return r < 0 ? r : HTTPRESP_MORE;
                        if ((r = head_parse(p)) < 0)
                                return r;
                        if (p->status < 200 && p->status != 101) {      /* 1xx: another head follows */
                                httpresp_init(p, p->head_request);
                                continue;
                        }
                        if (p->status == 101)
                                return -EBADMSG;
                        body_start(p);
                        return HTTPRESP_HEADERS;
                case ST_LENGTH:
                case ST_CHUNK_DATA:
                case ST_CLOSE:
                        if (*len == 0)
                                return HTTPRESP_MORE;
                        return body_take(p, data, len, ret_body, ret_body_len);
                case ST_CHUNK_SIZE:
                case ST_CHUNK_CRLF:
                case ST_TRAILERS:
                        if ((r = line_take(p, data, len)) <= 0)
                                return r < 0 ? r : HTTPRESP_MORE;
                        if (p->state == ST_CHUNK_SIZE) {
                                if ((r = chunk_size(p)) < 0)
                                        return r;
                        } else if (p->state == ST_CHUNK_CRLF) {
                                if (p->line[0])
                                        return -EBADMSG;
                                p->state = ST_CHUNK_SIZE;
                        } else if (!p->line[0])
                                p->state = ST_DONE;
                        continue;
                default:
                        return HTTPRESP_DONE;
                }
        }
}

int httpresp_eof(HttpResp *p) {
        if (p->state == ST_CLOSE || p->state == ST_DONE) {
                p->state = ST_DONE;
                return 1;
        }
        return -ECONNRESET;
}
