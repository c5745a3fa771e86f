/* activator/fnpath.h: the invocation URL, taken apart. `/fn/NAME[/SUB]`,
 * `/fn/NAMESPACE/NAME[/SUB]` and `/fn/NAME@TAG[/SUB]` look alike until the
 * route table says which of the first two a URL is, so the parser keeps
 * both readings and route_lookup() picks one. `/skills/SKILL[@VERSION]`
 * and `/skills/NAMESPACE/SKILL[@VERSION]` (with /SUB) are taken apart the
 * same way; the table turns a skill into its function `skill-SKILL-vN`.
 * Pure: no I/O, no allocation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define FNPATH_NAME_MAX 63        /* a DNS label */
#define FNPATH_SKILL_MAX 40       /* a skill's name: skill-NAME-vVERSION is a name */
#define FNPATH_VERSION_MAX 15     /* digits of a skill's version (no leading zero) */
#define FNPATH_URI_MAX  8192      /* the request line's URI (414 beyond) */

typedef struct FnSegment {
        char name[FNPATH_NAME_MAX + 1];
        char tag[FNPATH_NAME_MAX + 1];   /* "" without @TAG; a skill: the version, digits without leading zeros */
        const char *rest;                /* what follows the segment: "" or "/..." (no query) */
        size_t rest_len;
        bool valid;                      /* a well-formed name (and tag); a skill: SKILL[@VERSION] */
        bool ns_ok;                      /* a well-formed namespace (a name without @) */
} FnSegment;

typedef struct FnPath {
        FnSegment first;                 /* NAME, or NAMESPACE */
        FnSegment second;                /* NAME after NAMESPACE, when there is one */
        bool has_second;
        bool skill;                      /* /skills/...: the names are skills', the tags versions */
        const char *query;               /* after '?', or NULL */
} FnPath;

/* A name: 1 to 63 of [a-z0-9-], starting and ending with a letter or digit. */
bool fnpath_name_ok(const char *s, size_t len);
/* A skill's name: a name of 1 to 40 characters. */
bool fnpath_skill_name_ok(const char *s, size_t len);

/* Whether a raw request URI is under /skills/ (for the 404's wording). */
bool fnpath_is_skill(const char *uri);

/* Parse a raw request URI (as sent, still percent-encoded). 0, or
 * -ENOENT when it is not under /fn/ or /skills/, -EINVAL when the first
 * segment is not a valid NAME[@TAG] (or NAMESPACE); under /skills/: when
 * it is neither SKILL[@VERSION] nor a NAMESPACE followed by one. */
int fnpath_parse(const char *uri, FnPath *ret);

/* The function of a skill's version: "skill-NAME-vVERSION" into buf.
 * -EINVAL for a bad name or version, -ENOBUFS when it does not fit. */
int fnpath_skill_function(const char *name, const char *version, char *buf, size_t size);

/* What was not found, as a sentence: "no function NS/NAME", "skill NAME
 * has no promoted version", "skill NS/NAME has no version 3". namespaced:
 * the NAMESPACE/NAME reading (p->has_second), else NAME in default. */
void fnpath_missing(const FnPath *p, bool namespaced, char *msg, size_t len);
