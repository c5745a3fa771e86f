/* activator/fnpath.c: parsing of /fn/ and /skills/ URLs (see fnpath.h). */
#include "activator/fnpath.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool fnpath_name_ok(const char *s, size_t len) {
        if (len == 0 || len > FNPATH_NAME_MAX || s[0] == '-' || s[len - 1] == '-')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

bool fnpath_skill_name_ok(const char *s, size_t len) {
        return len <= FNPATH_SKILL_MAX && fnpath_name_ok(s, len);
}

bool fnpath_is_skill(const char *uri) {
        return strncmp(uri, "/skills/", 8) == 0;
}

/* The length of the segment at p: up to '/' or end. */
static size_t segment_len(const char *p, const char *end) {
        size_t len = strcspn(p, "/");
        return p + len > end ? (size_t) (end - p) : len;
}

/* One segment at p (up to end): NAME or NAME@TAG. */
static void segment_parse(const char *p, const char *end, FnSegment *seg) {
        size_t len = segment_len(p, end);
        const char *at = memchr(p, '@', len);
        size_t nl = at ? (size_t) (at - p) : len;
        size_t tl = at ? len - nl - 1 : 0;
        *seg = (FnSegment) { .rest = p + len, .rest_len = (size_t) (end - (p + len)) };
        seg->valid = fnpath_name_ok(p, nl) && (!at || fnpath_name_ok(at + 1, tl));
        if (!seg->valid)
                return;
        seg->ns_ok = !at;
        memcpy(seg->name, p, nl);
        seg->name[nl] = 0;
        if (at) {
                memcpy(seg->tag, at + 1, tl);
                seg->tag[tl] = 0;
        }
}

/* A version: 1 to FNPATH_VERSION_MAX digits once leading zeros are gone,
 * not 0. Its canonical digits into out. */
static bool version_parse(const char *s, size_t len, char *out) {
        if (len == 0 || strspn(s, "0123456789") < len)
                return false;
        while (len > 0 && *s == '0')
                s++, len--;
        if (len == 0 || len > FNPATH_VERSION_MAX)
                return false;
        memcpy(out, s, len);
        out[len] = 0;
        return true;
}

/* One segment of a /skills/ URL: SKILL[@VERSION], or a NAMESPACE. */
static void skill_segment_parse(const char *p, const char *end, FnSegment *seg) {
        size_t len = segment_len(p, end);
        const char *at = memchr(p, '@', len);
        size_t nl = at ? (size_t) (at - p) : len;
        *seg = (FnSegment) { .rest = p + len, .rest_len = (size_t) (end - (p + len)) };
        seg->ns_ok = !at && fnpath_name_ok(p, len);
        seg->valid = fnpath_skill_name_ok(p, nl) && (!at || version_parse(at + 1, len - nl - 1, seg->tag));
        if (!seg->valid)
                seg->tag[0] = 0;
        if (seg->valid || seg->ns_ok) {
                memcpy(seg->name, p, nl);
                seg->name[nl] = 0;
        }
}

static int skills_parse(const char *uri, const char *end, FnPath *p) {
        skill_segment_parse(uri + 8, end, &p->first);
        if (p->first.rest_len > 1) {
                skill_segment_parse(p->first.rest + 1, end, &p->second);
                p->has_second = p->first.ns_ok && p->second.valid;
        }
        if (!p->first.valid && !p->has_second)
                return -EINVAL;
        p->skill = true;
        return 0;
}

int fnpath_parse(const char *uri, FnPath *ret) {
        bool skill = fnpath_is_skill(uri);
        if (!skill && strncmp(uri, "/fn/", 4) != 0)
                return -ENOENT;
        FnPath p = { 0 };
        const char *q = strchr(uri, '?');
        const char *end = q ? q : uri + strlen(uri);
        p.query = q ? q + 1 : NULL;
        if (skill) {
                int r = skills_parse(uri, end, &p);
                if (r < 0)
                        return r;
                *ret = p;
                return 0;
        }
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

int fnpath_skill_function(const char *name, const char *version, char *buf, size_t size) {
        char v[FNPATH_VERSION_MAX + 1];
        size_t nl = strlen(name), vl = strlen(version);
        if (!fnpath_skill_name_ok(name, nl) || !version_parse(version, vl, v) || strcmp(v, version) != 0)
                return -EINVAL;
        if (6 + nl + 2 + vl + 1 > size)
                return -ENOBUFS;
        memcpy(buf, "skill-", 6);
        memcpy(buf + 6, name, nl);
        memcpy(buf + 6 + nl, "-v", 2);
        memcpy(buf + 8 + nl, version, vl + 1);
        return 0;
}

void fnpath_missing(const FnPath *p, bool namespaced, char *msg, size_t len) {
        const FnSegment *seg = namespaced ? &p->second : &p->first;
        const char *ns = namespaced ? p->first.name : "", *slash = namespaced ? "/" : "";
        if (!p->skill)
                snprintf(msg, len, "no function %s%s%s", ns, slash, seg->name);
        else if (seg->tag[0])
                snprintf(msg, len, "skill %s%s%s has no version %s", ns, slash, seg->name, seg->tag);
        else
                snprintf(msg, len, "skill %s%s%s has no promoted version", ns, slash, seg->name);
}
