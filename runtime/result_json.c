/* runtime/result_json.c: serialising a jail's result. */
#include "result_json.h"

#include "lib/base64.h"
#include "lib/util.h"

/* Set KEY to the output as a string, or as base64 with KEY_base64 = true. */
static int set_output(json_t *o, const char *key, const JailOutput *out) {
        char flag[32];
        snprintf(flag, sizeof flag, "%s_base64", key);
        json_t *s = json_stringn(out->data ? out->data : "", out->len);
        bool b64 = false;
        if (!s) {
                _cleanup_free_ char *enc = base64_encode(out->data, out->len);
                if (!enc)
                        return -ENOMEM;
                s = json_string(enc);
                b64 = true;
        }
        if (!s || json_object_set_new(o, key, s) < 0)
                return -ENOMEM;
        if (json_object_set_new(o, flag, json_boolean(b64)) < 0)
                return -ENOMEM;
        return 0;
}

json_t *jail_result_to_json(const JailResult *r) {
        json_t *o = json_pack("{s:s, s:o, s:o, s:f, s:f, s:I, s:b, s:b}",
                              "status", jail_status_to_string(r->status),
                              "exit_code", r->status == JAIL_EXITED ? json_integer(r->exit_code) : json_null(),
                              "signal", r->signal ? json_integer(r->signal) : json_null(),
                              "wall_ms", r->wall_ms, "cpu_ms", r->cpu_ms,
                              "max_rss_kb", (json_int_t) r->max_rss_kb,
                              "stdout_truncated", r->out.truncated,
                              "stderr_truncated", r->err.truncated);
        if (!o)
                return NULL;
        if (set_output(o, "stdout", &r->out) < 0 || set_output(o, "stderr", &r->err) < 0 ||
            (r->error[0] && json_object_set_new(o, "error", json_string(r->error)) < 0)) {
                json_decref(o);
                return NULL;
        }
        return o;
}
