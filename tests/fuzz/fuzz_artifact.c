/* tests/fuzz/fuzz_artifact.c: libFuzzer target for artifact_unpack. Each
 * input is unpacked into an empty folder "box" inside a private parent; the
 * parent must still hold nothing but "box" afterwards, whatever the input.
 * The box is emptied between inputs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/artifact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char parent[256];

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) type;
        if (ftw->level > 0 && remove(path) < 0)
                abort();
        return 0;
}

/* Only "box" in the parent, and the box emptied. */
static void check_and_clean(const char *box) {
        DIR *d = opendir(parent);
        struct dirent *de;
        if (!d)
                abort();
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "box"))
                        abort(); /* something escaped the box */
        closedir(d);
        if (nftw(box, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
                abort();
}

static void remove_parent(void) {
        char box[sizeof parent + 8];
        snprintf(box, sizeof box, "%s/box", parent);
        nftw(box, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        rmdir(box);
        rmdir(parent);
}

/* The private parent, once per process: under $TMPDIR (run.sh points it
 * into its own work folder) or /tmp, removed at exit. */
static void make_parent(void) {
        const char *tmp = getenv("TMPDIR");
        char box[sizeof parent + 8];
        if (!tmp || !*tmp || strlen(tmp) > 200)
                tmp = "/tmp";
        snprintf(parent, sizeof parent, "%s/fnbox-fuzz-artifact-XXXXXX", tmp);
        if (!mkdtemp(parent))
                abort();
        snprintf(box, sizeof box, "%s/box", parent);
        if (mkdir(box, 0755) < 0)
                abort();
        atexit(remove_parent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char box[sizeof parent + 8];
        if (!parent[0])
                make_parent();
        snprintf(box, sizeof box, "%s/box", parent);
        int fd = open(box, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                abort();
        artifact_unpack(data, size, fd);
        close(fd);
        check_and_clean(box);
        return 0;
}
