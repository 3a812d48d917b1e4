/* The POSIX side of the probe helpers: mappings of each kind, madvise with
 * raw advice values, a forked child. A system without them (Windows) has its
 * own file beside this one. */
#include "conform_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HAVE_SYS_SYSCALL_H
#include <sys/syscall.h>
#endif
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "pagelab/env.h"
#include "pl_abi.h"

/* An advice value no system defines: what "unknown advice" gets here. */
#define PC_UNKNOWN_ADVICE 0x7a31

int pc_unknown_advice_errno(void *p, size_t len)
{
	return pc_madvise(p, len, PC_UNKNOWN_ADVICE);
}

int pc_unknown_map_type_errno(void)
{
	/* MAP_SHARED and MAP_PRIVATE are 1 and 2 nearly everywhere; 0xf is no type anywhere. */
	void *p = mmap(NULL, pl_page_size(), PROT_READ | PROT_WRITE, 0xf | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	(void)munmap(p, pl_page_size());
	return 0;
}

/* The feature an advice is, where a feature probe proves it. */
static enum pc_feature advice_feature(int advice)
{
	static const struct { int advice; enum pc_feature f; } table[] = {
		{MADV_DONTNEED, PC_F_MADV_DONTNEED}, {MADV_FREE, PC_F_MADV_FREE}, {MADV_COLD, PC_F_MADV_COLD},
		{MADV_PAGEOUT, PC_F_MADV_PAGEOUT}, {MADV_WILLNEED, PC_F_MADV_WILLNEED}, {MADV_REMOVE, PC_F_MADV_REMOVE},
		{MADV_POPULATE_READ, PC_F_MADV_POPULATE_READ}, {MADV_POPULATE_WRITE, PC_F_MADV_POPULATE_WRITE},
		{MADV_DONTFORK, PC_F_MADV_DONTFORK}, {MADV_DOFORK, PC_F_MADV_DONTFORK},
		{MADV_WIPEONFORK, PC_F_MADV_WIPEONFORK}, {MADV_KEEPONFORK, PC_F_MADV_WIPEONFORK},
		{MADV_GUARD_INSTALL, PC_F_MADV_GUARD}, {MADV_GUARD_REMOVE, PC_F_MADV_GUARD},
		{MADV_HUGEPAGE, PC_F_MADV_HUGEPAGE}, {MADV_NOHUGEPAGE, PC_F_MADV_HUGEPAGE},
		{MADV_COLLAPSE, PC_F_MADV_COLLAPSE}, {MADV_MERGEABLE, PC_F_MADV_MERGEABLE},
		{MADV_UNMERGEABLE, PC_F_MADV_MERGEABLE}, {MADV_DONTNEED_LOCKED, PC_F_MADV_DONTNEED_LOCKED},
		{MADV_DONTDUMP, PC_F_MADV_DONTDUMP}, {MADV_DODUMP, PC_F_MADV_DONTDUMP},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].advice == advice)
			return table[i].f;
	return PC_F_NONE;
}

void pc_need_advice(struct pc_ctx *ctx, int advice, const char *name)
{
	enum pc_feature f = advice_feature(advice);
	if (f != PC_F_NONE) {
		pc_need_feature(ctx, f); /* its feature probe ran in this run, on a real range */
		return;
	}
	int e = pc_madvise(NULL, 0, advice);
	if (e)
		pc_refusal(ctx, pc_fmt("madvise(%s) of nothing", name), e, pc_unknown_advice_errno(NULL, 0));
}

void pc_advise(struct pc_ctx *ctx, void *p, size_t len, int advice, const char *name)
{
	int e = pc_madvise(p, len, advice);
	if (e)
		pc_refusal(ctx, pc_fmt("madvise(%s) on %s memory", name, pc_kind_name(pc_kind(ctx) ? pc_kind(ctx) : PC_PRIVATE_ANON)),
			   e, pc_unknown_advice_errno(p, len));
}

bool pc_force_reclaim(void *p, size_t len)
{
#ifdef MADV_PAGEOUT
	return pc_madvise(p, len, MADV_PAGEOUT) == 0;
#else
	(void)p; (void)len;
	return false;
#endif
}

const char *pc_reclaim_name(void)
{
	return "MADV_PAGEOUT";
}

void pc_lock_or_skip(struct pc_ctx *ctx, void *p, size_t len)
{
	size_t before = 0, after = 0;
	bool counted = pl_locked_bytes(&before) == 0;
	if (mlock(p, len) != 0)
		pc_skip_prerequisite(ctx, "mlock refused (%s; RLIMIT_MEMLOCK?)", pl_errno_name(errno));
	if (counted && pl_locked_bytes(&after) == 0 && after < before + len)
		pc_skip_prerequisite(ctx, "mlock returned 0 but only %zu more bytes are locked (a runtime that makes mlock "
				     "a no-op, such as a sanitizer?)", after - before);
}

#if defined(__SANITIZE_ADDRESS__)
#define PC_SHADOW_MEMORY 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PC_SHADOW_MEMORY 1
#endif
#endif

void pc_skip_if_shadow_memory(struct pc_ctx *ctx, const char *what)
{
#ifdef PC_SHADOW_MEMORY
	pc_skip_prerequisite(ctx, "%s would walk the terabytes of shadow memory an "
			     "AddressSanitizer build reserves: run it in a build without the sanitizer", what);
#else
	(void)ctx; (void)what;
#endif
}

int pc_in_child(int (*fn)(void *arg), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0 && errno == ENOSYS)
		pc_skip_unsupported(pc_current, "fork: ENOSYS: this system has no fork");
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(arg) & 0xff);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

void pc_fork_with_pipes(struct pc_ctx *ctx, int (*fn)(void *arg, int in, int out), void *arg, struct pc_fork *f)
{
	int to_child[2], to_parent[2];
	if (pipe(to_child) != 0)
		pc_error(ctx, "pipe: %s", pc_strerror(errno));
	if (pipe(to_parent) != 0)
		pc_error(ctx, "pipe: %s", pc_strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0 && errno == ENOSYS) /* not implemented is unsupported, never an error (as pc_in_child) */
		pc_skip_unsupported(ctx, "fork: ENOSYS: this system has no fork");
	if (pid < 0)
		pc_error(ctx, "fork: %s", pc_strerror(errno));
	if (pid == 0) {
		/* Only the child's own ends stay open, so either side's exit is end of file to the other. */
		close(to_child[1]);
		close(to_parent[0]);
		_exit(fn(arg, to_child[0], to_parent[1]) & 0xff);
	}
	close(to_child[0]);
	close(to_parent[1]);
	*f = (struct pc_fork){.pid = pid, .to_child = to_child[1], .from_child = to_parent[0]};
}

int pc_token_send(int fd)
{
	return write(fd, "x", 1) == 1 ? 0 : EPIPE;
}

int pc_token_await(int fd)
{
	char b;
	ssize_t n;
	while ((n = read(fd, &b, 1)) < 0 && errno == EINTR)
		;
	return n == 1 ? 0 : EPIPE;
}

int pc_fork_wait(struct pc_ctx *ctx, struct pc_fork *f)
{
	int st;
	close(f->to_child);
	close(f->from_child);
	while (waitpid((pid_t)f->pid, &st, 0) < 0)
		if (errno != EINTR)
			pc_error(ctx, "waitpid: %s", pc_strerror(errno));
	if (!WIFEXITED(st))
		pc_error(ctx, "the child did not exit by itself (status 0x%x)", st);
	return WEXITSTATUS(st);
}

int pc_unlock(void *p, size_t len)
{
	return munlock(p, len) == 0 ? 0 : errno;
}

int pc_system_write(void *p, const void *src, size_t len)
{
	int fds[2], e = 0;
	if (pipe(fds) != 0)
		return errno;
	if (write(fds[1], src, len) != (ssize_t)len)
		e = errno ? errno : EIO;
	ssize_t n = e ? 0 : read(fds[0], p, len);
	if (!e && n != (ssize_t)len)
		e = n < 0 ? errno : EIO;
	close(fds[0]);
	close(fds[1]);
	return e;
}

int pc_madvise(void *p, size_t len, int advice)
{
	return madvise(p, len, advice) == 0 ? 0 : errno;
}

/* The reason a mapping kind is missing here, formatted once per probe process. */
static char why_buf[256];

PC_FMT(1, 2) static const char *why_fmt(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why_buf, sizeof(why_buf), fmt, ap);
	va_end(ap);
	return why_buf;
}

/* A file of len zero bytes: a memfd for shared_file, else a file in the probe's
 * directory (which must be on a disk file system for shared_disk). */
static int backing_file(struct pc_ctx *ctx, enum pc_kind kind, size_t len, int *fd_out, const char **why)
{
	int fd = -1;
#ifdef HAVE_MEMFD_CREATE
	if (kind == PC_SHARED_FILE)
		fd = memfd_create("pagelab", MFD_CLOEXEC);
#endif
	if (fd < 0) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/backing.XXXXXX", ctx->tmpdir);
		fd = mkstemp(path);
		if (fd < 0)
			return errno;
		if (unlink(path) != 0) {
			int e = errno;
			close(fd);
			return e;
		}
	}
	bool in_memory = false;
	if (kind == PC_SHARED_DISK && (pl_file_in_memory(fd, &in_memory) != 0 || in_memory)) {
		close(fd);
		*why = "the probe directory is not on a disk file system (it is in memory, or its kind is unknown): "
		       "set TMPDIR to a directory on disk";
		return EPERM;
	}
	if (ftruncate(fd, (off_t)len) != 0) {
		int e = errno;
		close(fd);
		return e;
	}
	*fd_out = fd;
	return 0;
}

/* Private anonymous memory in whole blocks of `huge` bytes, aligned to them, with MADV_HUGEPAGE;
 * ENOTSUP (with the reason) where the system refuses MADV_HUGEPAGE as it refuses an unknown advice. */
static int map_huge_aligned(size_t huge, size_t len, struct pc_map *m, const char **why)
{
	m->len = (len + huge - 1) / huge * huge;
	int e = pl_reserve(m->len, huge, &m->addr);
	if (e == 0)
		e = pl_commit(m->addr, m->len);
	if (e == 0 && (e = pc_madvise(m->addr, m->len, MADV_HUGEPAGE)) != 0) {
		int unknown = pc_unknown_advice_errno(m->addr, m->len);
		if (e == unknown || e == ENOSYS) {
			*why = why_fmt("madvise(MADV_HUGEPAGE) refused with %s, as an unknown advice is: no transparent "
				       "huge pages here", pl_errno_name(e));
			e = ENOTSUP;
		}
	}
	if (e && m->addr) {
		munmap(m->addr, m->len);
		m->addr = NULL;
	}
	return e;
}

/* How much of the first `huge` bytes a huge page backs: PMD-sized pages through the
 * huge-backing channel, smaller ones through the folio size. */
static int huge_backed(const struct pc_map *m, size_t huge, size_t *bytes, const char **why)
{
	const char *distrust;
	int e;
	if (huge == pl_caps()->huge_page_size) {
		if (!pc_channel_trusted(PC_CH_HUGE_BACKING, &distrust)) {
			*why = distrust;
			return ENODATA;
		}
		e = pl_huge_bytes(m->addr, huge, bytes);
	} else {
		e = pl_folio_bytes(m->addr, bytes);
	}
	if (e == ENOTSUP || e == EPERM || e == ENOENT) {
		*why = e == EPERM ? "the block behind a page can be seen by root only (/proc/kpageflags)"
				  : "this system cannot tell whether a huge page backs a range";
		return ENODATA;
	}
	return e;
}

/* A first write must get a huge page of the kind's size; it is dropped again so the range starts untouched. */
static int prove_huge(struct pc_map *m, size_t huge, const char **why)
{
	size_t bytes = 0;
	*(volatile char *)m->addr = 1;
	int e = huge_backed(m, huge, &bytes, why);
	if (e == 0 && bytes < huge) {
		*why = why_fmt("no huge page of %zu KiB backed a first write now (%zu KiB did; huge pages are best "
			       "effort: memory may be fragmented)", huge / 1024, bytes / 1024);
		e = EPERM;
	}
	if (e == 0 && madvise(m->addr, m->len, MADV_DONTNEED) != 0)
		e = errno;
	return e;
}

static int map_thp(size_t len, struct pc_map *m, const char **why)
{
	size_t huge = pl_caps()->huge_page_size;
	if (!pc_thp_available(why))
		return huge ? EPERM : ENOTSUP; /* a setting forbids them, or there are none */
	int e = map_huge_aligned(huge, len, m, why);
	return e ? e : prove_huge(m, huge, why);
}

static int map_mthp(size_t len, struct pc_map *m, const char **why)
{
	size_t sizes[16], n = 0;
	int e = pl_mthp_sizes(sizes, 16, &n);
	if (e == ENOTSUP) {
		*why = "no transparent huge pages smaller than the PMD size on this system (mTHP: Linux 6.8)";
		return ENOTSUP;
	}
	if (e == 0 && n == 0) {
		*why = "no mTHP size is enabled (transparent_hugepage/hugepages-<size>kB/enabled is never for each)";
		return EPERM;
	}
	if (e == 0)
		e = map_huge_aligned(sizes[n - 1], len, m, why);
	return e ? e : prove_huge(m, sizes[n - 1], why);
}

/* The hugetlb page size of a hugetlb kind: the PMD size, or the next larger size with a pool. */
static int hugetlb_size(enum pc_kind kind, size_t *size, const char **why)
{
	size_t sizes[8], n = 0, pmd = pl_caps()->huge_page_size;
	if (pl_hugetlb_sizes(sizes, 8, &n) != 0 || n == 0) {
		*why = "no hugetlb page pools on this system";
		return ENOTSUP;
	}
	/* Without transparent huge pages the PMD size is not reported: the smallest pool stands for it. */
	if (pmd == 0) {
		pmd = sizes[0];
		for (size_t i = 1; i < n; i++)
			pmd = sizes[i] < pmd ? sizes[i] : pmd;
	}
	for (size_t i = 0; i < n; i++)
		if (kind == PC_HUGETLB_PMD ? sizes[i] == pmd : sizes[i] > pmd) {
			*size = sizes[i];
			return 0;
		}
	*why = kind == PC_HUGETLB_PMD ? "no hugetlb pool of the PMD size" : "no hugetlb pool larger than the PMD size";
	return ENOTSUP;
}

#if defined(MAP_HUGETLB) && defined(MAP_HUGE_SHIFT)
/* The mmap flag naming a hugetlb page size: its log2 above MAP_HUGE_SHIFT. */
static int hugetlb_size_flag(size_t size)
{
	int log2 = 0;
	while ((size >> log2) > 1)
		log2++;
	return log2 << MAP_HUGE_SHIFT;
}
#endif

static int map_hugetlb(enum pc_kind kind, size_t len, struct pc_map *m, const char **why)
{
#if defined(MAP_HUGETLB) && defined(MAP_HUGE_SHIFT)
	size_t size = 0, free_pages = 0;
	int e = hugetlb_size(kind, &size, why);
	if (e)
		return e;
	m->len = (len + size - 1) / size * size;
	/* One spare page: a private hugetlb page copied on write after fork needs a second one. */
	size_t need = m->len / size + 1;
	if (pl_hugetlb_free(size, &free_pages) != 0 || free_pages < need) {
		*why = why_fmt("needs %zu free hugetlb pages of %zu KiB, the pool has %zu: run on a kernel target "
			       "(its guest reserves them), or reserve them yourself", need, size / 1024, free_pages);
		return EPERM;
	}
	m->flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | hugetlb_size_flag(size);
	m->addr = mmap(NULL, m->len, PROT_READ | PROT_WRITE, m->flags, -1, 0);
	if (m->addr != MAP_FAILED)
		return 0;
	m->addr = NULL;
	return errno;
#else
	(void)kind; (void)len; (void)m;
	*why = "no MAP_HUGETLB on this system";
	return ENOTSUP;
#endif
}

static int map_plain(struct pc_ctx *ctx, enum pc_kind kind, size_t len, struct pc_map *m, const char **why)
{
	int e;
	m->flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (kind == PC_SHARED_ANON)
		m->flags = MAP_SHARED | MAP_ANONYMOUS;
	if (kind == PC_PRIVATE_FILE || kind == PC_SHARED_FILE || kind == PC_SHARED_DISK) {
		if ((e = backing_file(ctx, kind, len, &m->fd, why)) != 0)
			return e;
		m->flags = kind == PC_PRIVATE_FILE ? MAP_PRIVATE : MAP_SHARED;
	}
	m->addr = mmap(NULL, len, PROT_READ | PROT_WRITE, m->flags, m->fd, 0);
	if (m->addr == MAP_FAILED) {
		e = errno;
		m->addr = NULL;
		return e;
	}
	return 0;
}

int pc_map(struct pc_ctx *ctx, enum pc_kind kind, size_t len, struct pc_map *m, const char **why)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->kind = kind;
	m->len = len;
	m->flags = MAP_PRIVATE | MAP_ANONYMOUS;
	int e;
	switch (kind) {
	case PC_THP: e = map_thp(len, m, why); break;
	case PC_MTHP: e = map_mthp(len, m, why); break;
	case PC_HUGETLB_PMD:
	case PC_HUGETLB_PUD: e = map_hugetlb(kind, len, m, why); break;
	default: e = map_plain(ctx, kind, len, m, why); break;
	}
	if (e)
		pc_unmap(m);
	return e;
}

size_t pc_kind_granule(enum pc_kind kind)
{
	size_t size = 0;
	const char *why;
	if ((kind & PC_HUGETLB_KINDS) && hugetlb_size(kind, &size, &why) == 0)
		return size;
	return pl_page_size();
}

void pc_unmap(struct pc_map *m)
{
	if (m->addr && m->addr != MAP_FAILED)
		munmap(m->addr, m->len);
	if (m->fd >= 0)
		close(m->fd);
	m->addr = NULL;
	m->fd = -1;
}

/* ---- the system's own calls: ENOSYS where this build's system has none ---- */

static int answer(long r)
{
	return r < 0 ? errno : 0;
}

int pc_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr, void **out)
{
#ifdef HAVE_MREMAP
	void *p = mremap(old, old_len, new_len, flags, new_addr);
	*out = p == MAP_FAILED ? NULL : p;
	return p == MAP_FAILED ? errno : 0;
#else
	(void)old; (void)old_len; (void)new_len; (void)flags; (void)new_addr;
	*out = NULL;
	return ENOSYS;
#endif
}

int pc_mseal(void *p, size_t len, unsigned long flags)
{
#if defined(HAVE_SYS_SYSCALL_H) && defined(PL_NR_mseal)
	return answer(syscall(PL_NR_mseal, p, len, flags));
#else
	(void)p; (void)len; (void)flags;
	return ENOSYS;
#endif
}

int pc_mlock2(const void *p, size_t len, unsigned flags)
{
#if defined(HAVE_SYS_SYSCALL_H) && defined(SYS_mlock2)
	return answer(syscall(SYS_mlock2, p, len, flags));
#else
	if (flags)
		return ENOSYS;
	return answer(mlock(p, len));
#endif
}

/* Raw system calls where the headers number them: sanitizer runtimes make the C library's lock calls no-ops. */
int pc_mlockall(int flags)
{
#if defined(HAVE_SYS_SYSCALL_H) && defined(SYS_mlockall)
	return answer(syscall(SYS_mlockall, flags));
#else
	return answer(mlockall(flags));
#endif
}

int pc_munlockall(void)
{
#if defined(HAVE_SYS_SYSCALL_H) && defined(SYS_munlockall)
	return answer(syscall(SYS_munlockall));
#else
	return answer(munlockall());
#endif
}

int pc_process_madvise_self(const struct pc_iovec *v, size_t n, int advice, size_t *advised)
{
	*advised = 0;
#if defined(HAVE_SYS_SYSCALL_H) && defined(SYS_process_madvise) && defined(SYS_pidfd_open)
	struct iovec iov[64];
	if (n > 64)
		return EINVAL;
	for (size_t i = 0; i < n; i++)
		iov[i] = (struct iovec){v[i].base, v[i].len};
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		return errno;
	long r = syscall(SYS_process_madvise, pidfd, iov, n, advice, 0);
	int e = r < 0 ? errno : 0;
	if (close(pidfd) != 0 && !e)
		e = errno;
	if (r >= 0)
		*advised = (size_t)r;
	return e;
#else
	(void)v; (void)n; (void)advice;
	return ENOSYS;
#endif
}

int pc_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5, int *ret)
{
#ifdef HAVE_SYS_PRCTL_H
	int r = prctl(option, a2, a3, a4, a5);
	*ret = r < 0 ? 0 : r;
	return r < 0 ? errno : 0;
#else
	(void)option; (void)a2; (void)a3; (void)a4; (void)a5;
	*ret = 0;
	return ENOSYS;
#endif
}

int pc_sbrk(intptr_t increment, void **old)
{
#ifdef HAVE_SBRK
	void *p = sbrk(increment);
	*old = p == (void *)-1 ? NULL : p;
	return p == (void *)-1 ? errno : 0;
#else
	(void)increment;
	*old = NULL;
	return ENOSYS;
#endif
}

int pc_memfd(const char *name, unsigned flags, int *fd)
{
#ifdef HAVE_MEMFD_CREATE
	*fd = memfd_create(name, flags);
	return *fd < 0 ? errno : 0;
#else
	(void)name; (void)flags;
	*fd = -1;
	return ENOSYS;
#endif
}

/* munlock(2) as a raw system call where the headers number it (sanitizer runtimes make the C library's a no-op). */
int pc_munlock(const void *p, size_t len)
{
#if defined(HAVE_SYS_SYSCALL_H) && defined(SYS_munlock)
	return answer(syscall(SYS_munlock, p, len));
#else
	return answer(munlock(p, len));
#endif
}

/* mprotect(2) as the system call itself, past the C library's wrapper (which may round or check). */
int pc_mprotect_raw(void *p, size_t len, int prot)
{
#if defined(HAVE_SYS_SYSCALL_H) && defined(SYS_mprotect)
	return answer(syscall(SYS_mprotect, p, len, prot));
#else
	(void)p; (void)len; (void)prot;
	return ENOSYS;
#endif
}

/* brk(2) through the C library (which may refuse what the kernel allows: musl's always fails). */
int pc_brk(void *addr)
{
#ifdef HAVE_SBRK
	return answer(brk(addr));
#else
	(void)addr;
	return ENOSYS;
#endif
}
