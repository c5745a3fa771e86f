/* controller/api_system.c: /healthz (the process runs), /readyz (the store
 * answers) and /v1/nodes (the runtimes that registered, for admins). */
#include "controller/api.h"

void api_healthz(Api *api _unused_, HttpRequest *req _unused_, HttpResponse *resp) {
        http_reply(resp, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(Api *api, HttpRequest *req _unused_, HttpResponse *resp) {
        int v = store_schema_version(api->store);
        if (v < 0) {
                http_error(resp, 503, "unavailable", NULL, "the store does not answer");
                return;
        }
        http_reply(resp, 200, json_pack("{s:s, s:s, s:i}", "status", "ready",
                                        "store", store_backend(api->store), "schema", v));
}

static json_t *render_node(const StoreNode *n) {
        return json_pack("{s:s, s:o, s:o, s:s?, s:o, s:o}",
                         "name", n->name,
                         "labels", api_json_text(n->labels_json),
                         "capacity", api_json_text(n->capacity_json),
                         "state", n->state,
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
        json_t *items = json_array();
        for (size_t i = 0; items && i < n; i++)
                if (json_array_append_new(items, render_node(&nodes[i])) < 0)
                        items = (json_decref(items), NULL);
        store_node_array_free(nodes, n);
        http_reply(resp, 200, items ? json_pack("{s:o, s:n}", "items", items, "next") : NULL);
}
