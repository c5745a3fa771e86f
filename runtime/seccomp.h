/* runtime/seccomp.h: the jail's system call filter, compiled once with
 * libseccomp into a BPF program that a jail child can load with one prctl()
 * and no allocation. */
#pragma once

#include <linux/filter.h>

/* The filter as compiled at build time by seccomp_gen (build/gen/). */
extern const struct sock_filter syscall_filter_bpf[];
extern const unsigned short syscall_filter_bpf_len;

/* Build the filter; ret->filter is malloc()ed. */
int syscall_filter_build(struct sock_fprog *ret);
void syscall_filter_free(struct sock_fprog *p);
