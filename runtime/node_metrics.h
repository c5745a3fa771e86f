/* runtime/node_metrics.h: the node agent's Prometheus metrics and the
 * small HTTP server that serves them (GET /metrics, nothing else):
 * instances by state, requests and their durations by revision and
 * outcome, cold starts, zygote start durations, the pool's size. */
#pragma once

#include <stdio.h>
#include <uv.h>

#define METRICS_REVISIONS_MAX 1024   /* more are counted under revision="other" */

typedef struct NodeMetrics NodeMetrics;
/* writes the gauges known only to the node (instances by state, pool) */
typedef void (*metrics_gauges_fn)(FILE *f, void *userdata);

/* listen: HOST:PORT (IPv4; port 0 lets the kernel pick), or NULL for no
 * server (the counters still work). ret_port gets the bound port. */
int node_metrics_new(uv_loop_t *loop, const char *listen, metrics_gauges_fn gauges, void *userdata,
                     NodeMetrics **ret, unsigned *ret_port);
void node_metrics_request(NodeMetrics *m, const char *revision, const char *outcome, double seconds);
void node_metrics_cold_start(NodeMetrics *m, const char *revision, double seconds);
void node_metrics_zygote_start(NodeMetrics *m, double seconds);
/* The whole text exposition. */
int node_metrics_render(NodeMetrics *m, char **ret, size_t *ret_len);
void node_metrics_free(NodeMetrics *m);
