/* madvise: WILLNEED (a hint that keeps contents), REMOVE (frees the backing
 * store of shared memory: reads zero), an unknown advice value (EINVAL), and
 * the transparent-huge-page advice HUGEPAGE / NOHUGEPAGE / COLLAPSE, checked
 * through the page layer's huge-page backing. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define LEN_PAGES 64
#define SEED 5

PC_PROBE_KINDS_NEEDS(willneed_contents, "madvise.willneed.contents_kept", PC_ALL_KINDS,
	       PC_FB(PC_F_MADV_WILLNEED) | PC_FB(PC_F_MADV_DONTNEED),
	       "MADV_WILLNEED keeps every byte, also after the pages were dropped from the mapping")
{
	struct pc_map m;
	size_t resident;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	pc_advise(ctx, m.addr, m.len, MADV_WILLNEED, "MADV_WILLNEED");
	PC_CHECK(ctx, pc_check_fill(m.addr, m.len, SEED), "contents changed after MADV_WILLNEED");
	/* Shared memory outlives DONTNEED; WILLNEED must bring back the same data. */
	if (pc_kind_shared(m.kind)) {
		PC_SETUP(ctx, pc_madvise(m.addr, m.len, MADV_DONTNEED));
		PC_SETUP(ctx, pc_madvise(m.addr, m.len, MADV_WILLNEED));
	}
	resident = pc_obs_resident_pages(ctx, m.addr, m.len);
	pc_measure(ctx, "resident_pages_after", "%zu of %zu", resident, m.len / pl_page_size());
	const char *got = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, strcmp(got, "old") == 0, "contents after MADV_WILLNEED: %s", got);
	pc_unmap(&m);
	pc_pass(ctx);
}

/* REMOVE applies to shared writable mappings only; the refusals are documented. */
static void remove_or_skip(struct pc_ctx *ctx, void *p, size_t len)
{
	pc_need_advice(ctx, MADV_REMOVE, "MADV_REMOVE");
	int e = pc_madvise(p, len, MADV_REMOVE);
	/* madvise(2) documents EINVAL/EACCES for mappings that are not shared and writable. */
	if ((e == EINVAL || e == EACCES) && !pc_kind_shared(pc_kind(ctx)))
		pc_skip_unsupported(ctx, "MADV_REMOVE refused on %s mappings (%s): shared writable mappings only",
				    pc_kind_name(pc_kind(ctx)), pl_errno_name(e));
	if (e)
		pc_refusal(ctx, "madvise(MADV_REMOVE) on shared memory", e, pc_unknown_advice_errno(p, len));
}

PC_PROBE_KINDS_NEEDS(remove_zero, "madvise.remove.reads_zero", PC_ALL_KINDS, PC_FB(PC_F_MADV_REMOVE),
	       "MADV_REMOVE on shared memory frees the backing store: mapping and file read zero")
{
	struct pc_map m;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	remove_or_skip(ctx, m.addr, m.len);
	const char *got = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, strcmp(got, "zero") == 0, "contents after MADV_REMOVE: expected zero, observed %s", got);
	if (m.fd >= 0) {
		unsigned char *buf = malloc(m.len);
		if (!buf)
			pc_error(ctx, "malloc of %zu bytes failed", m.len);
		ssize_t n = pread(m.fd, buf, m.len, 0);
		PC_CHECK(ctx, n == (ssize_t)m.len, "pread of the file: %zd bytes", n);
		bool zero = pc_all_bytes(buf, m.len, 0);
		pc_observe(ctx, "file_after", "%s", zero ? "zero" : "not zero");
		/* The mapping reading zero while the file keeps data would be a stale view. */
		PC_CHECK(ctx, zero, "the file still holds data after MADV_REMOVE");
		free(buf);
	}
	pc_unmap(&m);
	pc_pass(ctx);
}

/* Advice values no system defines: each must be refused with EINVAL. */
static const int unknown_advice[] = {12345, 0x7fffffff, -1, -100};

PC_PROBE(unknown_einval, "madvise.unknown_advice.einval",
	 "madvise with an advice value the system does not define fails with EINVAL")
{
	struct pc_map m;
	pc_map_or_skip(ctx, 4 * pl_page_size(), &m);
	memset(m.addr, 1, m.len);
	for (size_t i = 0; i < sizeof(unknown_advice) / sizeof(unknown_advice[0]); i++) {
		int e = pc_madvise(m.addr, m.len, unknown_advice[i]);
		pc_observe(ctx, pc_fmt("errno_%d", unknown_advice[i]), "%s", e ? pl_errno_name(e) : "none");
		PC_CHECK(ctx, e == EINVAL, "advice %d: expected EINVAL, got %s", unknown_advice[i],
			 e ? pc_strerror(e) : "success");
	}
	PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 1), "refused advice changed the contents");
	pc_unmap(&m);
	pc_pass(ctx);
}

/* One huge page of private anonymous memory, aligned, no THP advice yet. */
static void *map_huge_aligned(struct pc_ctx *ctx, size_t *len)
{
	void *p;
	pc_need_thp(ctx);
	*len = pl_caps()->huge_page_size;
	PC_SETUP(ctx, pl_reserve(*len, *len, &p));
	PC_SETUP(ctx, pl_commit(p, *len));
	return p;
}

PC_PROBE_NEEDS(hugepage_huge, "madvise.hugepage.anon_huge", PC_FB(PC_F_MADV_HUGEPAGE),
	 "MADV_HUGEPAGE on an aligned range: touched memory reads zero; AnonHugePages observed")
{
	size_t len;
	char *p = map_huge_aligned(ctx, &len);
	pc_advise(ctx, p, len, MADV_HUGEPAGE, "MADV_HUGEPAGE");
	p[0] = 1;
	size_t huge = pc_obs_huge_bytes(ctx, p, len);
	pc_measure(ctx, "huge_bytes", "%zu", huge);
	pc_observe(ctx, "huge_after_first_touch", "%s", huge >= len ? "yes" : "no");
	PC_CHECK(ctx, pc_all_bytes(p + 1, len - 1, 0), "fresh huge-page memory does not read zero");
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

PC_PROBE_NEEDS(nohugepage_small, "madvise.nohugepage.no_huge", PC_FB(PC_F_MADV_HUGEPAGE),
	 "after MADV_HUGEPAGE then MADV_NOHUGEPAGE a fully touched aligned range holds no huge page")
{
	size_t len;
	char *p = map_huge_aligned(ctx, &len);
	/* The later advice must win: HUGEPAGE first makes the check bite where THP is "madvise". */
	pc_advise(ctx, p, len, MADV_HUGEPAGE, "MADV_HUGEPAGE");
	pc_advise(ctx, p, len, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");
	memset(p, 1, len);
	size_t huge = pc_obs_huge_bytes(ctx, p, len);
	pc_measure(ctx, "huge_bytes", "%zu", huge);
	pc_observe(ctx, "huge_after_full_touch", "%s", huge ? "yes" : "no");
	PC_CHECK(ctx, huge == 0, "%zu bytes of huge pages despite MADV_NOHUGEPAGE", huge);
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

/* MADV_COLLAPSE with a bounded retry on EAGAIN (a transient failure per madvise(2)). */
static int collapse(void *p, size_t len)
{
	int e = EAGAIN;
	for (int tries = 0; tries < 3 && e == EAGAIN; tries++)
		e = pc_madvise(p, len, MADV_COLLAPSE);
	return e;
}

PC_PROBE_NEEDS(collapse_huge, "madvise.collapse.anon_huge", PC_FB(PC_F_MADV_COLLAPSE),
	 "MADV_COLLAPSE turns a filled aligned range into a huge page, keeping every byte")
{
	size_t len;
	pc_need_advice(ctx, MADV_COLLAPSE, "MADV_COLLAPSE"); /* Linux 6.1 */
	char *p = map_huge_aligned(ctx, &len);
	pc_fill(p, len, SEED);
	pc_measure(ctx, "huge_bytes_before", "%zu", pc_obs_huge_bytes(ctx, p, len));
	int e = collapse(p, len);
	if (e == ENOMEM || e == EAGAIN || e == EBUSY)
		pc_skip_prerequisite(ctx, "MADV_COLLAPSE: %s: no huge page could be had now", pl_errno_name(e));
	if (e)
		pc_refusal(ctx, "madvise(MADV_COLLAPSE)", e, pc_unknown_advice_errno(p, len));
	size_t huge = pc_obs_huge_bytes(ctx, p, len);
	pc_measure(ctx, "huge_bytes_after", "%zu", huge);
	pc_observe(ctx, "huge_after", "%s", huge >= len ? "yes" : "no");
	/* Success with no huge page is a claim not honoured; lost bytes are data loss. */
	PC_CHECK(ctx, huge >= len, "MADV_COLLAPSE succeeded but only %zu bytes are in huge pages", huge);
	PC_CHECK(ctx, pc_check_fill(p, len, SEED), "contents changed by MADV_COLLAPSE");
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

PC_PROBE_NEEDS(collapse_nohuge, "madvise.collapse.nohugepage_einval",
	 PC_FB(PC_F_MADV_COLLAPSE) | PC_FB(PC_F_MADV_HUGEPAGE),
	 "MADV_COLLAPSE of a range marked MADV_NOHUGEPAGE fails with EINVAL and keeps it small")
{
	size_t len;
	pc_need_advice(ctx, MADV_COLLAPSE, "MADV_COLLAPSE"); /* Linux 6.1 */
	char *p = map_huge_aligned(ctx, &len);
	pc_advise(ctx, p, len, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");
	pc_fill(p, len, SEED);
	int e = collapse(p, len);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	size_t huge = pc_obs_huge_bytes(ctx, p, len);
	pc_measure(ctx, "huge_bytes_after", "%zu", huge);
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	PC_CHECK(ctx, huge == 0, "%zu bytes of huge pages despite MADV_NOHUGEPAGE", huge);
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}
