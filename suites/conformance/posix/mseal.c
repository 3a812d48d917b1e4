/* mseal (Linux 6.10): a sealed range refuses munmap, mprotect, mremap,
 * mmap(MAP_FIXED) over it, and discarding madvise on read-only anonymous
 * memory, each with EPERM; the range and its contents stay intact. Every
 * probe needs feature.mseal (proved at run time): systems without it skip. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define RW (PROT_READ | PROT_WRITE)
#define SEAL_PAGES 3
#define MSEAL_F PC_FB(PC_F_MSEAL)

/* SEAL_PAGES private anonymous pages holding pattern 1, protected `prot`, sealed. */
static char *sealed_range(struct pc_ctx *ctx, int prot)
{
	size_t len = SEAL_PAGES * pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(len, (void **)&b));
	pc_fill(b, len, 1);
	if (prot != RW && mprotect(b, len, prot) != 0)
		pc_error(ctx, "mprotect before sealing: %s", pc_strerror(errno));
	/* feature.mseal proved sealing works here: refusing a fresh private mapping is the subject failing. */
	int e = pc_mseal(b, len, 0);
	if (e == ENOSYS)
		pc_skip_unsupported(ctx, "mseal: ENOSYS: not implemented here");
	if (e)
		pc_fail_refused(ctx, "mseal of %zu bytes of fresh private memory: %s", len, pc_strerror(e));
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

PC_PROBE_NEEDS(munmap_refused, "mseal.munmap.eperm", MSEAL_F,
	 "munmap of a sealed range, whole or one page, fails with EPERM")
{
	char *b = sealed_range(ctx, RW);
	int part = munmap(b + pl_page_size(), pl_page_size()) == 0 ? 0 : errno;
	pc_observe(ctx, "errno_one_page", "%s", part ? pl_errno_name(part) : "none");
	PC_CHECK(ctx, part == EPERM, "munmap of one sealed page: %s", part ? pc_strerror(part) : "success");
	expect_refused(ctx, "munmap", munmap(b, SEAL_PAGES * pl_page_size()) == 0 ? 0 : errno, b);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(mprotect_refused, "mseal.mprotect.eperm", MSEAL_F,
	 "mprotect of a sealed range fails with EPERM and the protection stays")
{
	char *b = sealed_range(ctx, RW);
	int e = mprotect(b, SEAL_PAGES * pl_page_size(), PROT_READ) == 0 ? 0 : errno;
	expect_refused(ctx, "mprotect", e, b);
	PC_CHECK(ctx, pc_access_faults(b, true, b[0]) == 0, "the sealed range is no longer writable");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(mremap_refused, "mseal.mremap.eperm", MSEAL_F | PC_FB(PC_F_MREMAP),
	 "shrinking or moving a sealed range with mremap fails with EPERM")
{
	size_t ps = pl_page_size();
	char *b = sealed_range(ctx, RW);
	void *p;
	int shrink = pc_mremap(b, SEAL_PAGES * ps, ps, 0, NULL, &p);
	pc_observe(ctx, "errno_shrink", "%s", shrink ? pl_errno_name(shrink) : "none");
	PC_CHECK(ctx, shrink == EPERM, "shrinking a sealed range: %s", shrink ? pc_strerror(shrink) : "success");
	int move = pc_mremap(b, SEAL_PAGES * ps, 2 * SEAL_PAGES * ps, MREMAP_MAYMOVE, NULL, &p);
	expect_refused(ctx, "mremap move", move, b);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(mmap_fixed_refused, "mseal.mmap_fixed.eperm", MSEAL_F,
	 "mmap(MAP_FIXED) over a sealed range fails with EPERM")
{
	char *b = sealed_range(ctx, RW);
	void *p = mmap(b, pl_page_size(), RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	expect_refused(ctx, "mmap(MAP_FIXED)", p == MAP_FAILED ? errno : 0, b);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(dontneed_readonly_refused, "mseal.madvise_dontneed.eperm_readonly_anon",
	 MSEAL_F | PC_FB(PC_F_MADV_DONTNEED),
	 "MADV_DONTNEED on sealed read-only anonymous memory fails with EPERM")
{
	char *b = sealed_range(ctx, PROT_READ);
	expect_refused(ctx, "madvise(MADV_DONTNEED)", pc_madvise(b, SEAL_PAGES * pl_page_size(), MADV_DONTNEED), b);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(dontneed_writable, "mseal.madvise_dontneed.writable_anon", MSEAL_F | PC_FB(PC_F_MADV_DONTNEED),
	 "MADV_DONTNEED on sealed writable anonymous memory: refused (EPERM, contents kept) or done (zero); observed")
{
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
}

PC_PROBE_NEEDS(seal_hole, "mseal.seal.enomem_over_hole", MSEAL_F,
	 "mseal of a range with a hole fails with ENOMEM and seals nothing")
{
	size_t ps = pl_page_size();
	char *b;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&b));
	PC_SETUP(ctx, pl_unmap(b + ps, ps));
	int e = pc_mseal(b, 3 * ps, 0);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == ENOMEM, "expected ENOMEM, got %s", e ? pc_strerror(e) : "success");
	int u = munmap(b, ps) == 0 ? 0 : errno;
	PC_CHECK(ctx, u == 0, "the first page was sealed by a failed mseal (munmap: %s)", pc_strerror(u));
	pc_pass(ctx);
}
