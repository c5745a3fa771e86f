/* runtime/codecache.h: the node's code, one folder per artifact digest
 * (STATE_DIR/code/HEX), fetched from the controller, checked against its
 * digest and unpacked once (lib/artifact.c). The fetch is blocking: the
 * node runs it on libuv's thread pool. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ctlclient_http.h"

#define CODECACHE_ARTIFACT_MAX (64ULL << 20)   /* the controller's limit */
#define CODECACHE_FETCH_MS     120000

/* Create STATE_DIR (0711) and STATE_DIR/code (0711), and remove what an
 * interrupted unpack left (.tmp-* folders). */
int codecache_init(const char *state_dir);
/* STATE_DIR/code/HEX for "sha256:HEX". */
int codecache_dir(const char *state_dir, const char *digest, char *buf, size_t len);
bool codecache_has(const char *state_dir, const char *digest);
/* GET /v1/artifacts/DIGEST, check the bytes' digest, unpack into a
 * temporary folder and rename it into place. 0, or a negative errno with
 * a one-line why. */
int codecache_fetch(const HttpTarget *t, const char *token, const char *state_dir, const char *digest, int cancel_fd,
                    char *why, size_t why_len);
/* Remove a folder tree without following symlinks (at most 64 deep). */
void codecache_remove_tree(int parent_fd, const char *name);
