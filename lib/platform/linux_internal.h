/* Shared by the Linux page-layer files (linux*.c); not public. */
#ifndef PAGELAB_LINUX_INTERNAL_H
#define PAGELAB_LINUX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "pl_abi.h"

/* userfaultfd(2) flag, Linux 5.11 (include/uapi/linux/userfaultfd.h). */
#define PL_UFFD_USER_MODE_ONLY 1
/* A userfaultfd opened with flags: a full one (root, vm.unprivileged_userfaultfd, /dev/userfaultfd) when
 * allowed, else one for user-mode faults only (*user_only); the descriptor, or minus errno. */
int pl_linux_open_uffd(int flags, bool *user_only);

/* PAGEMAP_SCAN ioctl on /proc/PID/pagemap, Linux 6.7 (include/uapi/linux/fs.h). */
#define PL_PAGE_IS_WPALLOWED (1ULL << 0)
#define PL_PAGE_IS_WRITTEN (1ULL << 1)
#define PL_PAGE_IS_FILE (1ULL << 2)
#define PL_PAGE_IS_PRESENT (1ULL << 3)
#define PL_PAGE_IS_SWAPPED (1ULL << 4)
#define PL_PAGE_IS_PFNZERO (1ULL << 5)
#define PL_PAGE_IS_HUGE (1ULL << 6)
#define PL_PAGE_IS_SOFT_DIRTY (1ULL << 7)
#define PL_PAGE_IS_GUARD (1ULL << 8) /* Linux 6.14 */

struct pl_page_region {
	uint64_t start;
	uint64_t end;
	uint64_t categories;
};

struct pl_pm_scan_arg {
	uint64_t size;
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end;
	uint64_t vec;
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};
#define PL_PAGEMAP_SCAN _IOWR('f', 16, struct pl_pm_scan_arg)

/* /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PL_PM_PFN_MASK ((1ULL << 55) - 1)
#define PL_PM_SOFT_DIRTY (1ULL << 55)
#define PL_PM_EXCLUSIVE (1ULL << 56)
#define PL_PM_FILE_OR_SHARED (1ULL << 61)
#define PL_PM_SWAPPED (1ULL << 62)
#define PL_PM_PRESENT (1ULL << 63)

/* Read a small /proc or /sys file into buf, trailing newline removed; 0 or errno. */
int pl_linux_read(const char *path, char *buf, size_t size);
/* The pagemap entry of the page at p; 0 or errno. */
int pl_linux_pagemap_entry(const void *p, uint64_t *entry);
/* PAGEMAP_SCAN over [p, p+len): the number of pages having any of `mask`; 0 or errno. */
int pl_linux_scan_count(const void *p, size_t len, uint64_t mask, size_t *pages);
/* Decided once by the capability probe: PAGEMAP_SCAN works (read while the set is filled), */
bool pl_linux_have_pagemap_scan(void);
/* and which categories it takes (0 when it does not work; fills the set first). */
uint64_t pl_linux_scan_categories(void);
/* Decided by the capability probe: /proc/self/pagemap describes this process (read while the set is filled). */
bool pl_linux_pagemap_is_ours(void);
/* Called once while the capability set is filled. */
void pl_linux_probe_pagemap_scan(void);
/* Does this kernel keep soft-dirty bits (CONFIG_MEM_SOFT_DIRTY)? Decided once, by writing a fresh page. */
bool pl_linux_soft_dirty_tracked(void);

#endif
