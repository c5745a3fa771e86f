/* controller/api_system.c: /healthz (the process runs), /readyz (the store
 * answers) and /metrics (Prometheus text: requests, instances, scaling
 * decisions, nodes). */
#include "controller/api.h"
#include "controller/cluster.h"

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

void api_metrics(Api *api, HttpRequest *req _unused_, HttpResponse *resp) {
        size_t len = 0;
        char *text = cluster_metrics(api->cluster, &len);
        http_reply_raw(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
