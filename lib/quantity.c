/* lib/quantity.c: parsing of sizes, durations and CPU amounts. Numbers are
 * parsed by hand (digits, one optional fraction) so that "1e9", " 5", "0x10",
 * "-1" and overflowing values are all refused rather than guessed at. */
#include "quantity.h"

#include <errno.h>
#include <string.h>

typedef struct Suffix {
        const char *name;
        uint64_t mult;
} Suffix;

/* Parse "DIGITS[.DIGITS]" then a suffix from table; value = number * mult,
 * truncated. Empty suffix uses plain_mult. */
static int parse_scaled(const char *s, const Suffix *table, uint64_t plain_mult, uint64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        uint64_t whole = 0, frac = 0, frac_div = 1;
        const char *p = s;
        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (whole > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t) (*p - '0');
        }
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                for (; *p >= '0' && *p <= '9'; p++)
                        if (frac_div < 1000000000ULL) {
                                frac = frac * 10 + (uint64_t) (*p - '0');
                                frac_div *= 10;
                        }
        }
        uint64_t mult = 0;
        if (*p == 0)
                mult = plain_mult;
        else
                for (const Suffix *x = table; x->name; x++)
                        if (strcmp(p, x->name) == 0) {
                                mult = x->mult;
                                break;
                        }
        if (mult == 0)
                return -EINVAL;
        if (whole != 0 && mult > UINT64_MAX / whole)
                return -ERANGE;
        uint64_t v = whole * mult;
        /* frac < frac_div <= 1e9, so split mult to avoid overflow */
        uint64_t f = (mult / frac_div) * frac + ((mult % frac_div) * frac) / frac_div;
        if (v > UINT64_MAX - f)
                return -ERANGE;
        *ret = v + f;
        return 0;
}

int quantity_parse_bytes(const char *s, uint64_t *ret) {
        static const Suffix t[] = {
                { "K", 1ULL << 10 }, { "Ki", 1ULL << 10 }, { "k", 1ULL << 10 },
                { "M", 1ULL << 20 }, { "Mi", 1ULL << 20 },
                { "G", 1ULL << 30 }, { "Gi", 1ULL << 30 },
                { "T", 1ULL << 40 }, { "Ti", 1ULL << 40 },
                { "B", 1 }, { NULL, 0 },
        };
        return parse_scaled(s, t, 1, ret);
}

int quantity_parse_duration(const char *s, uint64_t *ret_ns) {
        static const Suffix t[] = {
                { "ns", 1 }, { "us", 1000ULL }, { "ms", 1000000ULL },
                { "s", 1000000000ULL }, { "m", 60000000000ULL }, { "h", 3600000000000ULL },
                { NULL, 0 },
        };
        return parse_scaled(s, t, 1000000000ULL, ret_ns);
}

int quantity_parse_cpu(const char *s, uint64_t *ret_millis) {
        static const Suffix t[] = { { "m", 1 }, { NULL, 0 } };
        return parse_scaled(s, t, 1000, ret_millis);
}

int quantity_parse_uint(const char *s, uint64_t *ret) {
        static const Suffix t[] = { { NULL, 0 } };
        if (s && strchr(s, '.'))
                return -EINVAL;
        return parse_scaled(s, t, 1, ret);
}
