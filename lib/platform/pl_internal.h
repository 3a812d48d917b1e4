/* Shared between lib/platform/posix.c and the per-OS files; not public. */
#ifndef PAGELAB_PL_INTERNAL_H
#define PAGELAB_PL_INTERNAL_H

#include "config.h"
#include "pagelab/platform.h"

/* Set one capability entry. */
void pl_cap_set(struct pl_caps *c, enum pl_op op, enum pl_impl impl, const char *via, const char *how);
/* Entries every POSIX system fills the same way (mmap, mprotect, mincore ...),
 * with their start-up checks. */
void pl_posix_fill_caps(struct pl_caps *c);
/* Filled by the OS file: probes the running kernel for what it really accepts. */
void pl_os_fill_caps(struct pl_caps *c);

/* pl_reserve's arguments as its contract has them (platform.h), on every system:
 * EINVAL for a length that is not a whole number of pages or an alignment that
 * is not a power of two; *align raised to the page size. 0 or EINVAL. */
int pl_reserve_args(size_t len, size_t *align);

/* pl_reserve, pl_commit and pl_decommit by mmap and mprotect alone: an over-sized
 * PROT_NONE MAP_NORESERVE mapping trimmed to the alignment; mprotect to read-write;
 * a fresh PROT_NONE mapping over the range. */
int pl_posix_reserve(size_t len, size_t align, void **out);
int pl_posix_commit(void *p, size_t len);
int pl_posix_decommit(void *p, size_t len);
/* madvise returning 0 or errno; ENOSYS where the system has no madvise. */
int pl_posix_madvise(void *p, size_t len, int advice);
/* Replace [p, p+len) with fresh private anonymous memory of the given access (PL_PROT_*). */
int pl_posix_remap_fresh(void *p, size_t len, int prot);
/* Touch every page: read (write=false) or read-and-write-back (write=true). */
void pl_touch_pages(void *p, size_t len, bool write);
/* Pattern mapping by mapping anonymous memory and writing the pattern. */
int pl_map_pattern_memset(size_t len, unsigned char byte, void **out);
/* pl_map_pattern where memset is the only way: other modes are ENOTSUP. */
int pl_map_pattern_memset_only(size_t len, unsigned char byte, enum pl_pattern_mode mode, void **out,
			       enum pl_pattern_mode *used);
/* Map one scratch page, run madvise(advice) on it, unmap: 0 when the kernel accepts it. */
int pl_posix_probe_advice(int advice);
/* Map a page read-write private anonymous; the caller unmaps it. */
int pl_posix_scratch_page(void **out);
/* Translate PL_PROT_* to PROT_*. */
int pl_posix_prot(int prot);

/* ---- start-up checks of native claims (verify.c) ---- */
typedef int (*pl_range_op)(void *p, size_t len);
/* op on filled private anonymous pages leaves them reading zero. */
enum pl_verdict pl_check_reads_zero(pl_range_op op);
/* op on filled pages leaves each page reading its old bytes or zero. */
enum pl_verdict pl_check_old_or_zero(pl_range_op op);
/* op on fresh pages makes every one resident (not checked when residency cannot tell). */
enum pl_verdict pl_check_resident(pl_range_op op);
/* After op, an access faults; after undo (if given), the page is accessible and reads zero.
 * Run where a fault cannot hurt the caller. */
enum pl_verdict pl_check_faults(pl_range_op op, pl_range_op undo);
/* Per OS: run op on [p, p+len) and touch it where a fault is caught (a child process on POSIX). */
enum pl_verdict pl_os_check_faults(void *p, size_t len, pl_range_op op, pl_range_op undo);
/* Record a check's verdict; claimed says what the native call did when it was not honoured. */
void pl_cap_verdict(struct pl_caps *c, enum pl_op op, enum pl_verdict v, const char *claimed);

#endif
