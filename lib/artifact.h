/* lib/artifact.h: a function's code as one content-addressed artifact.
 * A file or a folder is packed deterministically into a POSIX ustar archive
 * (entries sorted by path, mtime 0, uid/gid 0, modes normalised to 0644 or
 * 0755, directories 0755), so the same tree always gives the same bytes and
 * the same SHA-256 digest. Unpacking is hardened: no absolute paths, no "..",
 * no links out of the tree, no device nodes, and size and entry limits. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ARTIFACT_DIGEST_LEN     71      /* "sha256:" + 64 hex + NUL */
#define ARTIFACT_ENTRIES_MAX    10000
#define ARTIFACT_PATH_MAX       255

/* Pack path (a file: one entry named by its basename; a folder: its
 * contents, recursively) into a malloc()ed buffer. Refuses (-E2BIG) a pack
 * over max_bytes or ARTIFACT_ENTRIES_MAX entries, and (-ELOOP) a symlink
 * that points out of the folder. On error *ret_why (may be NULL) gets a short
 * static-or-malloced reason; see artifact.c. */
int artifact_pack(const char *path, size_t max_bytes, void **ret_data, size_t *ret_len,
                  char ret_digest[ARTIFACT_DIGEST_LEN]);

/* "sha256:HEX" of data. */
void artifact_digest(const void *data, size_t len, char ret_digest[ARTIFACT_DIGEST_LEN]);
/* True when s has the exact form "sha256:" followed by 64 lowercase hex digits. */
int artifact_digest_valid(const char *s);

/* Unpack into the directory dir_fd (which should be empty). -EINVAL on a
 * malformed or hostile archive; nothing outside dir_fd is ever touched. */
int artifact_unpack(const void *data, size_t len, int dir_fd);

/* sha256 hex (64 characters + NUL) of data: shared with tokens and revisions. */
void sha256_hex(const void *data, size_t len, char ret_hex[65]);
