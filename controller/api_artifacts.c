/* controller/api_artifacts.c: content-addressed code. PUT keeps the body
 * only when its SHA-256 is the one in the path (the body was already bounded
 * by STORE_ARTIFACT_MAX while it arrived); HEAD says whether it is there;
 * GET gives the bytes to node agents. */
#include <errno.h>
#include <stdlib.h>

#include "controller/api.h"

#include "lib/artifact.h"

static int digest_param(HttpRequest *req, const char **ret, HttpResponse *resp) {
        const char *d = req->n_params > 0 ? req->params[0] : NULL;
        if (!d || !artifact_digest_valid(d)) {
                http_error(resp, 400, "bad_request", "digest",
                           "bad path: expected sha256: and 64 lowercase hex digits");
                return -1;
        }
        *ret = d;
        return 0;
}

void api_artifact_head(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *digest;
        if (digest_param(req, &digest, resp) < 0)
                return;
        int r = store_artifact_exists(api->store, digest);
        if (r < 0)
                api_store_error(api, resp, r, "artifact");
        else if (r == 0)
                http_error(resp, 404, "not_found", NULL, "artifact %s: not found", digest);
        else
                http_reply(resp, 200, json_pack("{s:s}", "digest", digest));
}

/* The tar bytes, for node agents (admin tokens: a digest alone must not
 * open another tenant's code to a developer). */
void api_artifact_get(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *digest;
        void *data = NULL;
        size_t len = 0;
        if (digest_param(req, &digest, resp) < 0)
                return;
        int r = store_artifact_get(api->store, digest, &data, &len);
        if (r == -ENOENT)
                http_error(resp, 404, "not_found", NULL, "artifact %s: not found", digest);
        else if (r < 0)
                api_store_error(api, resp, r, "artifact");
        else
                http_reply_raw(resp, 200, "application/x-tar", data ? data : strdup(""), len);
}

void api_artifact_put(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *digest;
        char actual[ARTIFACT_DIGEST_LEN];
        if (digest_param(req, &digest, resp) < 0)
                return;
        artifact_digest(req->body ? req->body : "", req->body_len, actual);
        if (strcmp(actual, digest) != 0) {
                http_error(resp, 400, "digest_mismatch", "digest",
                           "the body's digest is %s, not the one in the path", actual);
                return;
        }
        int exists = store_artifact_exists(api->store, digest);
        int r = exists < 0 ? exists : store_artifact_put(api->store, digest, req->body ? req->body : "",
                                                          req->body_len);
        if (r < 0) {
                api_store_error(api, resp, r, "artifact");
                return;
        }
        http_reply(resp, exists ? 200 : 201, json_pack("{s:s, s:I}", "digest", digest,
                                                       "size", (json_int_t) req->body_len));
}
