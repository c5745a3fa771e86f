/* lib/httpver.h: the HTTP version at the end of a request line, one rule
 * for every parser that serves HTTP/1.x (the activator's, the broker's).
 * HTTP/1.1 and HTTP/1.0 are spoken; another well-formed HTTP/D.D is a
 * version not supported (505); anything else is a malformed line (400). */
#pragma once

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

/* v[0, n): 11 or 10, -EPROTONOSUPPORT or -EBADMSG. */
static inline int http_version_parse(const char *v, size_t n) {
        if (n != 8 || memcmp(v, "HTTP/", 5) || !isdigit((unsigned char) v[5]) || v[6] != '.' ||
            !isdigit((unsigned char) v[7]))
                return -EBADMSG;
        if (v[5] == '1' && (v[7] == '1' || v[7] == '0'))
                return v[7] == '1' ? 11 : 10;
        return -EPROTONOSUPPORT;
}
