/* lib/quantity.h: the one place where user-written quantities are parsed:
 * byte sizes ("128M", "16Mi", "1G"), durations ("10s", "250ms", "1m") and CPU
 * amounts ("1", "0.5", "500m"). Shared by the CLI, manifests and daemons. */
#pragma once

#include <stdint.h>

/* Sizes: a plain number is bytes; K, M, G, T and Ki, Mi, Gi, Ti are all
 * binary multiples (1024). Returns 0 or -EINVAL / -ERANGE. */
int quantity_parse_bytes(const char *s, uint64_t *ret);
/* Durations: ns, us, ms, s, m, h suffixes; a plain number is seconds.
 * Fractions are allowed ("1.5s"). Result in nanoseconds. */
int quantity_parse_duration(const char *s, uint64_t *ret_ns);
/* CPU: "1" or "0.25" cores, or "250m" millicores. Result in millicores. */
int quantity_parse_cpu(const char *s, uint64_t *ret_millis);
/* A plain non-negative integer. */
int quantity_parse_uint(const char *s, uint64_t *ret);
