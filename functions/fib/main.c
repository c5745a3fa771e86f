/* functions/fib: a native box. Reads n (0..93) from stdin and prints the
 * n-th Fibonacci number as JSON; anything else is refused on stderr with
 * exit status 2. Built by the Makefile to $(BUILD)/functions/fib/main. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIB_MAX 93 /* the largest n whose result fits in 64 bits */

static int parse_n(const char *s, unsigned *ret) {
        char *end;
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
                s++;
        if (*s < '0' || *s > '9')
                return -1;
        unsigned long v = strtoul(s, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
                end++;
        if (*end || v > FIB_MAX)
                return -1;
        *ret = (unsigned) v;
        return 0;
}

int main(void) {
        char buf[64];
        size_t len = fread(buf, 1, sizeof buf - 1, stdin);
        buf[len] = 0;
        unsigned n;
        if (len == sizeof buf - 1 || parse_n(buf, &n) < 0) {
                fprintf(stderr, "fib: expected a whole number from 0 to %d on stdin\n", FIB_MAX);
                return 2;
        }
        uint64_t a = 0, b = 1;
        for (unsigned i = 0; i < n; i++) {
                uint64_t t = a + b;
                a = b;
                b = t;
        }
        printf("{\"n\": %u, \"fib\": %" PRIu64 "}\n", n, a);
        return 0;
}
