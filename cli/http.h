/* cli/http.h: the CLI's HTTP client, a thin layer over one libcurl easy
 * handle (so requests to one server reuse the connection): http and https
 * only, no redirects, connect and total timeouts, and responses read up to
 * HTTP_RESPONSE_MAX. The library never prints; errors come back as -errno
 * with a reason in http_error(). */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_RESPONSE_MAX       (16u << 20)
#define HTTP_CONNECT_TIMEOUT_MS 5000

typedef struct Http Http;

typedef struct HttpResponse {
        long status;
        char *body;             /* NUL-terminated, len bytes */
        size_t len;
        json_t *json;           /* the body parsed, NULL when it is not JSON */
} HttpResponse;

/* base_url: "http://host:port" (no trailing '/'); token may be NULL. */
int http_new(const char *base_url, const char *token, uint64_t timeout_ms, Http **ret);
Http *http_free(Http *h);
void http_freep(Http **h);

/* One request. path starts with '/' and carries its query, escaped already.
 * body may be NULL. Returns 0 with any status in *ret, or a transport error:
 * -ECONNREFUSED (could not connect or resolve), -ETIMEDOUT, -EFBIG (answer
 * over HTTP_RESPONSE_MAX), -EPROTO (anything else); see http_error(). */
int http_request(Http *h, const char *method, const char *path, const char *content_type,
                 const void *body, size_t len, HttpResponse *ret);

/* A request with a JSON body (NULL: none). */
int http_request_json(Http *h, const char *method, const char *path, json_t *body, HttpResponse *ret);

/* The most bytes an answer may have from now on (HTTP_RESPONSE_MAX at
 * first; a session's archives need more): the previous limit. */
size_t http_set_response_max(Http *h, size_t max);

/* Why the last request failed, for messages. */
const char *http_error(const Http *h);
const char *http_base_url(const Http *h);

void http_response_done(HttpResponse *r);

/* A URL-escaped copy of s (malloc()ed), or NULL. */
char *http_escape(const char *s);
