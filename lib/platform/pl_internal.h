/* Shared between lib/platform/posix.c and the per-OS files; not public. */
#ifndef PAGELAB_PL_INTERNAL_H
#define PAGELAB_PL_INTERNAL_H

#include "config.h"
#include "pagelab/platform.h"

/* Set one capability entry. */
void pl_cap_set(struct pl_caps *c, enum pl_op op, enum pl_impl impl, const char *via, const char *how);
/* Entries every POSIX system fills the same way (mmap, mprotect, mincore ...). */
void pl_posix_fill_caps(struct pl_caps *c);
/* Filled by the OS file: probes the running kernel for what it really accepts. */
void pl_os_fill_caps(struct pl_caps *c);

/* madvise returning 0 or errno; ENOSYS where the system has no madvise. */
int pl_posix_madvise(void *p, size_t len, int advice);
/* Replace [p, p+len) with fresh private anonymous memory of the given access (PL_PROT_*). */
int pl_posix_remap_fresh(void *p, size_t len, int prot);
/* Touch every page: read (write=false) or read-and-write-back (write=true). */
void pl_posix_touch(void *p, size_t len, bool write);
/* Pattern mapping by mapping anonymous memory and writing the pattern. */
int pl_posix_map_pattern_memset(size_t len, unsigned char byte, void **out);
/* pl_map_pattern where memset is the only way: other modes are ENOTSUP. */
int pl_posix_map_pattern_memset_only(size_t len, unsigned char byte, enum pl_pattern_mode mode, void **out,
				     enum pl_pattern_mode *used);
/* Map one scratch page, run madvise(advice) on it, unmap: 0 when the kernel accepts it. */
int pl_posix_probe_advice(int advice);
/* Map a page read-write private anonymous; the caller unmaps it. */
int pl_posix_scratch_page(void **out);
/* Translate PL_PROT_* to PROT_*. */
int pl_posix_prot(int prot);

#endif
