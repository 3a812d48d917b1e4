/* mseal (Linux 6.10): a sealed range refuses munmap, mprotect, mremap,
 * mmap(MAP_FIXED) over it, and discarding madvise on read-only anonymous
 * memory, each with EPERM; the range and its contents stay intact. Probed by
 * number at run time, so old headers and other systems skip with a reason. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"
#if defined(PL_NR_mseal) && defined(HAVE_SYS_SYSCALL_H)
#include <sys/syscall.h>
#define PL_MSEAL 1
#endif
#define RW (PROT_READ | PROT_WRITE)
#define SEAL_PAGES 3

#ifdef PL_MSEAL
static int try_mseal(void *p, size_t len)
{
	return syscall(PL_NR_mseal, p, len, 0UL) == 0 ? 0 : errno;
}

/* SEAL_PAGES private anonymous pages holding pattern 1, protected `prot`, sealed. */
static char *sealed_range(struct pc_ctx *ctx, int prot)
{
	size_t len = SEAL_PAGES * pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(len, (void **)&b));
	pc_fill(b, len, 1);
	if (prot != RW && mprotect(b, len, prot) != 0)
		pc_error(ctx, "mprotect before sealing: %s", pc_strerror(errno));
	int e = try_mseal(b, len);
	/* ENOSYS before 6.10; 32-bit kernels do not have it at all. */
	if (e == ENOSYS || e == EPERM)
		pc_skip_unsupported(ctx, "mseal: %s from this kernel (needs Linux 6.10, 64-bit)", pl_errno_name(e));
	if (e)
		pc_error(ctx, "mseal: %s", pc_strerror(e));
	return b;
}

/* A refused operation: EPERM, the whole range still mapped with its contents. */
static void expect_refused(struct pc_ctx *ctx, const char *what, int e, char *b)
{
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EPERM, "%s of a sealed range: expected EPERM, got %s", what,
		 e ? pc_strerror(e) : "success");
	const char *c = pc_contents(b, SEAL_PAGES * pl_page_size(), 1);
	pc_observe(ctx, "contents_after", "%s", c);
	PC_CHECK(ctx, strcmp(c, "old") == 0, "the sealed range reads %s after a refused %s", c, what);
}
#define NO_MSEAL
#else
#define NO_MSEAL pc_skip_unsupported(ctx, "no mseal(2) system call number for this system (Linux 6.10 and later only)");
#endif

PC_PROBE(munmap_refused, "mseal.munmap.eperm", "munmap of a sealed range, whole or one page, fails with EPERM")
{
#ifdef PL_MSEAL
	char *b = sealed_range(ctx, RW);
	int part = munmap(b + pl_page_size(), pl_page_size()) == 0 ? 0 : errno;
	pc_observe(ctx, "errno_one_page", "%s", part ? pl_errno_name(part) : "none");
	PC_CHECK(ctx, part == EPERM, "munmap of one sealed page: %s", part ? pc_strerror(part) : "success");
	expect_refused(ctx, "munmap", munmap(b, SEAL_PAGES * pl_page_size()) == 0 ? 0 : errno, b);
	pc_pass(ctx);
#endif
	NO_MSEAL
}

PC_PROBE(mprotect_refused, "mseal.mprotect.eperm",
	 "mprotect of a sealed range fails with EPERM and the protection stays")
{
#ifdef PL_MSEAL
	char *b = sealed_range(ctx, RW);
	int e = mprotect(b, SEAL_PAGES * pl_page_size(), PROT_READ) == 0 ? 0 : errno;
	expect_refused(ctx, "mprotect", e, b);
	PC_CHECK(ctx, pc_access_faults(b, true, b[0]) == 0, "the sealed range is no longer writable");
	pc_pass(ctx);
#endif
	NO_MSEAL
}

PC_PROBE(mremap_refused, "mseal.mremap.eperm",
	 "shrinking or moving a sealed range with mremap fails with EPERM")
{
#if defined(PL_MSEAL) && defined(HAVE_MREMAP)
	size_t ps = pl_page_size();
	char *b = sealed_range(ctx, RW);
	void *p = mremap(b, SEAL_PAGES * ps, ps, 0);
	int shrink = p == MAP_FAILED ? errno : 0;
	pc_observe(ctx, "errno_shrink", "%s", shrink ? pl_errno_name(shrink) : "none");
	PC_CHECK(ctx, shrink == EPERM, "shrinking a sealed range: %s", shrink ? pc_strerror(shrink) : "success");
	p = mremap(b, SEAL_PAGES * ps, 2 * SEAL_PAGES * ps, MREMAP_MAYMOVE);
	expect_refused(ctx, "mremap move", p == MAP_FAILED ? errno : 0, b);
	pc_pass(ctx);
#elif defined(PL_MSEAL)
	pc_skip_unsupported(ctx, "no Linux-style mremap on this system");
#endif
	NO_MSEAL
}

PC_PROBE(mmap_fixed_refused, "mseal.mmap_fixed.eperm",
	 "mmap(MAP_FIXED) over a sealed range fails with EPERM")
{
#ifdef PL_MSEAL
	char *b = sealed_range(ctx, RW);
	void *p = mmap(b, pl_page_size(), RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	expect_refused(ctx, "mmap(MAP_FIXED)", p == MAP_FAILED ? errno : 0, b);
	pc_pass(ctx);
#endif
	NO_MSEAL
}

PC_PROBE(dontneed_readonly_refused, "mseal.madvise_dontneed.eperm_readonly_anon",
	 "MADV_DONTNEED on sealed read-only anonymous memory fails with EPERM")
{
#ifdef PL_MSEAL
	char *b = sealed_range(ctx, PROT_READ);
	expect_refused(ctx, "madvise(MADV_DONTNEED)", pc_madvise(b, SEAL_PAGES * pl_page_size(), MADV_DONTNEED), b);
	pc_pass(ctx);
#endif
	NO_MSEAL
}

PC_PROBE(dontneed_writable, "mseal.madvise_dontneed.writable_anon",
	 "MADV_DONTNEED on sealed writable anonymous memory: refused (EPERM, contents kept) or done (zero); observed")
{
#ifdef PL_MSEAL
	size_t len = SEAL_PAGES * pl_page_size();
	char *b = sealed_range(ctx, RW);
	int e = pc_madvise(b, len, MADV_DONTNEED);
	const char *c = pc_contents(b, len, 1);
	pc_observe(ctx, "result", "%s", e ? pl_errno_name(e) : "done");
	pc_observe(ctx, "contents_after", "%s", c);
	PC_CHECK(ctx, e == 0 || e == EPERM, "unexpected error %s", pc_strerror(e));
	PC_CHECK(ctx, strcmp(c, e ? "old" : "zero") == 0, "madvise returned %s but the range reads %s",
		 e ? pl_errno_name(e) : "0", c);
	pc_pass(ctx);
#endif
	NO_MSEAL
}

PC_PROBE(seal_hole, "mseal.seal.enomem_over_hole",
	 "mseal of a range with a hole fails with ENOMEM and seals nothing")
{
#ifdef PL_MSEAL
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&b));
	PC_SETUP(ctx, pl_unmap(b + ps, ps));
	int e = try_mseal(b, 3 * ps);
	if (e == ENOSYS)
		pc_skip_unsupported(ctx, "mseal: ENOSYS from this kernel (needs Linux 6.10, 64-bit)");
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == ENOMEM, "expected ENOMEM, got %s", e ? pc_strerror(e) : "success");
	int u = munmap(b, ps) == 0 ? 0 : errno;
	PC_CHECK(ctx, u == 0, "the first page was sealed by a failed mseal (munmap: %s)", pc_strerror(u));
	pc_pass(ctx);
#endif
	NO_MSEAL
}
