/* activator/metrics.h: per-function request metrics and their Prometheus
 * text: requests by status, latency histograms, cold starts and their
 * wait. The router keeps one FnMetrics per function under its lock; the
 * formatting is pure. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#define METRICS_BUCKETS   15
#define METRICS_CODES_MAX 24    /* distinct statuses kept per function (the rest: code="other") */

typedef struct Histogram {
        uint64_t counts[METRICS_BUCKETS + 1];   /* per bucket, the last is +Inf */
        uint64_t n;
        double sum;
} Histogram;

typedef struct FnMetrics {
        char *ns, *name;                 /* "" and "" for requests that named no function */
        struct {
                unsigned code;           /* 0: other */
                uint64_t n;
        } codes[METRICS_CODES_MAX];
        size_t n_codes;
        Histogram latency, cold_wait;
        uint64_t cold_starts;
        struct FnMetrics *next;
} FnMetrics;

extern const double metrics_bucket_bounds[METRICS_BUCKETS];

void histogram_add(Histogram *h, double seconds);
void fnmetrics_count(FnMetrics *m, unsigned code, double seconds);

enum {
        METRICS_REQUESTS,
        METRICS_DURATION,
        METRICS_COLD_STARTS,
        METRICS_COLD_WAIT,
        _METRICS_FAMILIES,
};

/* The HELP and TYPE lines of a family. */
void metrics_write_help(FILE *f, int family);
/* One function's samples of a family (a family's samples are written
 * together: the help, then every function's). */
void metrics_write_fn(FILE *f, int family, const FnMetrics *m);
