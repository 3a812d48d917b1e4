/* pagelab page layer: the virtual-memory operations an allocator needs, named
 * by the guarantee the caller gets rather than by the system call behind it.
 *
 * Conventions (every function):
 *  - returns 0 on success or a positive errno value; never -1-and-errno;
 *  - addresses and lengths are multiples of pl_page_size() unless stated;
 *  - outputs go through pointer parameters;
 *  - pl_caps() says, per operation, whether this system does it natively,
 *    emulates it (and how), or cannot do it, and which system call is used.
 * One implementation file per OS (lib/platform/<os>.c) over a shared POSIX
 * file (lib/platform/posix.c); lib/platform/generic.c serves any other POSIX,
 * lib/platform/windows.c Windows (no posix.c under it).
 */
#ifndef PAGELAB_PLATFORM_H
#define PAGELAB_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- capabilities ---- */

enum pl_op {
	PL_OP_RESERVE,      /* address space, no access, no commit charge */
	PL_OP_COMMIT,       /* make reserved pages accessible, demand-zero */
	PL_OP_DECOMMIT,     /* give pages back and make them inaccessible */
	PL_OP_RELEASE,      /* pages may go back; contents afterwards old-or-zero */
	PL_OP_RELEASE_ZERO, /* pages go back; contents afterwards read zero */
	PL_OP_REUSABLE,     /* Darwin MADV_FREE_REUSABLE: pages reclaimable, not counted */
	PL_OP_REUSE,        /* Darwin MADV_FREE_REUSE: range is in use again */
	PL_OP_PROTECT,      /* change access rights */
	PL_OP_GUARD,        /* install guard pages: any access faults */
	PL_OP_UNGUARD,      /* remove guard pages: range reads zero again */
	PL_OP_POPULATE,     /* fault the range in ahead of use */
	PL_OP_MAP_PATTERN,  /* pages read as a byte pattern until first written */
	PL_OP_RESIDENCY,    /* which pages of a range are resident */
	PL_OP_ZERO_PAGE,    /* whether a page maps the shared zero page */
	PL_OP_RSS,          /* resident set size of this process */
	PL_OP_UNMAP,        /* remove a mapping */
	PL_OP_COUNT
};

enum pl_impl {
	PL_UNAVAILABLE = 0, /* this system cannot do it */
	PL_NATIVE,          /* a system call does exactly this */
	PL_EMULATED,        /* built from other calls; `how` says how */
};

/* What the start-up check found of a native claim: a call that returns
 * success must also do what the guarantee says. */
enum pl_verdict {
	PL_NOT_CHECKED = 0, /* emulated, unavailable, or no check can tell */
	PL_HONOURED,        /* the native call was seen to keep its guarantee */
	PL_NOT_HONOURED,    /* it returned success and did not: emulation took over */
};

struct pl_cap {
	enum pl_impl impl;
	const char *via; /* the system call(s), e.g. "madvise(MADV_FREE)" */
	const char *how; /* for emulated/unavailable: how, or why not */
	enum pl_verdict verified;
	const char *claimed; /* PL_NOT_HONOURED: the call that claimed it, and what was seen */
};

struct pl_caps {
	const char *platform; /* "linux", "windows", "generic" */
	size_t page_size;
	size_t granularity;    /* alignment of new mappings: the page size on POSIX, 64 KiB on Windows */
	bool partial_unmap;    /* pl_unmap may remove part of a mapping (false on Windows) */
	size_t huge_page_size; /* PMD-sized transparent huge page, 0 if none */
	struct pl_cap op[PL_OP_COUNT];
};

/* Filled once (thread-safe) by probing the running system; never NULL. */
const struct pl_caps *pl_caps(void);
/* Short lowercase name of an operation, e.g. "release_zero". */
const char *pl_op_name(enum pl_op op);
/* "native", "emulated" or "unavailable". */
const char *pl_impl_name(enum pl_impl impl);
/* "not_checked", "honoured" or "not_honoured". */
const char *pl_verdict_name(enum pl_verdict v);
/* The base page size of this process. */
size_t pl_page_size(void);

/* ---- mapping lifetime ---- */

#define PL_PROT_NONE  0
#define PL_PROT_READ  1
#define PL_PROT_WRITE 2
#define PL_PROT_EXEC  4
#define PL_PROT_RW    (PL_PROT_READ | PL_PROT_WRITE)

/* Reserve len bytes of address space aligned to align (a power of two, at
 * least a page; 0 means a page): no access, no commit charge. */
int pl_reserve(size_t len, size_t align, void **out);
/* Map len bytes of private anonymous read-write demand-zero memory. */
int pl_map_anon(size_t len, void **out);
/* Remove the mapping of [p, p+len): later access faults. Portable callers
 * pass a whole mapping (what pl_reserve/pl_map_anon returned); a part of one
 * only where pl_caps()->partial_unmap (EINVAL otherwise). */
int pl_unmap(void *p, size_t len);
/* Make reserved or decommitted pages read-write; they read zero when first touched. */
int pl_commit(void *p, size_t len);
/* Return the pages' memory and make them inaccessible; reads fault until pl_commit. */
int pl_decommit(void *p, size_t len);
/* Set access rights (PL_PROT_*) on [p, p+len). */
int pl_protect(void *p, size_t len, int prot);

/* ---- giving memory back ---- */

/* The memory may be reclaimed; contents afterwards are the old bytes or zero,
 * per page, until written (MADV_FREE kind). Access stays legal. */
int pl_release(void *p, size_t len);
/* The memory is reclaimed; contents afterwards read zero (MADV_DONTNEED kind
 * on private anonymous memory; falls back to remapping or memset). */
int pl_release_zero(void *p, size_t len);
/* Darwin's MADV_FREE_REUSABLE: the pages stop counting toward the process's
 * footprint and may be reclaimed; contents are undefined until pl_reuse, and
 * an access before it may fault (Windows' offered pages are inaccessible). */
int pl_reusable(void *p, size_t len);
/* Darwin's MADV_FREE_REUSE: the range is in use again; contents old-or-zero. */
int pl_reuse(void *p, size_t len);

/* ---- guards and population ---- */

/* Any access to [p, p+len) faults, until pl_unguard. Prefers a lightweight
 * guard (MADV_GUARD_INSTALL, no new mapping) over PROT_NONE. */
int pl_guard(void *p, size_t len);
/* Accessible again, reading zero (contents behind a guard are not kept). */
int pl_unguard(void *p, size_t len);
/* Fault [p, p+len) in now, for reading (write=false) or writing. */
int pl_populate(void *p, size_t len, bool write);

/* ---- inheritance across fork ---- */

enum pl_inherit {
	PL_INHERIT_COPY,  /* the child gets a copy-on-write copy (the default for private memory) */
	PL_INHERIT_SHARE, /* parent and child share the pages: each sees the other's writes */
	PL_INHERIT_NONE,  /* nothing is mapped there in the child (MADV_DONTFORK, INHERIT_NONE) */
	PL_INHERIT_ZERO,  /* the child gets fresh pages reading zero (MADV_WIPEONFORK, INHERIT_ZERO) */
};
/* What a child made by fork gets of [p, p+len) from now on. ENOTSUP where
 * this system cannot give that; the system's own refusal (EINVAL ...) as is. */
int pl_inherit(void *p, size_t len, enum pl_inherit how);

/* ---- pattern-initialised memory ---- */

enum pl_pattern_mode {
	PL_PATTERN_AUTO,    /* the best this system offers */
	PL_PATTERN_NATIVE,  /* a kernel reference-page mapping (MAP_REFPAGE kind) */
	PL_PATTERN_UFFD,    /* userfaultfd: each missing page filled from the pattern on fault */
	PL_PATTERN_MEMSET,  /* map anonymous memory and write the pattern up front */
	PL_PATTERN_UFFD_FULL, /* userfaultfd that also serves faults taken inside system calls */
};

/* Map len bytes, private and read-write, reading as `byte` everywhere until
 * written. *used says which mode served the request (PL_PATTERN_UFFD_FULL
 * when a userfaultfd serves faults inside system calls too, PL_PATTERN_UFFD
 * when it serves user-mode faults only: read(2) into such memory can fail
 * with EFAULT). Unmap with pl_unmap_pattern. ENOTSUP when the requested mode
 * is unavailable. In a forked child, inherited userfaultfd mappings are served
 * again from the child's next userfaultfd pl_map_pattern call; untouched
 * pages read before that read zero until written. */
int pl_map_pattern(size_t len, unsigned char byte, enum pl_pattern_mode mode,
		   void **out, enum pl_pattern_mode *used);
/* Unmap memory from pl_map_pattern and stop serving its faults. */
int pl_unmap_pattern(void *p, size_t len);
/* "auto", "native", "uffd", "memset" or "uffd_full". */
const char *pl_pattern_mode_name(enum pl_pattern_mode mode);

/* ---- observation ----
 * What the system can tell about memory. Each answers ENOTSUP where this
 * system has no way to tell; callers treat that as "unobservable", never as
 * a verdict on the memory itself. */

/* vec[i] = 1 if page i of [p, p+len) is resident, else 0 (mincore kind). */
int pl_residency(const void *p, size_t len, unsigned char *vec);
/* How many pages of [p, p+len) are resident. */
int pl_resident_pages(const void *p, size_t len, size_t *count);
/* *is_zero = whether the page at p maps the system's shared zero page. */
int pl_is_zero_page(const void *p, bool *is_zero);
/* Resident set size of this process, in bytes. */
int pl_rss(size_t *bytes);
/* The memory the system charges this process for, in bytes (Darwin's
 * phys_footprint: resident and compressed private pages, without reusable ones). */
int pl_footprint(size_t *bytes);
/* Minor and major page faults taken by this process so far. */
int pl_fault_counts(uint64_t *minor, uint64_t *major);
/* Bytes of [p, p+len) backed by huge pages (a PMD-sized page or larger). */
int pl_huge_bytes(const void *p, size_t len, size_t *bytes);

enum pl_page_flag {
	PL_PF_PRESENT = 1 << 0,    /* in memory */
	PL_PF_SWAPPED = 1 << 1,    /* in swap */
	PL_PF_ZERO = 1 << 2,       /* maps the shared zero page */
	PL_PF_HUGE = 1 << 3,       /* part of a huge page */
	PL_PF_GUARD = 1 << 4,      /* a guard marker (MADV_GUARD_INSTALL kind) */
	PL_PF_FILE = 1 << 5,       /* file or shared memory */
	PL_PF_EXCLUSIVE = 1 << 6,  /* mapped by this process only */
	PL_PF_SOFT_DIRTY = 1 << 7, /* written since the soft-dirty bits were cleared */
	PL_PF_WRITTEN = 1 << 8,    /* written since write-protection tracking began */
};
/* The PL_PF_* flags of the page at p; *known says which flags this system
 * reports at all (a flag outside *known is not "clear", it is unknown). */
int pl_page_flags(const void *p, unsigned *flags, unsigned *known);
/* How many separate mappings the system keeps for [p, p+len) (VMAs on Linux). */
int pl_mapping_count(const void *p, size_t len, size_t *count);
/* Bytes of this process's memory locked in RAM. */
int pl_locked_bytes(size_t *bytes);
/* Where the program break started, as the kernel records it. */
int pl_break_start(uintptr_t *addr);
/* The program break through the kernel itself, not libc's brk(): ask for
 * `want` (NULL: only read it) and get where the break is afterwards in *now.
 * The kernel answers with the break, not an errno: a refusal shows as *now
 * not being want. ENOTSUP where the system has no break call. */
int pl_raw_break(void *want, void **now);
/* Bytes of swap (or a compressed store) anonymous memory can be paged out to; 0 when none. */
int pl_swap_total(uint64_t *bytes);
/* *yes = the open file fd lives in memory (tmpfs kind: paging it out needs swap). */
int pl_file_in_memory(int fd, bool *yes);
/* *strict = the system refuses to commit more than it can back (no overcommit). */
int pl_commit_strict(bool *strict);
/* Why transparent huge pages cannot be used now, or NULL when they can. */
const char *pl_huge_unavailable(void);
/* *on = the system maps a huge zero page for read faults on huge-page ranges. */
int pl_huge_zero_page_enabled(bool *on);
/* TLB shootdown interrupts all CPUs have received so far (system-wide). */
int pl_tlb_shootdowns(uint64_t *count);

/* ---- deeper observations ----
 * For the probes that look under the contract: written-since tracking, the
 * physical block behind a page, huge-page pools, page merging. ENOTSUP where
 * this system has no way to tell or do it; EPERM where it needs privileges. */

/* Start written-since tracking afresh: PL_PF_SOFT_DIRTY reads clear on every page of this process until it is written. */
int pl_clear_soft_dirty(void);
/* Bytes of the physical block (folio) holding the page at p: the base page, a smaller huge page (mTHP) or a huge page. */
int pl_folio_bytes(const void *p, size_t *bytes);
/* Transparent huge-page sizes below the PMD size that private anonymous memory gets now (mTHP), smallest first. */
int pl_mthp_sizes(size_t *sizes, size_t max, size_t *count);
/* Hugetlb pages of `size` bytes free in the system's pool; ENOTSUP when the system has no pool of that size. */
int pl_hugetlb_free(size_t size, size_t *pages);
/* The hugetlb page sizes the system has pools for, smallest first. */
int pl_hugetlb_sizes(size_t *sizes, size_t max, size_t *count);
/* *on = the page-merging daemon (KSM kind) is running, so memory advised mergeable gets merged. */
int pl_merge_running(bool *on);
/* *on = the page-merging daemon maps zero-filled pages to the shared zero page (KSM's use_zero_pages). */
int pl_merge_into_zero_page(bool *on);
/* Wait (at most timeout_ms) until the page-merging daemon has gone over all mergeable memory twice. */
int pl_merge_settle(int timeout_ms);
/* Pages of this process the page-merging daemon currently shares with identical pages. */
int pl_merged_pages(size_t *pages);
/* *on = whole-process page merging is on in a program a child of this process has just executed (kept across exec). */
int pl_merge_after_exec(bool *on);
/* How many separate mappings a process may have (vm.max_map_count on Linux). */
int pl_mapping_limit(size_t *count);

/* ---- acting like the kernel's other users ---- */

/* Write one byte at p the way a debugger does: through the page's protection (FOLL_FORCE kind). */
int pl_force_write(void *p, unsigned char byte);
/* Move the pages of [p, p+len) to other physical pages now (migration); contents and protection stay. */
int pl_migrate(void *p, size_t len);

enum pl_pin_kind {
	PL_PIN_PIPE,     /* handed to a pipe by reference, read-only and short-term (vmsplice kind) */
	PL_PIN_LONGTERM, /* registered with the kernel for I/O, writable and long-term (io_uring fixed buffer kind) */
};
struct pl_pin;
/* Let the kernel hold on to the pages of [p, p+len) the way an I/O path does, not a copy of them. */
int pl_pin_start(void *p, size_t len, enum pl_pin_kind kind, struct pl_pin **out);
/* Copy into out (len bytes at most, *got of them) what the kernel sees through the pin now; a pipe pin holds
 * what the pipe took (at least a page) and can be read once. */
int pl_pin_read(struct pl_pin *pin, void *out, size_t len, size_t *got);
/* Drop the pin. */
int pl_pin_stop(struct pl_pin *pin);

enum pl_supply_mode {
	PL_SUPPLY_COPY,      /* a missing page is filled with the given byte */
	PL_SUPPLY_ZERO_PAGE, /* a missing page maps the shared zero page */
	PL_SUPPLY_SIGBUS,    /* a missing page is refused: the access raises SIGBUS */
};
struct pl_supply_stats {
	uint64_t faults;   /* missing pages supplied (or refused) */
	uint64_t removals; /* times pages were dropped from the range (MADV_DONTNEED, MADV_REMOVE) */
};
struct pl_supplier;
/* Supply [p, p+len) from this process (userfaultfd kind): every touch of a page that has none is answered as
 * `mode` says, by a thread of this layer; removals are counted. */
int pl_supply_start(void *p, size_t len, enum pl_supply_mode mode, unsigned char byte, struct pl_supplier **out);
/* Place a page of `byte` at p now, as the supplier would (also into read-only mappings). */
int pl_supply_place(struct pl_supplier *s, void *p, unsigned char byte);
/* What the supplier has seen so far (its thread counts an event just after taking it: a moment behind the call). */
int pl_supply_stats(struct pl_supplier *s, struct pl_supply_stats *st);
/* Stop supplying; pages already there stay. */
int pl_supply_stop(struct pl_supplier *s);

struct pl_memlimit;
/* A new memory-limited group of `bytes` (cgroup kind), made without changing any system setting: the system
 * reclaims the group's memory under its own pressure. ENOTSUP/EPERM (why in *why) when none can be made. */
int pl_memlimit_create(size_t bytes, struct pl_memlimit **out, const char **why);
/* Move the calling process into the group: its new memory counts against the limit. */
int pl_memlimit_join(struct pl_memlimit *m);
/* Remove the group once no process is in it. */
int pl_memlimit_remove(struct pl_memlimit *m);

#ifdef __cplusplus
}
#endif
#endif
