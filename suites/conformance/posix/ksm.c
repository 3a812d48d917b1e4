/* Page merging (KSM, Linux): identical pages advised MADV_MERGEABLE (or a
 * whole process opted in with prctl) are shared until written; a write to a
 * merged page copies it, MADV_UNMERGEABLE and turning the prctl off give
 * every page back its own copy, also after part of the range was discarded,
 * and a debugger's write into a merged PROT_NONE page unshares that page only.
 * Where the daemon merges zero-filled pages into the zero page, unmerging and
 * writing give them pages of their own. The prctl setting survives fork and
 * exec.
 * Needs the merging daemon running: a global setting the host's default run
 * leaves alone, which a kernel target's guest turns on. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "duet.h"
#include "pl_abi.h"

#define PAGES 64
#define SETTLE_MS 8000 /* two full scans; the probe's whole budget is the runner's timeout */
#define SETTLE_ROUNDS 3
#define MERGE PC_FB(PC_F_MADV_MERGEABLE)

static void need_merging(struct pc_ctx *ctx)
{
	bool on = false;
	int e = pl_merge_running(&on);
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "this system merges no pages (no KSM)");
	PC_SETUP(ctx, e);
	if (!on)
		pc_skip_prerequisite(ctx, "the page-merging daemon is not running (/sys/kernel/mm/ksm/run is 0, a global "
				     "setting): run on a kernel target, whose guest starts it");
	/* Pages that never merge keep this process on the daemon's list after the probe unmerges its own range. */
	char *keep;
	PC_SETUP(ctx, pl_map_anon(4 * pl_page_size(), (void **)&keep));
	pc_fill(keep, 4 * pl_page_size(), (unsigned)pl_pid()); /* unlike any other process's pages */
	pc_advise(ctx, keep, 4 * pl_page_size(), MADV_MERGEABLE, "MADV_MERGEABLE");
}

static size_t merged(struct pc_ctx *ctx)
{
	size_t n = 0;
	int e = pl_merged_pages(&n);
	if (e == ENOTSUP)
		pc_skip_unobservable(ctx, PC_CH_PAGE_FLAGS, "this system does not count a process's merged pages");
	PC_SETUP(ctx, e);
	return n;
}

static void settle(struct pc_ctx *ctx)
{
	int e = pl_merge_settle(SETTLE_MS);
	if (e == ETIMEDOUT)
		pc_skip_prerequisite(ctx, "the merging daemon did not go over memory twice within %d s", SETTLE_MS / 1000);
	PC_SETUP(ctx, e);
}

/* The merged-page count drops only when the daemon next goes over the range: let it, then read it. */
static size_t merged_after_scans(struct pc_ctx *ctx)
{
	settle(ctx);
	return merged(ctx);
}

/* PAGES pages all holding `byte`, in base pages; merged by advice unless the process opted in. */
static char *identical_pages(struct pc_ctx *ctx, unsigned char byte, bool advise)
{
	size_t len = PAGES * pl_page_size();
	char *p;
	PC_SETUP(ctx, pl_map_anon(len, (void **)&p));
	(void)pc_madvise(p, len, MADV_NOHUGEPAGE); /* refused only where there is no THP */
	memset(p, byte, len);
	if (advise)
		pc_advise(ctx, p, len, MADV_MERGEABLE, "MADV_MERGEABLE");
	settle(ctx);
	return p;
}

/* The daemon merges a page only on a later pass than the one that first saw it, and may skip pages that did
 * not merge for a while (smart scan, Linux 6.7): give it a few rounds of two passes. */
static size_t merged_eventually(struct pc_ctx *ctx)
{
	size_t n = merged(ctx);
	for (int i = 0; i < SETTLE_ROUNDS && n < PAGES / 2; i++)
		n = merged_after_scans(ctx);
	return n;
}

static char *merged_pages(struct pc_ctx *ctx, unsigned char byte)
{
	need_merging(ctx);
	char *p = identical_pages(ctx, byte, true);
	size_t n = merged_eventually(ctx);
	pc_measure(ctx, "merged_pages", "%zu of %d", n, PAGES);
	if (n < PAGES / 2) /* when the daemon merges is its own choice: nothing below can be judged without it */
		pc_differs(ctx, "expected the daemon to merge most of %d identical mergeable pages within %d rounds "
			   "of two scans (Linux's usual pace), saw %zu merged", PAGES, SETTLE_ROUNDS, n);
	return p;
}

PC_PROBE_NEEDS(merge, "ksm.merge.identical_pages", MERGE,
	       "identical pages advised MADV_MERGEABLE are merged by the daemon and still read their data")
{
	char *p = merged_pages(ctx, 0xcf);
	pc_observe(ctx, "merged", "yes");
	PC_CHECK(ctx, pc_all_bytes(p, PAGES * pl_page_size(), 0xcf), "merged pages read something else");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(write_copies, "ksm.merge.write_copies", MERGE,
	       "a write to one merged page changes that page only: the others keep the shared data")
{
	size_t ps = pl_page_size();
	char *p = merged_pages(ctx, 0xcf);
	memset(p + 3 * ps, 0x11, ps);
	bool others = pc_all_bytes(p, 3 * ps, 0xcf) && pc_all_bytes(p + 4 * ps, (PAGES - 4) * ps, 0xcf);
	pc_observe(ctx, "other_pages_after_write", "%s", others ? "unchanged" : "changed");
	PC_CHECK(ctx, others, "a write to a merged page showed in the pages merged with it");
	PC_CHECK(ctx, pc_all_bytes(p + 3 * ps, ps, 0x11), "the written page did not keep the write");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(unmerge, "ksm.unmerge.advice", MERGE,
	       "MADV_UNMERGEABLE gives every merged page its own copy again, with its data")
{
	char *p = merged_pages(ctx, 0xcf);
	pc_advise(ctx, p, PAGES * pl_page_size(), MADV_UNMERGEABLE, "MADV_UNMERGEABLE");
	size_t n = merged_after_scans(ctx);
	pc_observe(ctx, "merged_after", "%zu", n);
	PC_CHECK(ctx, n == 0, "%zu pages still merged after MADV_UNMERGEABLE", n);
	PC_CHECK(ctx, pc_all_bytes(p, PAGES * pl_page_size(), 0xcf), "unmerged pages lost their data");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(unmerge_discarded, "ksm.unmerge.after_discard", MERGE | PC_FB(PC_F_MADV_DONTNEED),
	       "MADV_UNMERGEABLE over merged pages of which half were discarded: none merged, the discarded half zero")
{
	size_t half = PAGES / 2 * pl_page_size();
	char *p = merged_pages(ctx, 0xcf);
	pc_advise(ctx, p, half, MADV_DONTNEED, "MADV_DONTNEED");
	pc_advise(ctx, p, 2 * half, MADV_UNMERGEABLE, "MADV_UNMERGEABLE");
	size_t n = merged_after_scans(ctx);
	pc_observe(ctx, "merged_after", "%zu", n);
	PC_CHECK(ctx, n == 0, "%zu pages still merged", n);
	PC_CHECK(ctx, pc_all_bytes(p, half, 0) && pc_all_bytes(p + half, half, 0xcf), "contents wrong after unmerging");
	pc_pass(ctx);
}

/* Pages of [p, p + pages) that map the shared zero page. */
static size_t zero_pages_in(struct pc_ctx *ctx, const char *p, size_t pages)
{
	size_t n = 0;
	for (size_t i = 0; i < pages; i++)
		n += pc_obs_zero_page(ctx, p + i * pl_page_size());
	return n;
}

/* The kernel's count of this process's pages merged into the zero page ("ksm_zero_pages" in
 * /proc/self/ksm_stat, Linux 6.10; system-wide in /sys/kernel/mm/ksm/ksm_zero_pages since 6.6): a kernel
 * that counts them also unshares them on MADV_UNMERGEABLE (both came with the same work). *count is
 * -1 where only the system-wide count exists. False where the kernel keeps no count at all. */
static bool zero_merges_counted(long *count)
{
	char buf[1024], sys[64];
	*count = -1;
	if (pl_read_file("/proc/self/ksm_stat", buf, sizeof(buf)) == 0) {
		const char *at = strstr(buf, "ksm_zero_pages ");
		if (at) {
			*count = strtol(at + strlen("ksm_zero_pages "), NULL, 10);
			return true;
		}
	}
	return pl_read_file("/sys/kernel/mm/ksm/ksm_zero_pages", sys, sizeof(sys)) == 0;
}

PC_PROBE_NEEDS(unmerge_zero, "ksm.unmerge.zero_pages", MERGE,
	       "where the daemon merges zero-filled pages into the zero page, MADV_UNMERGEABLE gives them pages of their "
	       "own again (on kernels that count such merges), and so does a write; all read zero throughout")
{
	need_merging(ctx);
	bool on = false;
	int e = pl_merge_into_zero_page(&on);
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "this system's page merging has no zero-page mode");
	PC_SETUP(ctx, e);
	if (!on)
		pc_skip_prerequisite(ctx, "merging into the zero page is off (/sys/kernel/mm/ksm/use_zero_pages, a global "
				     "setting): run on a kernel target, whose guest turns it on");
	size_t ps = pl_page_size(), half = PAGES / 2;
	char *p = identical_pages(ctx, 0, true);
	size_t n = zero_pages_in(ctx, p, PAGES);
	for (int i = 0; i < SETTLE_ROUNDS && n < half; i++) {
		settle(ctx);
		n = zero_pages_in(ctx, p, PAGES);
	}
	pc_measure(ctx, "zero_pages_after_merge", "%zu of %d", n, PAGES);
	if (n < half) /* when the daemon merges is its own choice: nothing below can be judged without it */
		pc_differs(ctx, "expected the daemon to merge most of %d zero-filled mergeable pages into the zero page "
			   "within %d rounds of two scans, saw %zu", PAGES, SETTLE_ROUNDS, n);
	long counted_before, counted_after;
	bool counted = zero_merges_counted(&counted_before);
	pc_advise(ctx, p, half * ps, MADV_UNMERGEABLE, "MADV_UNMERGEABLE");
	size_t left = zero_pages_in(ctx, p, half);
	(void)zero_merges_counted(&counted_after);
	for (size_t i = half; i < PAGES; i++)
		p[i * ps] = (char)(i + 1);
	size_t written_left = zero_pages_in(ctx, p + half * ps, PAGES - half);
	PC_CHECK(ctx, pc_all_bytes(p, half * ps, 0), "unmerged zero pages do not read zero");
	PC_CHECK(ctx, written_left == 0, "%zu written pages still map the zero page", written_left);
	for (size_t i = half; i < PAGES; i++)
		PC_CHECK(ctx, p[i * ps] == (char)(i + 1) && pc_all_bytes(p + i * ps + 1, ps - 1, 0),
			 "written page %zu does not hold its own write", i);
	pc_observe(ctx, "zero_pages_after_unmerge", "%s", left ? "kept" : "own pages");
	pc_observe(ctx, "zero_merges_counted", "%s", counted ? "yes" : "no");
	if (counted_before >= 0 && counted_after >= 0)
		pc_measure(ctx, "ksm_zero_pages", "%ld before MADV_UNMERGEABLE, %ld after", counted_before, counted_after);
	if (left && !counted)
		pc_xfail(ctx, "%zu of %zu pages still map the zero page after MADV_UNMERGEABLE, on a kernel that keeps no "
			 "count of pages merged into the zero page (no ksm_zero_pages in /proc/self/ksm_stat or "
			 "/sys/kernel/mm/ksm): such kernels leave them mapped; unsharing them came with the count", left, half);
	/* Documentation/admin-guide/mm/ksm.rst: MADV_UNMERGEABLE unmerges whatever pages it had merged. */
	PC_CHECK(ctx, left == 0, "%zu of %zu pages still map the zero page after MADV_UNMERGEABLE, on a kernel that counts "
		 "pages merged into the zero page (ksm_zero_pages %ld before, %ld after)", left, half, counted_before,
		 counted_after);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(forced_write_prot_none, "ksm.merge.forced_write_unshares_prot_none",
	       MERGE | PC_FB(PC_F_FORCED_WRITE),
	       "a debugger's writes into merged pages made PROT_NONE unshare exactly those pages")
{
	size_t ps = pl_page_size(), before;
	char *p = merged_pages(ctx, 0x11);
	before = merged(ctx);
	PC_SETUP(ctx, pl_protect(p, PAGES * ps, PL_PROT_NONE));
	for (size_t i = 0; i < PAGES / 2; i++) {
		int e = pl_force_write(p + i * ps, (unsigned char)(0x20 + i));
		if (e == ENOTSUP || e == ENOSYS)
			pc_skip_unsupported(ctx, "this system has no debugger-style forced write: %s", pl_errno_name(e));
		if (e)
			pc_fail_refused(ctx, "a forced write into a merged PROT_NONE page was refused: %s", pc_strerror(e));
	}
	size_t after = merged_after_scans(ctx);
	PC_SETUP(ctx, pl_protect(p, PAGES * ps, PL_PROT_READ));
	bool own = true;
	for (size_t i = 0; i < PAGES / 2; i++)
		own = own && p[i * ps] == (char)(0x20 + i) && p[i * ps + 1] == 0x11;
	pc_measure(ctx, "merged_pages", "%zu before, %zu after", before, after);
	pc_observe(ctx, "written_pages", "%s", own ? "own copies" : "shared");
	PC_CHECK(ctx, own, "a forced write into a merged page did not give it its own copy");
	PC_CHECK(ctx, pc_all_bytes(p + PAGES / 2 * ps, PAGES / 2 * ps, 0x11), "unwritten merged pages changed");
	PC_BEHAVIOUR(ctx, after + PAGES / 2 <= before + 1, "expected the %d written pages to leave the merged count "
		     "(Linux's accounting), saw %zu merged before and %zu after", PAGES / 2, before, after);
	pc_pass(ctx);
}

/* Whole-process merging on or off: ENOSYS is unsupported, EPERM/EACCES the environment's,
 * any other refusal of a documented request the system's (prctl(2)). */
static void merge_all(struct pc_ctx *ctx, unsigned long on)
{
	int ret;
	if (!on)
		pc_skip_if_shadow_memory(ctx, "turning whole-process merging off (it unmerges every mapping)");
	int e = pc_prctl(PL_PR_SET_MEMORY_MERGE, on, 0, 0, 0, &ret);
	if (e == 0)
		return;
	if (e == ENOSYS)
		pc_skip_unsupported(ctx, "prctl: ENOSYS: not implemented here");
	if (e == EPERM || e == EACCES)
		pc_skip_prerequisite(ctx, "prctl(PR_SET_MEMORY_MERGE, %lu): %s (not allowed to this process)", on,
				     pl_errno_name(e));
	pc_fail_refused(ctx, "prctl(PR_SET_MEMORY_MERGE, %lu) refused: %s, while PR_GET_MEMORY_MERGE is known", on,
			pc_strerror(e));
}

/* PR_GET_MEMORY_MERGE's answer, or -1 when refused. */
static int merging_all(void)
{
	int ret;
	return pc_prctl(PL_PR_GET_MEMORY_MERGE, 0, 0, 0, 0, &ret) == 0 ? ret : -1;
}

PC_PROBE_NEEDS(prctl_set_get, "ksm.prctl.set_and_get", PC_FB(PC_F_KSM_PRCTL),
	       "prctl(PR_SET_MEMORY_MERGE) turns whole-process merging on and off, as PR_GET_MEMORY_MERGE reports")
{
	merge_all(ctx, 1);
	int on = merging_all();
	merge_all(ctx, 0);
	int off = merging_all();
	pc_observe(ctx, "reported", "%d then %d", on, off);
	PC_CHECK(ctx, on == 1 && off == 0, "PR_GET_MEMORY_MERGE reported %d after on and %d after off", on, off);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(prctl_fork, "ksm.prctl.inherited_by_fork", PC_FB(PC_F_KSM_PRCTL) | PC_FB(PC_F_FORK),
	       "a fork child inherits whole-process merging")
{
	struct duet d;
	merge_all(ctx, 1);
	PC_SETUP(ctx, duet_fork(&d));
	if (d.pid == 0)
		_exit(merging_all() == 1 ? 0 : 1);
	int st = duet_end(&d);
	pc_observe(ctx, "child_merging", "%s", st == 0 ? "on" : "off");
	PC_CHECK(ctx, st == 0, "the child does not inherit PR_SET_MEMORY_MERGE");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(prctl_exec, "ksm.prctl.kept_across_exec", PC_FB(PC_F_KSM_PRCTL),
	       "whole-process merging stays on in a program the process executes")
{
	bool on = false, off = true;
	merge_all(ctx, 1);
	int e = pl_merge_after_exec(&on);
	if (e == ENOTSUP)
		pc_skip_unobservable(ctx, PC_CH_NONE, "the merging setting of an executed program cannot be seen here "
				     "(needs ptrace of a child and its /proc/PID/ksm_stat or smaps)");
	PC_SETUP(ctx, e);
	merge_all(ctx, 0);
	PC_SETUP(ctx, pl_merge_after_exec(&off));
	pc_observe(ctx, "after_exec", "%s when on, %s when off", on ? "on" : "off", off ? "on" : "off");
	PC_CHECK(ctx, on, "whole-process merging was lost across exec");
	PC_CHECK(ctx, !off, "merging is on after exec although the process turned it off");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(prctl_merges, "ksm.prctl.merges_and_unmerges", PC_FB(PC_F_KSM_PRCTL) | MERGE,
	       "with whole-process merging on, identical pages merge without advice; turning it off unmerges them")
{
	need_merging(ctx);
	merge_all(ctx, 1);
	char *p = identical_pages(ctx, 0x5c, false);
	size_t on = merged_eventually(ctx);
	if (on < PAGES / 2) /* when the daemon merges is its own choice: unmerging cannot be judged without it */
		pc_differs(ctx, "expected the daemon to merge most of %d identical pages under PR_SET_MEMORY_MERGE "
			   "within %d rounds of two scans, saw %zu merged", PAGES, SETTLE_ROUNDS, on);
	merge_all(ctx, 0);
	size_t off = merged_after_scans(ctx);
	pc_measure(ctx, "merged_pages", "%zu on, %zu off", on, off);
	pc_observe(ctx, "merged_then_unmerged", "%s", on >= PAGES / 2 && off == 0 ? "yes" : "no");
	PC_CHECK(ctx, off == 0, "%zu pages still merged after turning it off", off);
	PC_CHECK(ctx, pc_all_bytes(p, PAGES * pl_page_size(), 0x5c), "pages lost their data");
	pc_pass(ctx);
}
