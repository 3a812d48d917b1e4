/* madvise(MADV_DONTNEED): private anonymous memory reads zero afterwards and
 * its memory goes back at once; shared and file mappings keep, or re-read,
 * the object's contents. */
#include "config.h"
#include "pagelab/check.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define LEN_PAGES 256
#define SEED_MEM 1  /* written through the mapping */
#define SEED_FILE 2 /* written into the backing file beforehand */
#define DONTNEED PC_FB(PC_F_MADV_DONTNEED)

/* Put the fill pattern of seed into the backing file as the object's own data. */
static void file_fill(struct pc_ctx *ctx, const struct pc_map *m, unsigned seed)
{
	unsigned char *buf = malloc(m->len);
	if (!buf)
		pc_error(ctx, "malloc of %zu bytes failed", m->len);
	pc_fill(buf, m->len, seed);
	ssize_t n = pwrite(m->fd, buf, m->len, 0);
	int e = errno;
	free(buf);
	if (n != (ssize_t)m->len)
		pc_error(ctx, "pwrite of the backing file: %s", n < 0 ? pc_strerror(e) : "short write");
}

/* "old" (what the mapping held), "file" (the file's own data), "zero", "mixed" or "other". */
static const char *contents_label(const struct pc_map *m)
{
	const char *c = pc_contents(m->addr, m->len, SEED_MEM);
	if (strcmp(c, "other") == 0 && m->fd >= 0 && pc_check_fill(m->addr, m->len, SEED_FILE))
		return "file";
	return c;
}

/* What each kind must read after DONTNEED: anonymous private memory is
 * dropped (zero); a private file mapping re-reads the file; shared memory is
 * the object itself and keeps what was written. */
static const char *expected_after(enum pc_kind kind)
{
	if (pc_kind_private_anon(kind))
		return "zero";
	return kind == PC_PRIVATE_FILE ? "file" : "old";
}

static void dontneed_or_fail(struct pc_ctx *ctx, void *p, size_t len)
{
	pc_advise(ctx, p, len, MADV_DONTNEED, "MADV_DONTNEED");
}

PC_PROBE_KINDS_NEEDS(dontneed_contents, "madvise.dontneed.contents_after", PC_ALL_KINDS, DONTNEED,
	       "after MADV_DONTNEED private anonymous reads zero, shared keeps, private file re-reads the file")
{
	struct pc_map m;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	if (m.fd >= 0)
		file_fill(ctx, &m, SEED_FILE);
	size_t rss_filled, rss_after;
	pc_fill(m.addr, m.len, SEED_MEM);
	bool known = pc_try_rss(ctx, &rss_filled);
	dontneed_or_fail(ctx, m.addr, m.len);
	known = pc_try_rss(ctx, &rss_after) && known;
	pc_observe(ctx, "rss_after", "%s", known ? pc_rss_change(rss_filled, rss_after, m.len) : "unobservable");
	const char *got = contents_label(&m), *want = expected_after(pc_kind(ctx));
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, strcmp(got, want) == 0, "contents after MADV_DONTNEED: expected %s, observed %s", want, got);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(dontneed_rss, "madvise.dontneed.rss_after", PC_PRIVATE_ANON | PC_THP, DONTNEED,
	       "MADV_DONTNEED on private anonymous memory returns it at once (RSS and residency drop)")
{
	struct pc_map m;
	pc_map_or_skip(ctx, pc_rss_window(), &m);
	size_t rss_filled, rss_after, resident;
	memset(m.addr, 0x5a, m.len);
	bool known = pc_try_rss(ctx, &rss_filled);
	dontneed_or_fail(ctx, m.addr, m.len);
	known = pc_try_rss(ctx, &rss_after) && known;
	resident = pc_obs_resident_pages(ctx, m.addr, m.len);
	const char *change = known ? pc_rss_change(rss_filled, rss_after, m.len) : "unobservable";
	pc_observe(ctx, "rss_after", "%s", change);
	pc_measure(ctx, "resident_pages_after", "%zu of %zu", resident, m.len / pl_page_size());
	/* madvise(2) says the kernel "can free" the pages; that it does at once is Linux's behaviour. */
	PC_BEHAVIOUR(ctx, resident == 0, "expected no page resident right after MADV_DONTNEED (Linux frees them at "
		     "once), saw %zu of %zu", resident, m.len / pl_page_size());
	if (known)
		PC_BEHAVIOUR(ctx, strcmp(change, "dropped") == 0, "expected RSS to drop right after MADV_DONTNEED "
			     "(Linux frees the pages at once), saw it %s", change);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(dontneed_partial, "madvise.dontneed.partial_range", DONTNEED,
	       "MADV_DONTNEED of the middle pages of private anonymous memory zeroes only those pages")
{
	struct pc_map m;
	size_t ps = pl_page_size();
	pc_map_or_skip(ctx, 8 * ps, &m);
	unsigned char *copy = malloc(m.len);
	if (!copy)
		pc_error(ctx, "malloc of %zu bytes failed", m.len);
	pc_fill(m.addr, m.len, SEED_MEM);
	memcpy(copy, m.addr, m.len);
	char *mid = (char *)m.addr + 3 * ps;
	dontneed_or_fail(ctx, mid, 2 * ps);
	/* Neighbours losing data means the range was rounded outward. */
	PC_CHECK(ctx, memcmp(m.addr, copy, 3 * ps) == 0, "pages before the range changed");
	PC_CHECK(ctx, memcmp(mid + 2 * ps, copy + 5 * ps, 3 * ps) == 0, "pages after the range changed");
	bool zero = pc_all_bytes(mid, 2 * ps, 0);
	pc_observe(ctx, "contents_after", "%s", zero ? "zero" : pc_contents(mid, 2 * ps, 0));
	PC_CHECK(ctx, zero, "advised pages do not read zero");
	pc_observe(ctx, "neighbours", "kept");
	free(copy);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(dontneed_unaligned, "madvise.dontneed.unaligned_einval", DONTNEED,
	       "MADV_DONTNEED at an address that is not page-aligned fails with EINVAL")
{
	struct pc_map m;
	pc_map_or_skip(ctx, 2 * pl_page_size(), &m);
	int e = pc_madvise((char *)m.addr + 1, pl_page_size(), MADV_DONTNEED);
	pc_observe(ctx, "errno", "%s", e ? pc_strerror(e) : "none");
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	pc_unmap(&m);
	pc_pass(ctx);
}
