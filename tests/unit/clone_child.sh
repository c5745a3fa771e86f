#!/bin/sh
# tests/unit/clone_child.sh BUILD: what the jail's child may call.
#
# runtime/jail_child.c runs in a raw clone of fnbox-runtime, a process with
# other threads. A lock any of them held at the clone stays held in the
# child for good: one call into malloc (or anything that allocates or locks)
# at the wrong moment and the jail hangs until its request times out. So
# the object may import only the functions below, each a system call's
# wrapper or a pure string or memory function. A new import fails this
# test: add it here only if it neither allocates nor takes a lock. glibc's
# set*id and setgroups wrappers may not: they signal every other thread
# and wait for one being created at the clone, which never comes
# (jail_child.c, enter_userns).
set -eu

BUILD=${1:-build}
OBJ=$BUILD/obj/runtime/jail_child.o
if [ ! -f "$OBJ" ]; then
        echo "clone_child: $OBJ is missing: make BUILD=$BUILD all" >&2
        exit 2
fi

ALLOWED='__errno_location __snprintf_chk __stack_chk_fail __strncat_chk _exit
cap_set_proc chdir chmod close dup2 execve fchmod fcntl fstat getrusage memchr
memfd_create mkdir mknod mmap mount move_mount open prctl recv recvmsg
sched_setscheduler send sethostname setrlimit
setsid sigaction sigemptyset sigprocmask strchr strncmp strncpy symlink syscall
umask umount2 unshare vfork waitpid write_all write_fd_str zygote_child_exec
zygote_child_fork zygote_child_init_with zygote_child_wait zygote_init_end
zygote_init_start zygote_so_end zygote_so_start'

passed=0 failed=0
for sym in $(nm -u "$OBJ" | awk '{ print $2 }'); do
        case " $(echo $ALLOWED) " in
        *" $sym "*) passed=$((passed + 1)) ;;
        *)
                echo "clone_child: FAIL: runtime/jail_child.c calls $sym, which the clone's child may not (see this file)"
                failed=$((failed + 1))
                ;;
        esac
done

# zygote_child.c runs in a clone of the runtime too (an exec, sh or node
# zygote and its children) and may allocate on its python3-only paths, so
# it is not held to the list above; but never a set*id wrapper
SETID='setgroups setuid setgid seteuid setegid setreuid setregid setresuid setresgid'
for sym in $(nm -u "$BUILD/obj/runtime/zygote_child.o" | awk '{ print $2 }'); do
        case " $SETID " in
        *" $sym "*)
                echo "clone_child: FAIL: runtime/zygote_child.c calls $sym (see jail_child.c, enter_userns)"
                failed=$((failed + 1))
                ;;
        *) passed=$((passed + 1)) ;;
        esac
done

# fnbox-zygote-init, exec'd once per python3 request, is built without a
# C library (runtime/zygote_init.c): glibc's start-up alone costs more CPU
# than the rest of it
INIT=$BUILD/gen/fnbox-zygote-init
if nm "$INIT" | grep -q __libc_start_main; then
        echo "clone_child: FAIL: $INIT is linked with the C library (see runtime/zygote_init.c)"
        failed=$((failed + 1))
else
        passed=$((passed + 1))
fi
echo "clone_child: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
