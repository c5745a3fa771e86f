/* runtime/result_json.h: a JailResult as the JSON object documented in
 * docs/jail.md. Output that is not valid UTF-8 is base64-encoded and flagged
 * with "stdout_base64": true (or "stderr_base64"). */
#pragma once

#include <jansson.h>

#include "jail.h"

json_t *jail_result_to_json(const JailResult *r);
