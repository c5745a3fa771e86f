/* runtime/seccomp.h: the jail's system call filter, compiled once with
 * libseccomp into a BPF program that a jail child can load with one prctl()
 * and no allocation. */
#pragma once

#include <linux/filter.h>

/* Build the filter; ret->filter is malloc()ed. */
int syscall_filter_build(struct sock_fprog *ret);
void syscall_filter_free(struct sock_fprog *p);
