/* cli/http.c: requests to the fnbox API through libcurl. One easy handle
 * per process keeps the connection alive across the requests of a verb;
 * every request is bounded in time and in the size of its answer. */
#define _GNU_SOURCE
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

#define AUTH_MAX 8192

struct Http {
        CURL *curl;
        char *base_url;
        char *auth;             /* "Authorization: Bearer ..." or NULL */
        uint64_t timeout_ms;
        size_t response_max;    /* HTTP_RESPONSE_MAX unless http_set_response_max said otherwise */
        char errbuf[CURL_ERROR_SIZE];
        char error[CURL_ERROR_SIZE + 64];
};

typedef struct Sink {
        char *data;
        size_t len, cap, max;
        bool overflow;
} Sink;

static bool curl_ready;

int http_new(const char *base_url, const char *token, uint64_t timeout_ms, Http **ret) {
        if (!curl_ready) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return -ENOMEM;
                curl_ready = true;
        }
        Http *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->curl = curl_easy_init();
        h->base_url = strdup(base_url);
        h->timeout_ms = timeout_ms;
        h->response_max = HTTP_RESPONSE_MAX;
        if (token) {
                size_t n = strlen(token) + 32;
                if (n > AUTH_MAX || !(h->auth = malloc(n)))
                        return http_free(h), -E2BIG;
                snprintf(h->auth, n, "Authorization: Bearer %s", token);
        }
        if (!h->curl || !h->base_url)
                return http_free(h), -ENOMEM;
        *ret = h;
        return 0;
}

Http *http_free(Http *h) {
        if (!h)
                return NULL;
        if (h->curl)
                curl_easy_cleanup(h->curl);
        if (h->auth) {
                explicit_bzero(h->auth, strlen(h->auth));
                free(h->auth);
        }
        free(h->base_url);
        free(h);
        return NULL;
}

void http_freep(Http **h) {
        http_free(*h);
}

const char *http_error(const Http *h) {
        return h->error;
}

const char *http_base_url(const Http *h) {
        return h->base_url;
}

size_t http_set_response_max(Http *h, size_t max) {
        size_t old = h->response_max;
        h->response_max = max;
        return old;
}

void http_response_done(HttpResponse *r) {
        free(r->body);
        json_decref(r->json);
        *r = (HttpResponse) { 0 };
}

char *http_escape(const char *s) {
        char *e = curl_easy_escape(NULL, s, 0);
        if (!e)
                return NULL;
        char *copy = strdup(e);
        curl_free(e);
        return copy;
}

/* libcurl's write callback: append, and stop (a write error) past the cap. */
static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Sink *s = userdata;
        size_t n = size * nmemb;
        if (n > s->max - s->len) {
                s->overflow = true;
                return 0;
        }
        if (s->len + n + 1 > s->cap) {
                size_t cap = s->cap ? s->cap : 4096;
                while (cap < s->len + n + 1)
                        cap *= 2;
                char *d = realloc(s->data, cap);
                if (!d)
                        return 0;
                s->data = d;
                s->cap = cap;
        }
        memcpy(s->data + s->len, ptr, n);
        s->len += n;
        s->data[s->len] = 0;
        return n;
}

/* Everything but the method and body; the same for each request. */
static int setup(Http *h, const char *url, Sink *sink, struct curl_slist *hdrs) {
        CURL *c = h->curl;
        curl_easy_reset(c);
        if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK)
                return -EINVAL;
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) HTTP_CONNECT_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) h->timeout_ms);
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) h->response_max);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "fnbox-cli/1");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
        return 0;
}

static void set_method(CURL *c, const char *method, const void *body, size_t len) {
        if (strcmp(method, "HEAD") == 0)
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (strcmp(method, "GET") != 0)
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (body ? len : 0));
        }
}

static int transport_error(Http *h, CURLcode cc, const Sink *sink) {
        const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
        snprintf(h->error, sizeof h->error, "%s", why);
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_FILESIZE_EXCEEDED:
                goto too_big;
        case CURLE_WRITE_ERROR:
                if (sink->overflow)
                        goto too_big;
                return -ENOMEM;
        default:
                return -EPROTO;
        }
too_big:
        snprintf(h->error, sizeof h->error, "the answer is larger than %zu MiB", h->response_max >> 20);
        return -EFBIG;
}

static struct curl_slist *header_add(struct curl_slist *l, const char *line) {
        if (!l)
                return NULL;
        struct curl_slist *n = curl_slist_append(l, line);
        if (!n)
                curl_slist_free_all(l);
        return n;
}

/* "Expect:" turns off 100-continue: the server answers a PUT at once. */
static struct curl_slist *headers(const Http *h, const char *content_type) {
        char ct[128];
        struct curl_slist *l = curl_slist_append(NULL, "Expect:");
        l = header_add(l, "Accept: application/json");
        if (h->auth)
                l = header_add(l, h->auth);
        if (content_type) {
                snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
                l = header_add(l, ct);
        }
        return l;
}

int http_request(Http *h, const char *method, const char *path, const char *content_type,
                 const void *body, size_t len, HttpResponse *ret) {
        _cleanup_free_ char *url = NULL;
        Sink sink = { .max = h->response_max };
        h->errbuf[0] = h->error[0] = 0;
        if (asprintf(&url, "%s%s", h->base_url, path) < 0) {
                url = NULL;
                return -ENOMEM;
        }
        struct curl_slist *hdrs = headers(h, content_type);
        if (!hdrs)
                return -ENOMEM;
        int r = setup(h, url, &sink, hdrs);
        if (r < 0) {
                snprintf(h->error, sizeof h->error, "refused URL (only http and https are allowed)");
                curl_slist_free_all(hdrs);
                return r;
        }
        set_method(h->curl, method, body, len);
        CURLcode cc = curl_easy_perform(h->curl);
        curl_slist_free_all(hdrs);
        if (cc != CURLE_OK) {
                free(sink.data);
                return transport_error(h, cc, &sink);
        }
        *ret = (HttpResponse) { .body = sink.data ? sink.data : strdup(""), .len = sink.len };
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &ret->status);
        if (!ret->body)
                return -ENOMEM;
        if (ret->len)
                ret->json = json_loadb(ret->body, ret->len, 0, NULL);
        return 0;
}

int http_request_json(Http *h, const char *method, const char *path, json_t *body, HttpResponse *ret) {
        _cleanup_free_ char *text = NULL;
        if (body && !(text = json_dumps(body, JSON_COMPACT)))
                return -ENOMEM;
        return http_request(h, method, path, body ? "application/json" : NULL, text,
                            text ? strlen(text) : 0, ret);
}
