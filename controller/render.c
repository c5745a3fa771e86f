/* controller/render.c: the JSON forms of stored functions, traffic splits
 * and revisions that docs/api.md shows. A latestRevision traffic entry also
 * names the revision it resolves to now. */
#include <stdbool.h>

#include "controller/api.h"

json_t *traffic_entry_json(const char *revision, unsigned percent, const char *tag) {
        json_t *e = revision ? json_pack("{s:s}", "revision", revision) :
                               json_pack("{s:b}", "latestRevision", 1);
        if (e && json_object_set_new(e, "percent", json_integer(percent)) < 0)
                e = (json_decref(e), NULL);
        if (e && tag && json_object_set_new(e, "tag", json_string(tag)) < 0)
                e = (json_decref(e), NULL);
        return e;
}

/* One traffic entry in a fixed key order: latestRevision, revision, percent, tag. */
static json_t *render_traffic_entry(const json_t *e, const StoreFunction *f) {
        char name[API_REVISION_NAME_MAX];
        json_t *out = json_object();
        if (!out)
                return NULL;
        bool latest = json_is_true(json_object_get(e, "latestRevision"));
        const json_t *rev = json_object_get(e, "revision");
        const json_t *tag = json_object_get(e, "tag");
        if (latest) {
                json_object_set_new(out, "latestRevision", json_true());
                if (f->latest_revision > 0)
                        json_object_set_new(out, "revision", json_string(api_revision_name(
                                f->name, f->latest_revision, name, sizeof name)));
        } else if (json_is_string(rev))
                json_object_set(out, "revision", (json_t *) rev);
        json_object_set_new(out, "percent", json_integer(json_integer_value(json_object_get(e, "percent"))));
        if (json_is_string(tag))
                json_object_set(out, "tag", (json_t *) tag);
        return out;
}

json_t *render_traffic(const StoreFunction *f, const char *traffic_json) {
        _cleanup_json_ json_t *in = api_json_text(traffic_json);
        json_t *out = json_array();
        size_t i;
        json_t *e;
        if (!out)
                return NULL;
        json_array_foreach(in, i, e)
                if (json_is_object(e))
                        json_array_append_new(out, render_traffic_entry(e, f));
        return out;
}

json_t *render_function(const StoreFunction *f) {
        char latest[API_REVISION_NAME_MAX];
        json_t *latest_j = f->latest_revision > 0 ?
                json_string(api_revision_name(f->name, f->latest_revision, latest, sizeof latest)) :
                json_null();
        return json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}",
                         "name", f->name,
                         "namespace", f->namespace_,
                         "resourceVersion", (json_int_t) f->resource_version,
                         "latestRevision", latest_j,
                         "spec", api_json_text(f->spec_json),
                         "traffic", render_traffic(f, f->traffic_json),
                         "createdAt", api_time_json(f->created_ms),
                         "updatedAt", api_time_json(f->updated_ms));
}

json_t *render_revision(const StoreRevision *r) {
        char name[API_REVISION_NAME_MAX];
        return json_pack("{s:s, s:s, s:s, s:I, s:s?, s:s?, s:o, s:o}",
                         "name", api_revision_name(r->function, r->number, name, sizeof name),
                         "function", r->function,
                         "namespace", r->namespace_,
                         "number", (json_int_t) r->number,
                         "codeDigest", r->code_digest,
                         "specDigest", r->spec_digest,
                         "spec", api_json_text(r->spec_json),
                         "createdAt", api_time_json(r->created_ms));
}
