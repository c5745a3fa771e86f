/* lib/artifact.h: a function's code as one content-addressed artifact.
 * A file or a folder is packed deterministically into a POSIX ustar archive
 * (entries sorted by path, mtime 0, uid/gid 0, modes normalised to 0644 or
 * 0755, directories 0755), so the same tree always gives the same bytes and
 * the same SHA-256 digest. Unpacking is hardened: no absolute paths, no "..",
 * no links out of the tree, no device nodes, and size and entry limits. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARTIFACT_DIGEST_LEN     72      /* "sha256:" (7) + 64 hex + NUL */
#define ARTIFACT_ENTRIES_MAX    10000
#define ARTIFACT_PATH_MAX       255

/* Pack path (a file: one entry named by its basename; a folder: its
 * contents, recursively, without the folder's own name) into a malloc()ed
 * buffer, and put its digest in ret_digest (may be NULL). Inside a folder,
 * ".git" and "__pycache__" are left out. Symlinks are stored as symlinks
 * when they stay inside the folder (relative, leading ".." only, never
 * above the folder), else -ELOOP. Other errors: -E2BIG (over max_bytes or
 * ARTIFACT_ENTRIES_MAX entries; checked before reading a file's content),
 * -ENAMETOOLONG (a path over ARTIFACT_PATH_MAX or that ustar cannot split),
 * -EINVAL (a device, socket or fifo), -EIO (a file shrank while being read),
 * or the -errno of open/read. */
int artifact_pack(const char *path, size_t max_bytes, void **ret_data, size_t *ret_len,
                  char ret_digest[ARTIFACT_DIGEST_LEN]);

/* Pack one file held in memory, named name (no '/'), as artifact_pack packs
 * a file: the same bytes for the same name, content and exec bit. -EINVAL
 * for a bad name, -E2BIG over max_bytes. */
int artifact_pack_file(const char *name, const void *content, size_t size, bool exec, size_t max_bytes,
                       void **ret_data, size_t *ret_len, char ret_digest[ARTIFACT_DIGEST_LEN]);

/* "sha256:HEX" of data. */
void artifact_digest(const void *data, size_t len, char ret_digest[ARTIFACT_DIGEST_LEN]);
/* True when s has the exact form "sha256:" followed by 64 lowercase hex digits. */
int artifact_digest_valid(const char *s);

/* Unpack into the directory dir_fd (which should be empty). -EINVAL on a
 * malformed or hostile archive (bad checksum or magic, truncation, absolute
 * paths, "." or ".." components, a path through a symlink, a duplicate file,
 * hard links, devices, fifos, pax/GNU extensions, a symlink that could
 * resolve outside), -E2BIG past ARTIFACT_ENTRIES_MAX entries, or the -errno
 * of a file-system call. Nothing outside dir_fd is ever touched, but on
 * error what was unpacked so far stays: the caller removes the folder.
 * Files get mode 0755 if any execute bit was set, else 0644; folders 0755. */
int artifact_unpack(const void *data, size_t len, int dir_fd);

/* Check an archive as artifact_unpack does, without writing anything
 * (duplicates are the caller's to find): fn gets each entry's path (a
 * folder's without its trailing '/'), type ('0' file, '5' folder, '2'
 * symlink), content (inside data) and size, in order; a negative return
 * stops the walk and is returned. The same errors as artifact_unpack
 * otherwise. */
typedef int (*artifact_list_fn)(const char *path, char type, const void *content, size_t size, void *userdata);
int artifact_list(const void *data, size_t len, artifact_list_fn fn, void *userdata);

/* sha256 hex (64 characters + NUL) of data: shared with tokens and revisions.
 * Both digest functions write an empty string if libcrypto fails, so a
 * failure never yields a digest that matches anything. */
void sha256_hex(const void *data, size_t len, char ret_hex[65]);

/* Pack files held in memory (names without '/', distinct, sorted by the
 * function) into one deterministic ustar archive as artifact_pack_file does
 * for one (mode 0644 each; n == 0 gives the two end blocks). -EINVAL for a
 * bad name (also one over 100 bytes) or a duplicate, -E2BIG over max_bytes
 * or ARTIFACT_ENTRIES_MAX files. */
int artifact_pack_files(const char *const *names, const void *const *contents, const size_t *sizes, size_t n,
                        size_t max_bytes, void **ret_data, size_t *ret_len, char ret_digest[ARTIFACT_DIGEST_LEN]);
