/* Linux ABI values that older headers (e.g. Debian 12's 6.1 uapi, musl) lack.
 * They are fixed by the kernel's uapi; a running kernel that does not know
 * one answers EINVAL, which the probes and the capability check record.
 * The Makefile puts this directory on the include path for Linux builds;
 * other systems get their own pl_abi.h (abi/<platform>/). */
#ifndef PAGELAB_PL_ABI_H
#define PAGELAB_PL_ABI_H

#include <fcntl.h>
#include <sys/mman.h>

/* include/uapi/asm-generic/mman-common.h */
#ifndef MADV_FREE
#define MADV_FREE 8 /* Linux 4.5 */
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18 /* Linux 4.14 */
#endif
#ifndef MADV_KEEPONFORK
#define MADV_KEEPONFORK 19
#endif
#ifndef MADV_COLD
#define MADV_COLD 20 /* Linux 5.4 */
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24 /* Linux 5.18 */
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
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26 /* include/uapi/asm-generic/hugetlb_encode.h: log2 of a hugetlb size above bit 26 */
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux 5.7 */
#endif

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03 /* Linux 4.15 */
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01 /* Linux 4.4 */
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
/* Darwin's reusable/reuse advice: numbers Linux does not define (refused as unknown advice). */
#ifndef MADV_FREE_REUSABLE
#define MADV_FREE_REUSABLE 0x7b16
#endif
#ifndef MADV_FREE_REUSE
#define MADV_FREE_REUSE 0x7b17
#endif
/* include/uapi/linux/memfd.h and fcntl.h: musl and old C libraries may lack them. */
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#endif
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_WRITE
#define F_SEAL_WRITE 0x0008
#endif
/* An mmap flag a system's headers lack (on Linux only MAP_32BIT, below; the others' uapi numbers are above). */
#define PL_ABSENT_FLAG 0x40000000
#ifndef MAP_32BIT
#define MAP_32BIT PL_ABSENT_FLAG /* x86-64 only: other architectures' headers lack it */
#endif
/* FreeBSD's reservation flags (sys/mman.h, FreeBSD 11.2), named by the
 * mmap.guard and mmap.excl probes on every system. Linux refuses MAP_GUARD
 * alone as a mapping without a type (EINVAL, as for an unknown type) and
 * ignores MAP_EXCL's bit, as it ignores every flag it does not know: the
 * probes see both and skip as unsupported. */
#ifndef MAP_GUARD
#define MAP_GUARD 0x00002000
#endif
#ifndef MAP_EXCL
#define MAP_EXCL 0x00004000
#endif

/* prctl(2) options, include/uapi/linux/prctl.h, Linux 6.4: KSM for the whole process. */
#define PL_PR_SET_MEMORY_MERGE 67
#define PL_PR_GET_MEMORY_MERGE 68

/* mseal(2), Linux 6.10: the same number on every architecture. */
#define PL_NR_mseal 462

/* The kernel-internal ENOTSUPP, which MAP_DROPPABLE returns on 32-bit kernels. */
#define PL_ENOTSUPP 524

#endif
