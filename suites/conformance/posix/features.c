/* The features the POSIX areas use, proved once per run by what the running
 * system answers, never by the build's headers: a valid request accepted is
 * a feature present; refused the way an unknown request of the same call is
 * refused, or ENOSYS, is a feature missing (the probes that need it skip as
 * unsupported, with this evidence). A feature that is present must then
 * behave: the probes that need it judge that. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define UNKNOWN_FLAG 0x40000000 /* a flag bit no system gives mremap, mlock2 or mlockall */
#define UNKNOWN_PRCTL 0x7a31    /* a prctl option no system defines */

#define ADVICE_FEATURE(fn, name, feature, kind, advice)                                             \
	PC_FEATURE_PROBE(fn, "feature." name, feature,                                              \
			 "madvise(" #advice ") on " #kind " memory is accepted, or refused otherwise than an unknown advice") \
	{                                                                                           \
		pc_feature_advice(ctx, kind, advice, #advice);                                      \
	}

ADVICE_FEATURE(f_dontneed, "madv_dontneed", PC_F_MADV_DONTNEED, PC_PRIVATE_ANON, MADV_DONTNEED)
ADVICE_FEATURE(f_free, "madv_free", PC_F_MADV_FREE, PC_PRIVATE_ANON, MADV_FREE)
ADVICE_FEATURE(f_cold, "madv_cold", PC_F_MADV_COLD, PC_PRIVATE_ANON, MADV_COLD)
ADVICE_FEATURE(f_pageout, "madv_pageout", PC_F_MADV_PAGEOUT, PC_PRIVATE_ANON, MADV_PAGEOUT)
ADVICE_FEATURE(f_willneed, "madv_willneed", PC_F_MADV_WILLNEED, PC_PRIVATE_ANON, MADV_WILLNEED)
ADVICE_FEATURE(f_remove, "madv_remove", PC_F_MADV_REMOVE, PC_SHARED_FILE, MADV_REMOVE)
ADVICE_FEATURE(f_populate_read, "madv_populate_read", PC_F_MADV_POPULATE_READ, PC_PRIVATE_ANON, MADV_POPULATE_READ)
ADVICE_FEATURE(f_populate_write, "madv_populate_write", PC_F_MADV_POPULATE_WRITE, PC_PRIVATE_ANON,
	       MADV_POPULATE_WRITE)
ADVICE_FEATURE(f_dontfork, "madv_dontfork", PC_F_MADV_DONTFORK, PC_PRIVATE_ANON, MADV_DONTFORK)
ADVICE_FEATURE(f_wipeonfork, "madv_wipeonfork", PC_F_MADV_WIPEONFORK, PC_PRIVATE_ANON, MADV_WIPEONFORK)
ADVICE_FEATURE(f_guard, "madv_guard_install", PC_F_MADV_GUARD, PC_PRIVATE_ANON, MADV_GUARD_INSTALL)
ADVICE_FEATURE(f_hugepage, "madv_hugepage", PC_F_MADV_HUGEPAGE, PC_PRIVATE_ANON, MADV_HUGEPAGE)
ADVICE_FEATURE(f_collapse, "madv_collapse", PC_F_MADV_COLLAPSE, PC_PRIVATE_ANON, MADV_COLLAPSE)
ADVICE_FEATURE(f_mergeable, "madv_mergeable", PC_F_MADV_MERGEABLE, PC_PRIVATE_ANON, MADV_MERGEABLE)
ADVICE_FEATURE(f_dontneed_locked, "madv_dontneed_locked", PC_F_MADV_DONTNEED_LOCKED, PC_PRIVATE_ANON,
	       MADV_DONTNEED_LOCKED)
ADVICE_FEATURE(f_dontdump, "madv_dontdump", PC_F_MADV_DONTDUMP, PC_PRIVATE_ANON, MADV_DONTDUMP)

static void absent_flag(struct pc_ctx *ctx, int flags, const char *name)
{
	if (flags & PL_ABSENT_FLAG)
		pc_skip_unsupported(ctx, "this system's headers do not define %s", name);
}

static void *map_or_error(struct pc_ctx *ctx, size_t len, int prot, int flags, int fd)
{
	void *p = mmap(NULL, len, prot, flags, fd, 0);
	if (p == MAP_FAILED)
		pc_error(ctx, "mmap of %zu bytes: %s", len, pc_strerror(errno));
	return p;
}

/* mmap(2): "older kernels which do not recognize MAP_FIXED_NOREPLACE will typically ... return an
 * address that is different from the requested address": that is how its absence shows. */
PC_FEATURE_PROBE(f_noreplace, "feature.map_fixed_noreplace", PC_F_MAP_FIXED_NOREPLACE,
		 "MAP_FIXED_NOREPLACE over a mapped page is refused (absent: the flag is taken as a hint)")
{
	size_t ps = pl_page_size();
	absent_flag(ctx, MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE");
	char *a = map_or_error(ctx, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	void *p = mmap(a + ps, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	int e = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED && p != a + ps)
		PC_SETUP(ctx, pl_unmap(p, ps));
	PC_SETUP(ctx, pl_unmap(a, 2 * ps));
	if (p != MAP_FAILED && p != a + ps) {
		pc_observe(ctx, "answer", "another address");
		pc_skip_unsupported(ctx, "MAP_FIXED_NOREPLACE over a mapped page gave another address: the flag is "
				    "not known here and was taken as a hint (mmap(2))");
	}
	pc_feature_answer(ctx, "MAP_FIXED_NOREPLACE over a mapped page", e == EEXIST ? 0 : e, -1);
}

/* Flags an mmap that does not know them ignores (Linux does): accepted is all that can be asked. */
static void flag_feature(struct pc_ctx *ctx, int flags, const char *name)
{
	size_t len = 4 * pl_page_size();
	absent_flag(ctx, flags, name);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
	int e = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		PC_SETUP(ctx, pl_unmap(p, len));
	pc_feature_answer(ctx, pc_fmt("mmap(%s)", name), e, -1);
}

PC_FEATURE_PROBE(f_populate, "feature.map_populate", PC_F_MAP_POPULATE, "mmap(MAP_POPULATE) is accepted")
{
	flag_feature(ctx, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, "MAP_POPULATE");
}

PC_FEATURE_PROBE(f_growsdown, "feature.map_growsdown", PC_F_MAP_GROWSDOWN, "mmap(MAP_GROWSDOWN) is accepted")
{
	flag_feature(ctx, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, "MAP_GROWSDOWN");
}

PC_FEATURE_PROBE(f_locked, "feature.map_locked", PC_F_MAP_LOCKED, "mmap(MAP_LOCKED) is accepted")
{
	flag_feature(ctx, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, "MAP_LOCKED");
}

/* Mapping types are checked (an unknown one is refused): compare with one no system defines. */
static void type_feature(struct pc_ctx *ctx, int type, bool file, const char *name)
{
	size_t len = 4 * pl_page_size();
	int fd = -1;
	absent_flag(ctx, type, name);
	if (file)
		PC_SETUP(ctx, pc_memfd("pagelab-feature", 0, &fd));
	if (file && ftruncate(fd, (off_t)len) != 0)
		pc_error(ctx, "ftruncate: %s", pc_strerror(errno));
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, type | (file ? 0 : MAP_ANONYMOUS), fd, 0);
	int e = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		PC_SETUP(ctx, pl_unmap(p, len));
	if (fd >= 0 && close(fd) != 0)
		pc_error(ctx, "close: %s", pc_strerror(errno));
	pc_observe(ctx, "answer_to_unknown_type", "%s", pl_errno_name(pc_unknown_map_type_errno()));
	pc_feature_answer(ctx, pc_fmt("mmap(%s)", name), e, pc_unknown_map_type_errno());
}

PC_FEATURE_PROBE(f_droppable, "feature.map_droppable", PC_F_MAP_DROPPABLE,
		 "mmap(MAP_DROPPABLE) is accepted, or refused otherwise than an unknown mapping type")
{
	type_feature(ctx, MAP_DROPPABLE, false, "MAP_DROPPABLE");
}

PC_FEATURE_PROBE(f_shared_validate, "feature.map_shared_validate", PC_F_MAP_SHARED_VALIDATE,
		 "mmap(MAP_SHARED_VALIDATE) of shared memory is accepted")
{
	type_feature(ctx, MAP_SHARED_VALIDATE, true, "MAP_SHARED_VALIDATE");
}

/* ---- mremap ---- */

/* A fresh two-page mapping and a free destination of two pages. */
static void mremap_setup(struct pc_ctx *ctx, char **src, char **dst)
{
	size_t ps = pl_page_size();
	*src = map_or_error(ctx, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	*dst = map_or_error(ctx, 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
}

static void mremap_feature(struct pc_ctx *ctx, int flags, const char *name)
{
	size_t ps = pl_page_size();
	char *src, *dst;
	void *out;
	mremap_setup(ctx, &src, &dst);
	int e = pc_mremap(src, ps, ps, flags, dst, &out);
	int unknown = pc_mremap(src + ps, ps, ps, UNKNOWN_FLAG, NULL, &out);
	(void)pl_unmap(src, 2 * ps); /* whatever the calls left there */
	(void)pl_unmap(dst, 2 * ps);
	pc_observe(ctx, "answer_to_unknown_flag", "%s", unknown ? pl_errno_name(unknown) : "accepted");
	pc_feature_answer(ctx, pc_fmt("mremap(%s)", name), e, unknown == ENOSYS ? -1 : unknown);
}

PC_FEATURE_PROBE(f_mremap, "feature.mremap", PC_F_MREMAP, "mremap shrinks a mapping")
{
	size_t ps = pl_page_size();
	char *src, *dst;
	void *out;
	mremap_setup(ctx, &src, &dst);
	int e = pc_mremap(src, 2 * ps, ps, 0, NULL, &out);
	(void)pl_unmap(src, 2 * ps);
	(void)pl_unmap(dst, 2 * ps);
	pc_feature_answer(ctx, "mremap shrinking a mapping", e, -1);
}

PC_FEATURE_PROBE(f_mremap_fixed, "feature.mremap_fixed", PC_F_MREMAP_FIXED,
		 "mremap(MREMAP_MAYMOVE | MREMAP_FIXED) is accepted, or refused otherwise than an unknown flag")
{
	mremap_feature(ctx, MREMAP_MAYMOVE | MREMAP_FIXED, "MREMAP_MAYMOVE | MREMAP_FIXED");
}

PC_FEATURE_PROBE(f_mremap_dontunmap, "feature.mremap_dontunmap", PC_F_MREMAP_DONTUNMAP,
		 "mremap(MREMAP_DONTUNMAP) is accepted, or refused otherwise than an unknown flag")
{
	mremap_feature(ctx, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, "MREMAP_MAYMOVE | MREMAP_DONTUNMAP");
}

/* Moving a range that spans two mappings (Linux 6.17): kernels before refuse it, with EFAULT or EINVAL. */
PC_FEATURE_PROBE(f_mremap_several, "feature.mremap_several_mappings", PC_F_MREMAP_SEVERAL,
		 "mremap moves a range that spans two mappings in one call")
{
	size_t ps = pl_page_size();
	char *src, *dst;
	void *out;
	mremap_setup(ctx, &src, &dst);
	PC_SETUP(ctx, pl_protect(src + ps, ps, PL_PROT_READ)); /* two mappings */
	int e = pc_mremap(src, 2 * ps, 2 * ps, MREMAP_MAYMOVE | MREMAP_FIXED, dst, &out);
	(void)pl_unmap(src, 2 * ps);
	(void)pl_unmap(dst, 2 * ps);
	pc_observe(ctx, "answer", "%s", e ? pl_errno_name(e) : "accepted");
	if (e)
		pc_skip_unsupported(ctx, "mremap of a range over two mappings refused with %s (moves across several "
				    "mappings are Linux 6.17's)", pl_errno_name(e));
	pc_pass(ctx);
}

/* ---- mseal, mlock ---- */

PC_FEATURE_PROBE(f_mseal, "feature.mseal", PC_F_MSEAL, "mseal of a private page is accepted")
{
	size_t ps = pl_page_size();
	char *p = map_or_error(ctx, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	int e = pc_mseal(p, ps, 0);
	/* 32-bit kernels answer EPERM: mseal exists only for 64-bit address spaces (mseal(2)). */
	if (e == EPERM)
		pc_skip_unsupported(ctx, "mseal: EPERM (sealing is for 64-bit processes only)");
	pc_feature_answer(ctx, "mseal", e, -1);
}

PC_FEATURE_PROBE(f_mlock, "feature.mlock", PC_F_MLOCK, "mlock of a page is accepted")
{
	size_t ps = pl_page_size();
	char *p = map_or_error(ctx, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	int e = mlock(p, ps) == 0 ? 0 : errno;
	if (e == ENOMEM || e == EAGAIN)
		pc_skip_prerequisite(ctx, "mlock of one page: %s (RLIMIT_MEMLOCK?)", pl_errno_name(e));
	pc_feature_answer(ctx, "mlock", e, -1);
}

PC_FEATURE_PROBE(f_mlock_onfault, "feature.mlock2_onfault", PC_F_MLOCK_ONFAULT,
		 "mlock2(MLOCK_ONFAULT) is accepted, or refused otherwise than an unknown flag")
{
	size_t ps = pl_page_size();
	char *p = map_or_error(ctx, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	int e = pc_mlock2(p, ps, MLOCK_ONFAULT), unknown = pc_mlock2(p, ps, UNKNOWN_FLAG);
	if (e == ENOMEM || e == EAGAIN)
		pc_skip_prerequisite(ctx, "mlock2 of one page: %s (RLIMIT_MEMLOCK?)", pl_errno_name(e));
	pc_feature_answer(ctx, "mlock2(MLOCK_ONFAULT)", e, unknown == ENOSYS ? -1 : unknown);
}

PC_FEATURE_PROBE(f_mlockall_onfault, "feature.mlockall_onfault", PC_F_MLOCKALL_ONFAULT,
		 "mlockall(MCL_FUTURE | MCL_ONFAULT) is accepted, or refused otherwise than an unknown flag")
{
	absent_flag(ctx, MCL_ONFAULT, "MCL_ONFAULT");
	int e = pc_mlockall(MCL_FUTURE | MCL_ONFAULT);
	if (e == 0)
		PC_SETUP(ctx, pc_munlockall());
	int unknown = pc_mlockall(UNKNOWN_FLAG);
	if (unknown == 0)
		PC_SETUP(ctx, pc_munlockall());
	if (e == ENOMEM || e == EAGAIN)
		pc_skip_prerequisite(ctx, "mlockall: %s (RLIMIT_MEMLOCK?)", pl_errno_name(e));
	pc_feature_answer(ctx, "mlockall(MCL_FUTURE | MCL_ONFAULT)", e, unknown);
}

/* ---- the kernel's other users of a process's pages ---- */

PC_FEATURE_PROBE(f_userfaultfd, "feature.userfaultfd", PC_F_USERFAULTFD,
		 "this process can supply its own missing pages (userfaultfd)")
{
	size_t ps = pl_page_size();
	struct pl_supplier *s;
	char *p = map_or_error(ctx, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	int e = pl_supply_start(p, ps, PL_SUPPLY_COPY, 7, &s);
	if (e == 0)
		PC_SETUP(ctx, pl_supply_stop(s));
	pc_feature_answer(ctx, "supplying pages (userfaultfd)", e, -1);
}

static void pin_feature(struct pc_ctx *ctx, enum pl_pin_kind kind, const char *name)
{
	size_t ps = pl_page_size();
	struct pl_pin *pin;
	char *p = map_or_error(ctx, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	p[0] = 1;
	int e = pl_pin_start(p, ps, kind, &pin);
	if (e == 0)
		PC_SETUP(ctx, pl_pin_stop(pin));
	pc_feature_answer(ctx, name, e, -1);
}

PC_FEATURE_PROBE(f_pin_vmsplice, "feature.pin_vmsplice", PC_F_PIN_VMSPLICE,
		 "pages can be handed to a pipe by reference (vmsplice)")
{
	pin_feature(ctx, PL_PIN_PIPE, "handing a page to a pipe (vmsplice)");
}

PC_FEATURE_PROBE(f_pin_io_uring, "feature.pin_io_uring", PC_F_PIN_IO_URING,
		 "pages can be registered for I/O, pinned long-term (io_uring fixed buffers)")
{
	pin_feature(ctx, PL_PIN_LONGTERM, "registering a page for I/O (io_uring)");
}

PC_FEATURE_PROBE(f_forced_write, "feature.forced_write", PC_F_FORCED_WRITE,
		 "a debugger-style write reaches a read-only private page (/proc/self/mem kind)")
{
	size_t ps = pl_page_size();
	char *p = map_or_error(ctx, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	int e = pl_force_write(p, 7);
	/* There is no unknown request to compare with: a forced write to a mapped page refused for any
	 * reason but permission (EPERM, EACCES: a prerequisite) means the system does not offer it. */
	pc_feature_answer(ctx, "a forced write to a mapped read-only page", e, e);
}

PC_FEATURE_PROBE(f_memfd_seals, "feature.memfd_seals", PC_F_MEMFD_SEALS, "a memfd made for sealing takes F_SEAL_WRITE")
{
	int fd;
	PC_SETUP(ctx, pc_memfd("pagelab-seals", MFD_ALLOW_SEALING, &fd));
	int e = fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0 ? 0 : errno;
	if (close(fd) != 0)
		pc_error(ctx, "close: %s", pc_strerror(errno));
	pc_feature_answer(ctx, "fcntl(F_ADD_SEALS, F_SEAL_WRITE) on a memfd", e, EINVAL);
}

PC_FEATURE_PROBE(f_soft_dirty, "feature.soft_dirty", PC_F_SOFT_DIRTY, "the written-since bits can be cleared")
{
	pc_feature_answer(ctx, "clearing the soft-dirty bits", pl_clear_soft_dirty(), -1);
}

PC_FEATURE_PROBE(f_ksm_prctl, "feature.ksm_prctl", PC_F_KSM_PRCTL,
		 "prctl(PR_GET_MEMORY_MERGE) is known (merging for the whole process)")
{
	int ret, unknown = pc_prctl(UNKNOWN_PRCTL, 0, 0, 0, 0, &ret);
	int e = pc_prctl(PL_PR_GET_MEMORY_MERGE, 0, 0, 0, 0, &ret);
	pc_feature_answer(ctx, "prctl(PR_GET_MEMORY_MERGE)", e, unknown == ENOSYS ? -1 : unknown);
}

PC_FEATURE_PROBE(f_process_madvise, "feature.process_madvise", PC_F_PROCESS_MADVISE,
		 "process_madvise on this process is known")
{
	size_t ps = pl_page_size(), done;
	char *p = map_or_error(ctx, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	struct pc_iovec v = {p, ps};
	pc_feature_answer(ctx, "process_madvise(MADV_COLD)", pc_process_madvise_self(&v, 1, MADV_COLD, &done), -1);
}

static int child_exits(void *arg)
{
	(void)arg;
	return 0;
}

PC_FEATURE_PROBE(f_fork, "feature.fork", PC_F_FORK, "this process can fork a child that runs and exits")
{
	int st = pc_in_child(child_exits, NULL); /* skips by itself where there is no fork */
	if (st < 0)
		pc_error(ctx, "fork: %s", pc_strerror(errno));
	PC_CHECK(ctx, st == 0, "the child ended with status %d", st);
	pc_pass(ctx);
}

PC_FEATURE_PROBE(f_brk, "feature.brk", PC_F_BRK, "the program break can be read through the system call")
{
	void *now;
	pc_feature_answer(ctx, "brk", pl_raw_break(NULL, &now), -1);
}
