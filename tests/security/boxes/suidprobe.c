/* tests/security/boxes/suidprobe.c: installed by the runner as a setuid-root
 * (and setgid-root) file inside the box's code folder; prints the ids it
 * actually runs with. */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

int main(void) {
        uid_t r, e, s;
        gid_t gr, ge, gs;
        getresuid(&r, &e, &s);
        getresgid(&gr, &ge, &gs);
        printf("suidprobe: uid=%u euid=%u suid=%u gid=%u egid=%u\n", r, e, s, gr, ge);
        return 0;
}
