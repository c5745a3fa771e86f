/* runtime/session_fs.h: the host side of one session run's files (docs/jail.md,
 * "Session files"): BASE/ID/input, the unpacked input archive that the jail
 * binds read-only at /input, and BASE/ID/output, a size-capped tmpfs owned
 * by the box that the jail binds read-write at /output and that is packed
 * into an archive after the run. Everything here is synchronous (callers
 * run it on a libuv worker thread), needs root (it mounts), and never logs:
 * errors are negative errno values with a one-line why. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SESSION_FS_OUTPUT_MAX    (32u << 20)   /* bytes of /output (tmpfs size) */
#define SESSION_FS_OUTPUT_INODES 1024           /* inodes of /output (tmpfs nr_inodes) */
/* The most an output archive can take: a full /output (its files hold at
 * most SESSION_FS_OUTPUT_MAX bytes) plus a header and at most a block of
 * padding per inode, plus the end blocks. Only sparse files go past it. */
#define SESSION_FS_PACK_MAX      (SESSION_FS_OUTPUT_MAX + SESSION_FS_OUTPUT_INODES * 1024u + 1024u)
#define SESSION_FS_INPUT_MAX     (32u << 20)   /* bytes of an input archive */
#define SESSION_FS_INPUT_ENTRIES 1000           /* entries of an input archive */
#define SESSION_FS_ID_MAX        64             /* a session id: [A-Za-z0-9._-], not dot-led */

typedef struct SessionFs {
        char *base;             /* BASE/ID */
        char *input, *output;   /* BASE/ID/input, BASE/ID/output */
        bool output_mounted;    /* the tmpfs is on output */
} SessionFs;

/* Make BASE/ID/{input,output} (BASE, an absolute path whose parent exists,
 * is created 0711 if missing; it must be root's and not writable by
 * others; a leftover BASE/ID of a runtime that died is removed first),
 * unpack the input archive (len 0: an empty /input; at most
 * SESSION_FS_INPUT_MAX bytes and SESSION_FS_INPUT_ENTRIES entries) into
 * input (files 0644 or 0755, folders 0755, root's: the box reads them),
 * and mount a tmpfs on output (nosuid, nodev, noexec,
 * size=SESSION_FS_OUTPUT_MAX, nr_inodes=SESSION_FS_OUTPUT_INODES, mode
 * 0700, owned by box_uid:box_gid). -EINVAL with why for a bad id or
 * archive ("input: entry 3 (...): refused: ..."), -E2BIG for one over the
 * limits. On failure nothing is left and *ret is zeroed. */
int session_fs_make(const char *base, const char *id, const void *input, size_t input_len, uid_t box_uid,
                    gid_t box_gid, SessionFs *ret, char *why, size_t why_len);

/* Pack what the box left in output (artifact_pack: files, folders and
 * symlinks that stay inside; at most SESSION_FS_PACK_MAX bytes) into a
 * malloc()ed archive. Nothing is ever followed out of the folder. A
 * symlink leading outside (-ELOOP), a fifo, socket or device (-EINVAL), a
 * path over 255 bytes (-ENAMETOOLONG), more than SESSION_FS_PACK_MAX bytes
 * (-E2BIG; only sparse files get there) give why naming the entry
 * ("output: x/shadow is a symlink that leads outside /output"). Call it
 * once the jail is gone (JAIL_EVENT_END): a box's leftover processes that
 * still write can make a file shrink while it is read (-EIO). */
int session_fs_pack_output(SessionFs *f, void **ret, size_t *ret_len, char *why, size_t why_len);

/* Unmount output (MNT_DETACH) and remove BASE/ID and everything in it,
 * never following a symlink or crossing into another mount. Safe on a
 * zeroed, partly made or already removed SessionFs, and twice. */
void session_fs_remove(SessionFs *f);
