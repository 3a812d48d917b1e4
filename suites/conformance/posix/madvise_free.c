/* madvise(MADV_FREE): lazily freed private anonymous memory. Contents are
 * old-or-zero per page until written; a write cancels the free for that
 * page. Linux refuses it on shared and file mappings (EINVAL): a skip. */
#include "config.h"
#include "pagelab/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pl_abi.h"

#define LEN_PAGES 64
#define SEED 7
#define MARK 0xa5
#define FREE PC_FB(PC_F_MADV_FREE)

/* MADV_FREE on the probe's mapping (the feature is there: the probes need it), or skip saying why this kind is refused. */
static void free_or_skip(struct pc_ctx *ctx, void *p, size_t len)
{
	pc_need_advice(ctx, MADV_FREE, "MADV_FREE");
	/* Linux refuses it on shared and file mappings (EINVAL, as for unknown advice): unsupported there. */
	pc_advise(ctx, p, len, MADV_FREE, "MADV_FREE");
}

PC_PROBE_KINDS_NEEDS(free_contents, "madvise.free.contents_after", PC_ALL_KINDS, FREE,
	       "after MADV_FREE each page reads its old bytes or zero")
{
	struct pc_map m;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	free_or_skip(ctx, m.addr, m.len);
	const char *now = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after", "%s", now);
	bool reclaimed = pc_force_reclaim(m.addr, m.len);
	const char *later = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "contents_after_pageout", "%s", reclaimed ? later : "not forced");
	PC_CHECK(ctx, strcmp(now, "other") != 0, "a page holds neither its old bytes nor zero");
	PC_CHECK(ctx, strcmp(later, "other") != 0, "after reclaim a page holds neither old bytes nor zero");
	pc_unmap(&m);
	pc_pass(ctx);
}

/* Write MARK at the start of every even page; copy them as written. */
static void retouch_even_pages(char *p, size_t len, char *copy)
{
	size_t ps = pl_page_size();
	for (size_t off = 0; off < len; off += 2 * ps) {
		p[off] = (char)MARK;
		memcpy(copy + off, p + off, ps);
	}
}

PC_PROBE_KINDS_NEEDS(free_retouch, "madvise.free.contents_after_retouch", PC_ALL_KINDS, FREE,
	       "a write after MADV_FREE cancels the free: the written page survives forced reclaim")
{
	struct pc_map m;
	size_t ps = pl_page_size();
	pc_map_or_skip(ctx, LEN_PAGES * ps, &m);
	char *old = malloc(m.len), *written = malloc(m.len), *p = m.addr;
	if (!old || !written)
		pc_error(ctx, "malloc of %zu bytes failed", m.len);
	pc_fill(p, m.len, SEED);
	memcpy(old, p, m.len);
	free_or_skip(ctx, p, m.len);
	retouch_even_pages(p, m.len, written);
	bool reclaimed = pc_force_reclaim(p, m.len);
	pc_observe(ctx, "reclaim_forced", "%s", reclaimed ? "MADV_PAGEOUT" : "no");
	size_t lost = 0, kept_old = 0;
	for (size_t off = 0; off < m.len; off += 2 * ps) {
		lost += memcmp(p + off, written + off, ps) != 0;
		kept_old += memcmp(p + off + 1, old + off + 1, ps - 1) == 0;
	}
	pc_observe(ctx, "contents_after_retouch", "%s", kept_old == m.len / ps / 2 ? "old" : kept_old ? "mixed" : "zero");
	/* A lost written page is data loss: the free was not cancelled by the write. */
	PC_CHECK(ctx, lost == 0, "%zu written pages changed after reclaim", lost);
	size_t zero = 0;
	for (size_t off = ps; off < m.len; off += 2 * ps) {
		PC_CHECK(ctx, pc_pages_old_or_zero(p + off, old + off, ps), "unwritten page %zu neither old nor zero", off / ps);
		zero += pc_all_bytes(p + off, ps, 0);
	}
	pc_observe(ctx, "unwritten_after", "%s", zero == m.len / ps / 2 ? "zero" : zero ? "mixed" : "old");
	free(old);
	free(written);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(free_rss, "madvise.free.rss_after", PC_PRIVATE_ANON | PC_THP, FREE,
	       "RSS after MADV_FREE (at once, and after forced reclaim); pages reported gone read zero")
{
	struct pc_map m;
	pc_map_or_skip(ctx, pc_rss_window(), &m);
	char *old = malloc(m.len);
	if (!old)
		pc_error(ctx, "malloc of %zu bytes failed", m.len);
	size_t filled, after_free, after_reclaim, resident;
	pc_fill(m.addr, m.len, SEED);
	memcpy(old, m.addr, m.len);
	filled = pc_obs_rss(ctx);
	free_or_skip(ctx, m.addr, m.len);
	after_free = pc_obs_rss(ctx);
	pc_observe(ctx, "rss_after", "%s", pc_rss_change(filled, after_free, m.len));
	bool reclaimed = pc_force_reclaim(m.addr, m.len);
	after_reclaim = pc_obs_rss(ctx);
	resident = pc_obs_resident_pages(ctx, m.addr, m.len);
	pc_observe(ctx, "rss_after_pageout", "%s", reclaimed ? pc_rss_change(filled, after_reclaim, m.len) : "not forced");
	pc_measure(ctx, "resident_pages_after", "%zu of %zu", resident, m.len / pl_page_size());
	PC_CHECK(ctx, pc_pages_old_or_zero(m.addr, old, m.len), "a page reads neither old bytes nor zero");
	if (resident == 0)
		PC_CHECK(ctx, pc_all_bytes(m.addr, m.len, 0), "no page resident, yet contents are not zero");
	free(old);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(free_unaligned, "madvise.free.unaligned_einval", FREE,
	       "MADV_FREE at an address that is not page-aligned fails with EINVAL")
{
	struct pc_map m;
	pc_map_or_skip(ctx, 2 * pl_page_size(), &m);
	int e = pc_madvise((char *)m.addr + 1, pl_page_size(), MADV_FREE);
	pc_observe(ctx, "errno", "%s", e ? pc_strerror(e) : "none");
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	pc_unmap(&m);
	pc_pass(ctx);
}
