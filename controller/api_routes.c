/* controller/api_routes.c: the activator's side of docs/internals.md: the
 * long-polled route table, the per-second concurrency report, and the poke
 * that makes the autoscaler decide at once for a revision with a request
 * waiting. */
#include <errno.h>

#include "controller/api.h"
#include "controller/cluster.h"
#include "lib/manifest.h"

void api_routes_get(Api *api, HttpRequest *req, HttpResponse *resp) {
        uint64_t after;
        int64_t wait;
        if (api_long_poll_params(req, &after, &wait, resp) < 0)
                return;
        cluster_routes(api->cluster, after, wait, req, resp);
}

void api_activator_stats(Api *api, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_t *body = NULL;
        char err[256];
        if (api_body_object(req, &body, resp) < 0)
                return;
        if (cluster_activator_stats(api->cluster, body, err, sizeof err) < 0) {
                http_error(resp, 400, "bad_request", NULL, "activator stats: %s", err);
                return;
        }
        http_reply_empty(resp, 204);
}

void api_activator_poke(Api *api, HttpRequest *req, HttpResponse *resp) {
        _cleanup_json_ json_t *body = NULL;
        if (api_body_object(req, &body, resp) < 0)
                return;
        const char *ns = json_string_value(json_object_get(body, "namespace"));
        const char *rev = json_string_value(json_object_get(body, "revision"));
        if (!ns || !manifest_name_valid(ns)) {
                http_error(resp, 400, "bad_request", "namespace", "namespace: expected a DNS-1123 label");
                return;
        }
        if (!rev || strlen(rev) > 80 || !strchr(rev, '-')) {
                http_error(resp, 400, "bad_request", "revision", "revision: expected NAME-00001");
                return;
        }
        int r = cluster_poke(api->cluster, ns, rev);
        if (r == -ENOENT) {
                http_error(resp, 404, "not_found", "revision", "no revision %s in namespace %s is routed", rev, ns);
                return;
        }
        http_reply(resp, 202, json_pack("{s:s, s:s}", "namespace", ns, "revision", rev));
}
