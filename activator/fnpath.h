/* activator/fnpath.h: the invocation URL, taken apart. `/fn/NAME[/SUB]`,
 * `/fn/NAMESPACE/NAME[/SUB]` and `/fn/NAME@TAG[/SUB]` look alike until the
 * route table says which of the first two a URL is, so the parser keeps
 * both readings and route_lookup() picks one. Pure: no I/O, no allocation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define FNPATH_NAME_MAX 63        /* a DNS label */
#define FNPATH_URI_MAX  8192      /* the request line's URI (414 beyond) */

typedef struct FnSegment {
        char name[FNPATH_NAME_MAX + 1];
        char tag[FNPATH_NAME_MAX + 1];   /* "" without @TAG */
        const char *rest;                /* what follows the segment: "" or "/..." (no query) */
        size_t rest_len;
        bool valid;                      /* a well-formed name (and tag) */
} FnSegment;

typedef struct FnPath {
        FnSegment first;                 /* NAME, or NAMESPACE */
        FnSegment second;                /* NAME after NAMESPACE, when there is one */
        bool has_second;
        const char *query;               /* after '?', or NULL */
} FnPath;

/* A name: 1 to 63 of [a-z0-9-], starting and ending with a letter or digit. */
bool fnpath_name_ok(const char *s, size_t len);

/* Parse a raw request URI (as sent, still percent-encoded). 0, or
 * -ENOENT when it is not under /fn/, -EINVAL when the first segment is not
 * a valid NAME[@TAG] (or NAMESPACE). */
int fnpath_parse(const char *uri, FnPath *ret);
