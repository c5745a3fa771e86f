/* activator/fnpath.c: parsing of /fn/ URLs (see fnpath.h). */
#include "activator/fnpath.h"

#include <errno.h>
#include <string.h>

bool fnpath_name_ok(const char *s, size_t len) {
        if (len == 0 || len > FNPATH_NAME_MAX || s[0] == '-' || s[len - 1] == '-')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

/* One segment at p (up to end): NAME or NAME@TAG. */
static void segment_parse(const char *p, const char *end, FnSegment *seg) {
        size_t len = strcspn(p, "/");
        if (p + len > end)
                len = (size_t) (end - p);
        const char *at = memchr(p, '@', len);
        size_t nl = at ? (size_t) (at - p) : len;
        size_t tl = at ? len - nl - 1 : 0;
        *seg = (FnSegment) { .rest = p + len, .rest_len = (size_t) (end - (p + len)) };
        seg->valid = fnpath_name_ok(p, nl) && (!at || fnpath_name_ok(at + 1, tl));
        if (!seg->valid)
                return;
        memcpy(seg->name, p, nl);
        seg->name[nl] = 0;
        if (at) {
                memcpy(seg->tag, at + 1, tl);
                seg->tag[tl] = 0;
        }
}

int fnpath_parse(const char *uri, FnPath *ret) {
        if (strncmp(uri, "/fn/", 4) != 0)
                return -ENOENT;
        FnPath p = { 0 };
        const char *q = strchr(uri, '?');
        const char *end = q ? q : uri + strlen(uri);
        p.query = q ? q + 1 : NULL;
        segment_parse(uri + 4, end, &p.first);
        if (!p.first.valid)
                return -EINVAL;
        if (p.first.rest_len > 1) {
                segment_parse(p.first.rest + 1, end, &p.second);
                p.has_second = p.second.valid && !p.first.tag[0];
        }
        *ret = p;
        return 0;
}
