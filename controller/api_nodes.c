/* controller/api_nodes.c: the node agent's side of docs/internals.md
 * (status reports and the long-polled assignment) and GET /v1/nodes for
 * admins: the registered nodes with their state and instance counts. */
#include <errno.h>
#include <stdlib.h>

#include "controller/api.h"
#include "controller/cluster.h"

/* ?after=V&waitMs=W of a long poll. */
int api_long_poll_params(HttpRequest *req, uint64_t *ret_after, int64_t *ret_wait, HttpResponse *resp) {
        const char *a = http_query(req, "after"), *w = http_query(req, "waitMs");
        char *end = NULL;
        unsigned long long after = 0, wait = 0;
        if (a && (!*a || strspn(a, "0123456789") != strlen(a) || strlen(a) > 19 ||
                  (after = strtoull(a, &end, 10), *end))) {
                http_error(resp, 400, "bad_request", "after", "after: expected a version (an integer >= 0)");
                return -1;
        }
        if (w && (!*w || strspn(w, "0123456789") != strlen(w) || strlen(w) > 6 ||
                  (wait = strtoull(w, &end, 10)) > CLUSTER_WAIT_MAX_MS)) {
                http_error(resp, 400, "bad_request", "waitMs", "waitMs: expected 0 to %d milliseconds",
                           CLUSTER_WAIT_MAX_MS);
                return -1;
        }
        *ret_after = after;
        *ret_wait = (int64_t) wait;
        return 0;
}

void api_node_status(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *name;
        _cleanup_json_ json_t *body = NULL;
        if (api_name_param(req, 0, "node", &name, resp) < 0 || api_body_object(req, &body, resp) < 0)
                return;
        char err[256];
        json_t *assignment = NULL;
        int r = cluster_node_status(api->cluster, name, body, &assignment, err, sizeof err);
        if (r == -EINVAL)
                http_error(resp, 400, "bad_request", NULL, "node status: %s", err);
        else if (r < 0)
                http_error(resp, 500, "internal", NULL, "node status: %s", strerror(-r));
        else
                http_reply(resp, 200, assignment);
}

void api_node_assignments(Api *api, HttpRequest *req, HttpResponse *resp) {
        const char *name;
        uint64_t after;
        int64_t wait;
        if (api_name_param(req, 0, "node", &name, resp) < 0 || api_long_poll_params(req, &after, &wait, resp) < 0)
                return;
        if (cluster_node_assignments(api->cluster, name, after, wait, req, resp) == -ENOENT)
                http_error(resp, 404, "not_found", NULL, "node %s has not reported its status", name);
}

static json_t *render_node(const StoreNode *n, json_t *info) {
        json_t *mem = json_object_get(info, n->name);
        return json_pack("{s:s, s:o, s:o, s:s?, s:O?, s:O?, s:O?, s:o, s:o}",
                         "name", n->name,
                         "labels", api_json_text(n->labels_json),
                         "capacity", api_json_text(n->capacity_json),
                         "state", mem ? json_string_value(json_object_get(mem, "state")) : n->state,
                         "instances", json_object_get(mem, "instances"),
                         "readyInstances", json_object_get(mem, "ready"),
                         "gpus", json_object_get(mem, "gpus"),
                         "heartbeatAt", api_time_json(n->heartbeat_ms),
                         "registeredAt", api_time_json(n->registered_ms));
}

void api_nodes_list(Api *api, HttpRequest *req _unused_, HttpResponse *resp) {
        StoreNode *nodes = NULL;
        size_t n = 0;
        int r = store_node_list(api->store, &nodes, &n);
        if (r < 0) {
                api_store_error(api, resp, r, "nodes");
                return;
        }
        _cleanup_json_ json_t *info = api->cluster ? cluster_nodes_info(api->cluster) : NULL;
        json_t *items = json_array();
        for (size_t i = 0; items && i < n; i++)
                if (json_array_append_new(items, render_node(&nodes[i], info)) < 0)
                        items = (json_decref(items), NULL);
        store_node_array_free(nodes, n);
        http_reply(resp, 200, items ? json_pack("{s:o, s:n}", "items", items, "next") : NULL);
}
