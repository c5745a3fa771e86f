/* activator/metrics.c: counters, histograms and their Prometheus text
 * (see metrics.h). */
#include "activator/metrics.h"

#include <stddef.h>

const double metrics_bucket_bounds[METRICS_BUCKETS] = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 120,
};

void histogram_add(Histogram *h, double seconds) {
        size_t i = 0;
        while (i < METRICS_BUCKETS && seconds > metrics_bucket_bounds[i])
                i++;
        h->counts[i]++;
        h->n++;
        h->sum += seconds;
}

void fnmetrics_count(FnMetrics *m, unsigned code, double seconds) {
        size_t i;
        for (i = 0; i < m->n_codes && m->codes[i].code != code; i++)
                ;
        if (i == m->n_codes) {
                if (m->n_codes == METRICS_CODES_MAX)
                        i = METRICS_CODES_MAX - 1, code = 0;     /* the last one: other */
                else
                        m->codes[m->n_codes++].code = code;
        }
        m->codes[i].n++;
        histogram_add(&m->latency, seconds);
}

static const char *const family_help[_METRICS_FAMILIES] = {
        [METRICS_REQUESTS] = "# HELP fnbox_activator_requests_total Requests to /fn/ by function and status.\n"
                             "# TYPE fnbox_activator_requests_total counter\n",
        [METRICS_DURATION] = "# HELP fnbox_activator_request_duration_seconds From a request's arrival to its answer's end.\n"
                             "# TYPE fnbox_activator_request_duration_seconds histogram\n",
        [METRICS_COLD_STARTS] = "# HELP fnbox_activator_cold_starts_total Requests that waited for the first instance of their revision.\n"
                                "# TYPE fnbox_activator_cold_starts_total counter\n",
        [METRICS_COLD_WAIT] = "# HELP fnbox_activator_cold_start_wait_seconds How long those requests waited.\n"
                              "# TYPE fnbox_activator_cold_start_wait_seconds histogram\n",
};

void metrics_write_help(FILE *f, int family) {
        fputs(family_help[family], f);
}

static void histogram_write(FILE *f, const char *family, const char *labels, const Histogram *h) {
        uint64_t cum = 0;
        for (size_t i = 0; i < METRICS_BUCKETS; i++) {
                cum += h->counts[i];
                fprintf(f, "%s_bucket{%s,le=\"%g\"} %llu\n", family, labels, metrics_bucket_bounds[i],
                        (unsigned long long) cum);
        }
        fprintf(f, "%s_bucket{%s,le=\"+Inf\"} %llu\n", family, labels, (unsigned long long) h->n);
        fprintf(f, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", family, labels, h->sum, family, labels,
                (unsigned long long) h->n);
}

void metrics_write_fn(FILE *f, int family, const FnMetrics *m) {
        char labels[160];
        snprintf(labels, sizeof labels, "namespace=\"%s\",function=\"%s\"", m->ns, m->name);
        switch (family) {
        case METRICS_REQUESTS:
                for (size_t i = 0; i < m->n_codes; i++) {
                        if (m->codes[i].code)
                                fprintf(f, "fnbox_activator_requests_total{%s,code=\"%u\"} %llu\n", labels,
                                        m->codes[i].code, (unsigned long long) m->codes[i].n);
                        else
                                fprintf(f, "fnbox_activator_requests_total{%s,code=\"other\"} %llu\n", labels,
                                        (unsigned long long) m->codes[i].n);
                }
                break;
        case METRICS_DURATION:
                histogram_write(f, "fnbox_activator_request_duration_seconds", labels, &m->latency);
                break;
        case METRICS_COLD_STARTS:
                fprintf(f, "fnbox_activator_cold_starts_total{%s} %llu\n", labels, (unsigned long long) m->cold_starts);
                break;
        case METRICS_COLD_WAIT:
                histogram_write(f, "fnbox_activator_cold_start_wait_seconds", labels, &m->cold_wait);
                break;
        }
}
