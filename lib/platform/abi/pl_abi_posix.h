/* The values every POSIX system's pl_abi.h falls back on: each constant the
 * suites name and this system's headers lack is defined here as a value the
 * system refuses, so "missing" is what the running system answers (the
 * feature probes), never an #ifdef in a probe. Included by the pl_abi.h of
 * generic, freebsd and darwin after their own numbers; every definition is
 * guarded, so a system's own value always wins. */
#ifndef PAGELAB_PL_ABI_POSIX_H
#define PAGELAB_PL_ABI_POSIX_H

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON /* the BSD spelling */
#endif

/* An mmap flag this system's headers lack. An unknown flag is not refused
 * everywhere (Linux ignores them), so no number can stand in for it: the
 * feature probes see this value and report the flag missing. */
#define PL_ABSENT_FLAG 0x40000000

/* madvise advice these headers lack: numbers no system defines (refused as unknown). */
#ifndef MADV_FREE
#define MADV_FREE 0x7b01
#endif
#ifndef MADV_COLD
#define MADV_COLD 0x7b02
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 0x7b03
#endif
#ifndef MADV_REMOVE
#define MADV_REMOVE 0x7b04
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 0x7b05
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 0x7b06
#endif
#ifndef MADV_DONTFORK
#define MADV_DONTFORK 0x7b07
#endif
#ifndef MADV_DOFORK
#define MADV_DOFORK 0x7b08
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 0x7b09
#endif
#ifndef MADV_KEEPONFORK
#define MADV_KEEPONFORK 0x7b0a
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 0x7b0b
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 0x7b0c
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 0x7b0d
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 0x7b0e
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 0x7b0f
#endif
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 0x7b10
#endif
#ifndef MADV_UNMERGEABLE
#define MADV_UNMERGEABLE 0x7b11
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 0x7b12
#endif
#ifndef MADV_DONTDUMP
#define MADV_DONTDUMP 0x7b13
#endif
#ifndef MADV_DODUMP
#define MADV_DODUMP 0x7b14
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON 0x7b15
#endif
#ifndef MADV_FREE_REUSABLE
#define MADV_FREE_REUSABLE 0x7b16
#endif
#ifndef MADV_FREE_REUSE
#define MADV_FREE_REUSE 0x7b17
#endif
#ifndef MADV_DONTNEED
#define MADV_DONTNEED 0x7b18
#endif
#ifndef MADV_WILLNEED
#define MADV_WILLNEED 0x7b19
#endif

/* mmap flags and types. */
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE PL_ABSENT_FLAG
#endif
#ifndef MAP_POPULATE
#define MAP_POPULATE PL_ABSENT_FLAG
#endif
#ifndef MAP_GROWSDOWN
#define MAP_GROWSDOWN PL_ABSENT_FLAG
#endif
#ifndef MAP_LOCKED
#define MAP_LOCKED PL_ABSENT_FLAG
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE PL_ABSENT_FLAG
#endif
#ifndef MAP_32BIT
#define MAP_32BIT PL_ABSENT_FLAG
#endif
#ifndef MAP_HUGETLB
#define MAP_HUGETLB PL_ABSENT_FLAG
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE PL_ABSENT_FLAG
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE PL_ABSENT_FLAG
#endif

/* mremap, mlock2 and mlockall flags: the calls answer ENOSYS where the system lacks them
 * (pc_mremap, pc_mlock2); a flag the headers lack is an unknown bit, refused. */
#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT PL_ABSENT_FLAG
#endif

/* memfd and its seals: pc_memfd answers ENOSYS without memfd_create; fcntl refuses command -1. */
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 2
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS (-1)
#endif
#ifndef F_GET_SEALS
#define F_GET_SEALS (-1)
#endif
#ifndef F_SEAL_WRITE
#define F_SEAL_WRITE 8
#endif

/* Linux's kernel-internal ENOTSUPP has no counterpart elsewhere: ENOTSUP stands in. */
#define PL_ENOTSUPP ENOTSUP

/* prctl options (pc_prctl answers ENOSYS without prctl). */
#define PL_PR_SET_MEMORY_MERGE 67
#define PL_PR_GET_MEMORY_MERGE 68

#endif
