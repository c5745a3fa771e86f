/* runtime/template.h: the node's python3 template zygotes (zygote.h,
 * "Templates"). n are kept started and ready ahead of any revision; a
 * python3 fresh instance that starts adopts it instead of building its
 * own zygote, and its first request waits for neither the jail nor the
 * interpreter. A new template starts shortly after each adoption (not at
 * once: the first request comes first). The template's code and run
 * folders are empty ones under DIR/template. */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "zygote.h"

typedef struct Templates Templates;

#define TEMPLATES_MAX 8
#define TEMPLATES_DEFAULT 2   /* cold starts that come close together (one takes ~150 ms to replace) */
int templates_new(uv_loop_t *loop, const char *dir, unsigned n, const char *cgroup_parent, uid_t box_uid,
                  Templates **ret);
/* The ready template becomes c's zygote (zygote_adopt): 0 and *ret;
 * -EAGAIN when none is ready or c does not fit one (zygote_template_fits);
 * another -errno when the adoption failed (the template is gone). */
int templates_adopt(Templates *t, const JailConfig *c, zygote_event_fn fn, void *userdata, Zygote **ret);
/* How many templates were adopted. */
uint64_t templates_adopted(const Templates *t);
void templates_free(Templates *t);
