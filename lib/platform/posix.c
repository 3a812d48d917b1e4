/* The page layer's shared POSIX part: mmap, munmap, mprotect, mincore and
 * getrusage behave alike on every system we build for. Reserving, committing
 * and decommitting are here as pl_posix_* for the OS files that have nothing
 * better (FreeBSD's MAP_GUARD and Darwin's Mach calls are). */
#include "pl_internal.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0 /* no such flag: reserving is charged or lazy by default */
#endif

static size_t page_size_cached;

size_t pl_page_size(void)
{
	if (page_size_cached == 0) {
		long ps = sysconf(_SC_PAGESIZE);
		page_size_cached = ps > 0 ? (size_t)ps : 4096;
	}
	return page_size_cached;
}

static struct pl_caps caps;
static pthread_once_t caps_once = PTHREAD_ONCE_INIT;

static void fill_caps(void)
{
	caps.page_size = pl_page_size();
	caps.granularity = caps.page_size;
	caps.partial_unmap = true;
	pl_posix_fill_caps(&caps);
	pl_os_fill_caps(&caps);
}

const struct pl_caps *pl_caps(void)
{
	if (pthread_once(&caps_once, fill_caps) != 0 && caps.page_size == 0)
		fill_caps(); /* pthread_once cannot fail in practice; never return an empty set */
	return &caps;
}

void pl_posix_fill_caps(struct pl_caps *c)
{
	pl_cap_set(c, PL_OP_RESERVE, PL_NATIVE, "mmap(PROT_NONE, MAP_NORESERVE)", NULL);
	pl_cap_set(c, PL_OP_COMMIT, PL_NATIVE, "mprotect(PROT_READ|PROT_WRITE)", NULL);
	pl_cap_set(c, PL_OP_DECOMMIT, PL_NATIVE, "mmap(MAP_FIXED, PROT_NONE)", NULL);
	pl_cap_set(c, PL_OP_PROTECT, PL_NATIVE, "mprotect", NULL);
	pl_cap_set(c, PL_OP_UNMAP, PL_NATIVE, "munmap", NULL);
	pl_cap_verdict(c, PL_OP_DECOMMIT, pl_check_faults(pl_decommit, pl_commit),
		       "mmap(MAP_FIXED, PROT_NONE) returned success and the pages stayed accessible");
#ifdef HAVE_MINCORE
	pl_cap_set(c, PL_OP_RESIDENCY, PL_NATIVE, "mincore", NULL);
#else
	pl_cap_set(c, PL_OP_RESIDENCY, PL_UNAVAILABLE, NULL, "no mincore on this system");
#endif
}

int pl_posix_prot(int prot)
{
	int p = PROT_NONE;
	if (prot & PL_PROT_READ)
		p |= PROT_READ;
	if (prot & PL_PROT_WRITE)
		p |= PROT_WRITE;
	if (prot & PL_PROT_EXEC)
		p |= PROT_EXEC;
	return p;
}

static bool aligned_to_page(const void *p, size_t len)
{
	size_t ps = pl_page_size();
	return ((uintptr_t)p % ps) == 0 && (len % ps) == 0;
}

int pl_posix_reserve(size_t len, size_t align, void **out)
{
	size_t ps = pl_page_size();
	int e = pl_reserve_args(len, &align);
	if (e)
		return e;
	size_t span = len + (align > ps ? align : 0);
	if (span < len)
		return ENOMEM;
	char *base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return errno;
	char *start = (char *)(((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1));
	/* Trim the over-reservation on both sides so only [start, start+len) stays mapped. */
	if (start > base && munmap(base, (size_t)(start - base)) != 0)
		return errno;
	size_t tail = (size_t)(base + span - (start + len));
	if (tail && munmap(start + len, tail) != 0)
		return errno;
	*out = start;
	return 0;
}

int pl_map_anon(size_t len, void **out)
{
	if (len == 0)
		return EINVAL;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	*out = p;
	return 0;
}

int pl_unmap(void *p, size_t len)
{
	return munmap(p, len) == 0 ? 0 : errno;
}

int pl_posix_commit(void *p, size_t len)
{
	if (!aligned_to_page(p, len))
		return EINVAL;
	return mprotect(p, len, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
}

int pl_posix_remap_fresh(void *p, size_t len, int prot)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
	if (prot == PL_PROT_NONE)
		flags |= MAP_NORESERVE;
	void *q = mmap(p, len, pl_posix_prot(prot), flags, -1, 0);
	if (q == MAP_FAILED)
		return errno;
	return q == p ? 0 : EFAULT;
}

int pl_posix_decommit(void *p, size_t len)
{
	if (!aligned_to_page(p, len))
		return EINVAL;
	/* A fresh PROT_NONE mapping drops the pages and, on Linux, the commit charge. */
	return pl_posix_remap_fresh(p, len, PL_PROT_NONE);
}

int pl_protect(void *p, size_t len, int prot)
{
	return mprotect(p, len, pl_posix_prot(prot)) == 0 ? 0 : errno;
}

int pl_posix_madvise(void *p, size_t len, int advice)
{
	return madvise(p, len, advice) == 0 ? 0 : errno;
}

int pl_posix_scratch_page(void **out)
{
	return pl_map_anon(pl_page_size(), out);
}

int pl_posix_probe_advice(int advice)
{
	void *p = NULL;
	int e = pl_posix_scratch_page(&p);
	if (e)
		return e;
	*(volatile char *)p = 1;
	e = pl_posix_madvise(p, pl_page_size(), advice);
	int u = pl_unmap(p, pl_page_size());
	return e ? e : u;
}

int pl_residency(const void *p, size_t len, unsigned char *vec)
{
#ifdef HAVE_MINCORE
	size_t ps = pl_page_size();
	size_t skew = (uintptr_t)p & (ps - 1);
	size_t n = (len + skew + ps - 1) / ps;
	/* The page's address is derived from p itself: a capability keeps its provenance. */
	if (mincore((void *)((const char *)p - skew), n * ps, (void *)vec) != 0)
		return errno;
	for (size_t i = 0; i < n; i++)
		vec[i] &= 1; /* the other bits are reserved or system-specific */
	return 0;
#else
	(void)p; (void)len; (void)vec;
	return ENOTSUP;
#endif
}

int pl_fault_counts(uint64_t *minor, uint64_t *major)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return errno;
	*minor = (uint64_t)ru.ru_minflt;
	*major = (uint64_t)ru.ru_majflt;
	return 0;
}

/* ---- the isolated fault check: a child process that may die of the fault ---- */

static sigjmp_buf check_jmp;
static volatile sig_atomic_t check_faulted;

static void on_check_fault(int sig)
{
	(void)sig;
	check_faulted = 1;
	siglongjmp(check_jmp, 1);
}

/* Read every byte of [p, p+len) (or just the first); true when it faulted. Only
 * the volatile flag crosses the jump, so no local needs to survive it. */
static bool read_faults(volatile unsigned char *p, size_t len, bool *zero)
{
	check_faulted = 0;
	*zero = true;
	if (sigsetjmp(check_jmp, 1) == 0)
		for (size_t i = 0; i < len; i++)
			if (p[i] != 0)
				*zero = false;
	return check_faulted != 0;
}

/* Exit codes of the checking child. */
enum { CHILD_HONOURED = 0, CHILD_OP_FAILED = 2, CHILD_NO_FAULT = 10, CHILD_STILL_FAULTS = 11, CHILD_NOT_ZERO = 12 };

static int check_in_child(volatile unsigned char *p, size_t len, pl_range_op op, pl_range_op undo)
{
	struct sigaction sa;
	bool zero;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_check_fault;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0 || op((void *)p, len) != 0)
		return CHILD_OP_FAILED;
	if (!read_faults(p, 1, &zero))
		return CHILD_NO_FAULT;
	if (!undo)
		return CHILD_HONOURED;
	if (undo((void *)p, len) != 0)
		return CHILD_OP_FAILED;
	if (read_faults(p, len, &zero))
		return CHILD_STILL_FAULTS;
	return zero ? CHILD_HONOURED : CHILD_NOT_ZERO;
}

/* fork, not a thread: a fault must never reach the caller's own handlers.
 * Runs while the capability set is first filled, before the caller's fork
 * handlers exist (refalloc registers its own afterwards). */
enum pl_verdict pl_os_check_faults(void *p, size_t len, pl_range_op op, pl_range_op undo)
{
	pid_t pid = fork();
	if (pid < 0)
		return PL_NOT_CHECKED;
	if (pid == 0)
		_exit(check_in_child(p, len, op, undo));
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return PL_NOT_CHECKED;
	if (!WIFEXITED(st))
		return PL_NOT_CHECKED;
	switch (WEXITSTATUS(st)) {
	case CHILD_HONOURED: return PL_HONOURED;
	case CHILD_NO_FAULT: case CHILD_STILL_FAULTS: case CHILD_NOT_ZERO: return PL_NOT_HONOURED;
	default: return PL_NOT_CHECKED;
	}
}
