/* madvise beyond each advice's own probe: every advice accepted on the
 * mapping it applies to, ENOMEM for ranges with holes, MADV_POPULATE_* against
 * protections and holes at either end, MADV_WILLNEED on PROT_NONE memory, on
 * untouched memory (residency observed: systems differ) and on swapped-out
 * shared memory, MADV_WIPEONFORK with length zero. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "duet.h"
#include "pl_abi.h"

#define SEED 47

struct advice {
	const char *name;
	int value;
	bool anon;         /* applies to private anonymous memory; else to a shared file mapping */
	enum pc_feature f; /* the feature it is (PC_F_NONE: the POSIX advice every madvise knows) */
};

#define ADVICE(n, anon, f) {#n, n, anon, f}
static const struct advice advice_table[] = {
	ADVICE(MADV_NORMAL, false, PC_F_NONE), ADVICE(MADV_RANDOM, false, PC_F_NONE),
	ADVICE(MADV_SEQUENTIAL, false, PC_F_NONE), ADVICE(MADV_WILLNEED, false, PC_F_MADV_WILLNEED),
	ADVICE(MADV_DONTNEED, false, PC_F_MADV_DONTNEED), ADVICE(MADV_REMOVE, false, PC_F_MADV_REMOVE),
	ADVICE(MADV_DONTFORK, false, PC_F_MADV_DONTFORK), ADVICE(MADV_DOFORK, false, PC_F_MADV_DONTFORK),
	ADVICE(MADV_MERGEABLE, false, PC_F_MADV_MERGEABLE), ADVICE(MADV_UNMERGEABLE, false, PC_F_MADV_MERGEABLE),
	ADVICE(MADV_HUGEPAGE, true, PC_F_MADV_HUGEPAGE), ADVICE(MADV_NOHUGEPAGE, true, PC_F_MADV_HUGEPAGE),
	ADVICE(MADV_DONTDUMP, false, PC_F_MADV_DONTDUMP), ADVICE(MADV_DODUMP, false, PC_F_MADV_DONTDUMP),
	ADVICE(MADV_FREE, true, PC_F_MADV_FREE), ADVICE(MADV_WIPEONFORK, true, PC_F_MADV_WIPEONFORK),
	ADVICE(MADV_KEEPONFORK, true, PC_F_MADV_WIPEONFORK), ADVICE(MADV_COLD, true, PC_F_MADV_COLD),
	ADVICE(MADV_PAGEOUT, true, PC_F_MADV_PAGEOUT),
};

/* Each advice is judged by its feature: one this system lacks (its feature probe says so, with
 * evidence) is recorded and not counted; one it has must be accepted on the memory madvise(2)
 * says it applies to, and a refusal there is the system refusing what it offers. */
PC_PROBE(every_advice, "madvise.every_advice.accepted",
	 "each advice this system has is accepted on the mapping it applies to; absent ones are not counted")
{
	struct pc_map file, anon;
	size_t len = 10 * pl_page_size();
	int judged = 0, absent = 0;
	const char *refused = NULL;
	pc_map_kind_or_skip(ctx, PC_SHARED_FILE, len, &file);
	pc_map_kind_or_skip(ctx, PC_PRIVATE_ANON, len, &anon);
	pc_fill(file.addr, len, SEED);
	pc_fill(anon.addr, len, SEED);
	for (size_t i = 0; i < sizeof(advice_table) / sizeof(advice_table[0]); i++) {
		const struct advice *a = &advice_table[i];
		if (a->f != PC_F_NONE && !pc_feature_present(a->f)) {
			pc_observe(ctx, a->name, "absent here (feature.%s)", pc_feature_name(a->f));
			absent++;
			continue;
		}
		void *p = a->anon ? anon.addr : file.addr;
		int e = pc_madvise(p, len, a->value);
		pc_observe(ctx, a->name, "%s", e == 0 ? "accepted" : pl_errno_name(e));
		judged++;
		if (e && !refused)
			refused = pc_fmt("%s on %s memory refused with %s, though this system has it", a->name,
					 a->anon ? "private anonymous" : "shared", pc_strerror(e));
	}
	pc_measure(ctx, "advice_judged", "%d (%d absent)", judged, absent);
	if (refused)
		pc_fail_refused(ctx, "%s", refused);
	pc_pass(ctx);
}

PC_PROBE(enomem_hole, "madvise.enomem.range_with_hole",
	 "MADV_NORMAL and MADV_WILLNEED over a range whose last page is unmapped fail with ENOMEM")
{
	size_t ps = pl_page_size();
	char *p;
	PC_SETUP(ctx, pl_map_anon(4 * ps, (void **)&p));
	PC_SETUP(ctx, pl_unmap(p + 3 * ps, ps));
	int normal = pc_madvise(p, 4 * ps, MADV_NORMAL), willneed = pc_madvise(p, 4 * ps, MADV_WILLNEED);
	pc_observe(ctx, "normal", "%s", normal ? pl_errno_name(normal) : "none");
	pc_observe(ctx, "willneed", "%s", willneed ? pl_errno_name(willneed) : "none");
	PC_CHECK(ctx, normal == ENOMEM && willneed == ENOMEM, "expected ENOMEM for both, got %s and %s",
		 pl_errno_name(normal), pl_errno_name(willneed));
	pc_pass(ctx);
}

static void populate_errors(struct pc_ctx *ctx, int prot, int want_read, int want_write)
{
	size_t len = 16 * pl_page_size();
	pc_need_advice(ctx, MADV_POPULATE_READ, "MADV_POPULATE_READ");
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		pc_error(ctx, "mmap: %s", pc_strerror(errno));
	int r = pc_madvise(p, len, MADV_POPULATE_READ), w = pc_madvise(p, len, MADV_POPULATE_WRITE);
	pc_observe(ctx, "populate_read", "%s", r ? pl_errno_name(r) : "none");
	pc_observe(ctx, "populate_write", "%s", w ? pl_errno_name(w) : "none");
	PC_CHECK(ctx, r == want_read, "MADV_POPULATE_READ: expected %s, got %s", want_read ? pl_errno_name(want_read) : "success",
		 r ? pl_errno_name(r) : "success");
	PC_CHECK(ctx, w == want_write, "MADV_POPULATE_WRITE: expected %s, got %s",
		 want_write ? pl_errno_name(want_write) : "success", w ? pl_errno_name(w) : "success");
	pc_pass(ctx);
}

/* Three pages; `hole` is unmapped; populate [from, from+pages). */
static void populate_hole_at(struct pc_ctx *ctx, size_t hole, size_t from, size_t pages)
{
	size_t ps = pl_page_size();
	char *p;
	pc_need_advice(ctx, MADV_POPULATE_READ, "MADV_POPULATE_READ");
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&p));
	PC_SETUP(ctx, pl_unmap(p + hole * ps, ps));
	int r = pc_madvise(p + from * ps, pages * ps, MADV_POPULATE_READ);
	int w = pc_madvise(p + from * ps, pages * ps, MADV_POPULATE_WRITE);
	pc_observe(ctx, "populate_read", "%s", r ? pl_errno_name(r) : "none");
	pc_observe(ctx, "populate_write", "%s", w ? pl_errno_name(w) : "none");
	PC_CHECK(ctx, r == ENOMEM && w == ENOMEM, "expected ENOMEM for both, got %s and %s", pl_errno_name(r),
		 pl_errno_name(w));
	pc_pass(ctx);
}

PC_PROBE_NEEDS(populate_prot_read, "madvise.populate.prot_read",
	 PC_FB(PC_F_MADV_POPULATE_READ) | PC_FB(PC_F_MADV_POPULATE_WRITE),
	 "on PROT_READ memory MADV_POPULATE_READ works and MADV_POPULATE_WRITE fails with EINVAL")
{
	populate_errors(ctx, PROT_READ, 0, EINVAL);
}

PC_PROBE_NEEDS(populate_prot_write, "madvise.populate.prot_write_only",
	 PC_FB(PC_F_MADV_POPULATE_READ) | PC_FB(PC_F_MADV_POPULATE_WRITE),
	 "on PROT_WRITE-only memory MADV_POPULATE_READ fails with EINVAL and MADV_POPULATE_WRITE works")
{
	populate_errors(ctx, PROT_WRITE, EINVAL, 0);
}

PC_PROBE_NEEDS(populate_hole_end, "madvise.populate.hole_at_end_enomem",
	 PC_FB(PC_F_MADV_POPULATE_READ) | PC_FB(PC_F_MADV_POPULATE_WRITE),
	 "MADV_POPULATE_READ and _WRITE over a range ending in an unmapped page fail with ENOMEM")
{
	populate_hole_at(ctx, 1, 0, 2);
}

PC_PROBE_NEEDS(populate_hole_start, "madvise.populate.hole_at_start_enomem",
	 PC_FB(PC_F_MADV_POPULATE_READ) | PC_FB(PC_F_MADV_POPULATE_WRITE),
	 "MADV_POPULATE_READ and _WRITE over a range starting with an unmapped page fail with ENOMEM")
{
	populate_hole_at(ctx, 1, 1, 1);
}

PC_PROBE_NEEDS(willneed_prot_none, "madvise.willneed.prot_none_populated",
	 PC_FB(PC_F_MAP_POPULATE) | PC_FB(PC_F_MADV_WILLNEED),
	 "MADV_WILLNEED on populated memory made PROT_NONE succeeds (the kernel must not stumble on it)")
{
	size_t len = 32u << 20;
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		pc_error(ctx, "mmap: %s", pc_strerror(errno));
	PC_SETUP(ctx, pl_protect(p, len, PL_PROT_NONE));
	int e = pc_madvise(p, len, MADV_WILLNEED);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == 0, "MADV_WILLNEED on PROT_NONE memory: %s", pc_strerror(e));
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(willneed_residency, "madvise.willneed.residency_after", PC_PRIVATE_ANON | PC_SHARED_FILE | PC_SHARED_DISK,
	       PC_FB(PC_F_MADV_WILLNEED) | PC_FB(PC_F_MADV_DONTNEED),
	       "MADV_WILLNEED on memory never touched: whether it becomes resident is observed (systems differ)")
{
	struct pc_map m;
	size_t pages = 16, before, after;
	pc_map_or_skip(ctx, pages * pl_page_size(), &m);
	if (m.fd >= 0) {
		pc_fill(m.addr, m.len, SEED); /* the file's data, then out of this mapping */
		PC_SETUP(ctx, pc_madvise(m.addr, m.len, MADV_DONTNEED));
	}
	before = pc_obs_resident_pages(ctx, m.addr, m.len);
	pc_advise(ctx, m.addr, m.len, MADV_WILLNEED, "MADV_WILLNEED");
	after = pc_obs_resident_pages(ctx, m.addr, m.len);
	pc_measure(ctx, "resident_pages", "%zu before, %zu after of %zu", before, after, pages);
	pc_observe(ctx, "resident_after", "%s", after == pages ? "all" : after ? "some" : "none");
	if (m.fd >= 0)
		PC_CHECK(ctx, pc_check_fill(m.addr, m.len, SEED), "the file's data changed");
	else
		PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "untouched memory does not read zero");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(willneed_swapped_shmem, "madvise.willneed.swapped_shared_memory",
	 PC_FB(PC_F_MADV_PAGEOUT) | PC_FB(PC_F_MADV_WILLNEED),
	 "MADV_WILLNEED brings swapped-out shared memory back: it turns resident and keeps its data")
{
	struct pc_map m;
	size_t pages = 256;
	if (!pc_swap_available())
		pc_skip_prerequisite(ctx, "needs swap to page shared memory out: none configured (a kernel target's guest has it)");
	pc_map_kind_or_skip(ctx, PC_SHARED_ANON, pages * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	pc_advise(ctx, m.addr, m.len, MADV_PAGEOUT, "MADV_PAGEOUT");
	size_t out = pages - pc_obs_resident_pages(ctx, m.addr, m.len);
	if (out < pages / 2)
		pc_skip_prerequisite(ctx, "MADV_PAGEOUT swapped out only %zu of %zu pages", out, pages);
	pc_advise(ctx, m.addr, m.len, MADV_WILLNEED, "MADV_WILLNEED");
	size_t resident = 0;
	struct timespec tick = {0, 10 * 1000 * 1000};
	for (int i = 0; i < 300 && (resident = pc_obs_resident_pages(ctx, m.addr, m.len)) < pages; i++)
		nanosleep(&tick, NULL); /* read-ahead from swap completes in the background */
	pc_measure(ctx, "resident_after", "%zu of %zu (%zu were out)", resident, pages, out);
	pc_observe(ctx, "resident_after", "%s", resident == pages ? "all" : "some");
	/* MADV_WILLNEED is a hint (madvise(2): "it might be a good idea to read some pages ahead"). */
	PC_BEHAVIOUR(ctx, resident > pages - out, "expected MADV_WILLNEED to bring swapped pages back, saw none come back");
	PC_CHECK(ctx, pc_check_fill(m.addr, m.len, SEED), "shared memory lost data through swap");
	pc_pass(ctx);
}

/* What a child sees of the range: 0 data, 1 zero, 2 other, 3 failed. */
static int child_sees(char *p, size_t len)
{
	struct duet d;
	if (duet_fork(&d) != 0)
		return 3;
	if (d.pid == 0)
		_exit(pc_check_fill(p, len, SEED) ? 0 : pc_all_bytes(p, len, 0) ? 1 : 2);
	return duet_end(&d);
}

PC_PROBE_NEEDS(wipeonfork_zero_length, "madvise.wipeonfork.zero_length_no_effect",
	 PC_FB(PC_F_MADV_WIPEONFORK) | PC_FB(PC_F_FORK),
	 "MADV_WIPEONFORK of length zero succeeds and changes nothing: a child sees the data")
{
	size_t len = 4 * pl_page_size();
	char *p;
	pc_need_advice(ctx, MADV_WIPEONFORK, "MADV_WIPEONFORK");
	PC_SETUP(ctx, pl_map_anon(len, (void **)&p));
	pc_fill(p, len, SEED);
	pc_advise(ctx, p, 0, MADV_WIPEONFORK, "MADV_WIPEONFORK");
	int st = child_sees(p, len);
	pc_observe(ctx, "child_sees", "%s", st == 0 ? "data" : st == 1 ? "zero" : "other");
	PC_CHECK(ctx, st == 0, "after a zero-length MADV_WIPEONFORK a child does not see the data (status %d)", st);
	pc_pass(ctx);
}
