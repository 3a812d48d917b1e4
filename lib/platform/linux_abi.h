/* Linux ABI values that older headers (e.g. Debian 12's 6.1 uapi) lack. They
 * are fixed by the kernel's uapi; a running kernel that does not know one
 * answers EINVAL, which the capability probe records. */
#ifndef PAGELAB_LINUX_ABI_H
#define PAGELAB_LINUX_ABI_H

#include <stdint.h>
#include <sys/ioctl.h>

/* include/uapi/asm-generic/mman-common.h */
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103 /* Linux 6.13 */
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08 /* Linux 6.11, a mapping type like MAP_PRIVATE */
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000 /* Linux 4.17 */
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux 5.7 */
#endif

/* userfaultfd(2) flag, Linux 5.11 (include/uapi/linux/userfaultfd.h). */
#define PL_UFFD_USER_MODE_ONLY 1

/* mseal(2), Linux 6.10: the same number on every architecture. */
#ifndef PL_NR_mseal
#define PL_NR_mseal 462
#endif

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

/* Linux-only observations used by the conformance probes. */
#include <stdint.h>
#include <stddef.h>
/* The pagemap entry of the page at p; 0 or errno. */
int pl_linux_pagemap_entry(const void *p, uint64_t *entry);
/* PAGEMAP_SCAN categories of the page at p (PL_PAGE_IS_*); ENOTTY/EINVAL when unsupported. */
int pl_linux_page_categories(const void *p, uint64_t *categories);
/* The PL_PAGE_IS_* bits this kernel's PAGEMAP_SCAN accepts (known after a first call). */
uint64_t pl_linux_scan_categories(void);
#endif
