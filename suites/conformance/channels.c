/* The observation channels, proved before any probe relies on them. Each
 * channel probe checks its channel against something known for certain (a
 * page just written is resident and is not the zero page; a page never
 * mapped faults as unmapped). It passes when the channel tells the truth,
 * skips when this system has no such channel, and fails when it lies: the
 * runner then makes every probe that needs the channel skip (unobservable)
 * instead of failing for the channel's fault. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pl_abi.h"

#define PAGES 256

/* Fresh private anonymous memory in base pages (THP off where there is THP, so one touch is one page). */
static char *fresh_pages(struct pc_ctx *ctx, size_t pages)
{
	void *p;
	PC_SETUP(ctx, pl_map_anon(pages * pl_page_size(), &p));
	(void)pc_madvise(p, pages * pl_page_size(), MADV_NOHUGEPAGE); /* refused only where there is no THP */
	return p;
}

/* The channel's own call failed: ENOTSUP and its kind mean the system has no such channel. */
static void missing_or_error(struct pc_ctx *ctx, const char *what, int e)
{
	if (e == ENOTSUP || e == ENOSYS || e == ENOENT)
		pc_skip_unsupported(ctx, "%s: %s: this system cannot tell", what, pl_errno_name(e));
	pc_error(ctx, "%s: %s", what, pc_strerror(e));
}

PC_CHANNEL_PROBE(residency, "channel.residency.matches_touch", PC_CH_RESIDENCY,
		 "residency reports exactly the pages written, and none of the others")
{
	size_t ps = pl_page_size(), wrong = 0;
	unsigned char *vec = malloc(PAGES);
	char *p = fresh_pages(ctx, PAGES);
	if (!vec)
		pc_error(ctx, "malloc failed");
	for (size_t i = 0; i < PAGES; i += 2)
		p[i * ps] = 1;
	int e = pl_residency(p, PAGES * ps, vec);
	if (e)
		missing_or_error(ctx, "residency", e);
	for (size_t i = 0; i < PAGES; i++)
		wrong += vec[i] != (i % 2 == 0);
	pc_measure(ctx, "pages_reported_wrongly", "%zu of %d", wrong, PAGES);
	PC_CHECK(ctx, wrong == 0, "%zu of %d pages reported wrongly (written pages are the even ones)", wrong, PAGES);
	PC_SETUP(ctx, pl_unmap(p, PAGES * ps));
	free(vec);
	pc_pass(ctx);
}

PC_CHANNEL_PROBE(rss, "channel.rss.follows_touch", PC_CH_RSS,
		 "RSS rises by about the bytes written to fresh pages and falls by them when they are unmapped")
{
	size_t ps = pl_page_size(), len = 4 * PAGES * ps, before, touched, after;
	char *p = fresh_pages(ctx, 4 * PAGES);
	int e = pl_rss(&before);
	if (e)
		missing_or_error(ctx, "RSS", e);
	memset(p, 1, len);
	PC_SETUP(ctx, pl_rss(&touched));
	PC_SETUP(ctx, pl_unmap(p, len));
	PC_SETUP(ctx, pl_rss(&after));
	size_t rise = touched > before ? touched - before : 0, drop = touched > after ? touched - after : 0;
	pc_measure(ctx, "rise_pages", "%zu of %zu", rise / ps, len / ps);
	pc_measure(ctx, "drop_pages", "%zu of %zu", drop / ps, len / ps);
	/* Split per-task counters (Linux before 6.2) lag by up to 64 pages: far below a quarter of 1024. */
	PC_CHECK(ctx, rise >= len / 4 * 3, "RSS rose by %zu bytes after %zu were written", rise, len);
	PC_CHECK(ctx, drop >= len / 4 * 3, "RSS fell by %zu bytes after %zu were unmapped", drop, len);
	pc_pass(ctx);
}

PC_CHANNEL_PROBE(zero_page, "channel.zero_page.written_page_is_not", PC_CH_ZERO_PAGE,
		 "a page just written is never reported as the shared zero page, nor is one never touched")
{
	size_t ps = pl_page_size();
	char *p = fresh_pages(ctx, 2);
	bool written = true, untouched = true;
	p[0] = 1;
	int e = pl_is_zero_page(p, &written);
	if (e)
		missing_or_error(ctx, "zero-page identity", e);
	PC_SETUP(ctx, pl_is_zero_page(p + ps, &untouched));
	pc_observe(ctx, "written_page", "%s", written ? "zero page" : "not the zero page");
	pc_observe(ctx, "untouched_page", "%s", untouched ? "zero page" : "not the zero page");
	PC_CHECK(ctx, !written, "a written page is reported as the zero page");
	PC_CHECK(ctx, !untouched, "a page never touched is reported as the zero page");
	PC_SETUP(ctx, pl_unmap(p, 2 * ps));
	pc_pass(ctx);
}

PC_CHANNEL_PROBE(page_flags, "channel.page_flags.present_matches_touch", PC_CH_PAGE_FLAGS,
		 "the present flag is set for a written page and clear for one never touched")
{
	size_t ps = pl_page_size();
	char *p = fresh_pages(ctx, 2);
	unsigned written, untouched, known;
	p[0] = 1;
	int e = pl_page_flags(p, &written, &known);
	if (e)
		missing_or_error(ctx, "page flags", e);
	if (!(known & PL_PF_PRESENT))
		pc_skip_unsupported(ctx, "this system's page flags do not include presence");
	PC_SETUP(ctx, pl_page_flags(p + ps, &untouched, &known));
	pc_measure(ctx, "known_flags", "0x%x", known);
	PC_CHECK(ctx, written & PL_PF_PRESENT, "a written page is not flagged present");
	PC_CHECK(ctx, !(untouched & PL_PF_PRESENT), "a page never touched is flagged present");
	PC_SETUP(ctx, pl_unmap(p, 2 * ps));
	pc_pass(ctx);
}

PC_CHANNEL_PROBE(huge_backing, "channel.huge_backing.base_pages_not_huge", PC_CH_HUGE_BACKING,
		 "memory written in base pages (huge pages refused for it) is reported as not huge")
{
	size_t len = PAGES * pl_page_size(), huge = 1;
	char *p = fresh_pages(ctx, PAGES);
	memset(p, 1, len);
	int e = pl_huge_bytes(p, len, &huge);
	if (e)
		missing_or_error(ctx, "huge-page backing", e);
	pc_measure(ctx, "huge_bytes", "%zu", huge);
	PC_CHECK(ctx, huge == 0, "%zu bytes of a base-page range reported as huge", huge);
	PC_SETUP(ctx, pl_unmap(p, len));
	pc_pass(ctx);
}

PC_CHANNEL_PROBE(fault_counts, "channel.fault_counts.counts_first_touches", PC_CH_FAULT_COUNTS,
		 "writing to fresh pages raises the minor-fault count by at least one per page")
{
	size_t ps = pl_page_size();
	uint64_t minor0, major0, minor1, major1;
	char *p = fresh_pages(ctx, PAGES);
	int e = pl_fault_counts(&minor0, &major0);
	if (e)
		missing_or_error(ctx, "fault counters", e);
	for (size_t i = 0; i < PAGES; i++)
		p[i * ps] = 1;
	PC_SETUP(ctx, pl_fault_counts(&minor1, &major1));
	uint64_t faults = (minor1 - minor0) + (major1 - major0);
	pc_measure(ctx, "faults", "%llu for %d first touches", (unsigned long long)faults, PAGES);
	PC_CHECK(ctx, faults >= PAGES, "%llu faults counted for %d first touches", (unsigned long long)faults, PAGES);
	PC_SETUP(ctx, pl_unmap(p, PAGES * ps));
	pc_pass(ctx);
}

PC_CHANNEL_PROBE(si_code, "channel.si_code.tells_unmapped_from_refused", PC_CH_SI_CODE,
		 "a fault on an address never mapped and one on a PROT_NONE page carry the fault codes that say so")
{
	size_t ps = pl_page_size();
	char *hole, *none;
	/* Two reserved pages, the first unmapped again: nothing can reuse the hole before it is touched.
	 * Where part of a reservation cannot go, a reservation unmapped whole is the hole. */
	if (pl_caps()->partial_unmap) {
		PC_SETUP(ctx, pl_reserve(2 * ps, 0, (void **)&hole));
		PC_SETUP(ctx, pl_unmap(hole, ps));
		none = hole + ps;
	} else { /* the hole last: a reservation made after it could take its address */
		PC_SETUP(ctx, pl_reserve(ps, 0, (void **)&none));
		PC_SETUP(ctx, pl_reserve(ps, 0, (void **)&hole));
		PC_SETUP(ctx, pl_unmap(hole, ps));
	}
	struct pl_fault unmapped = pc_access(hole, false, 0), refused = pc_access(none, false, 0);
	pc_observe(ctx, "unmapped_address", "%s", unmapped.name);
	pc_observe(ctx, "prot_none_page", "%s", refused.name);
	if (unmapped.kind == PL_FAULT_NONE || refused.kind == PL_FAULT_NONE)
		pc_error(ctx, "an access that must fault did not (unmapped: %s, PROT_NONE: %s)", unmapped.name,
			 refused.name);
	if (unmapped.code == 0 && refused.code == 0)
		pc_skip_unsupported(ctx, "faults carry no code on this system");
	PC_CHECK(ctx, unmapped.kind == PL_FAULT_UNMAPPED, "a never-mapped address faulted as %s", unmapped.name);
	PC_CHECK(ctx, refused.kind == PL_FAULT_ACCESS, "a PROT_NONE page faulted as %s", refused.name);
	PC_SETUP(ctx, pl_unmap(none, ps));
	pc_pass(ctx);
}

PC_CHANNEL_PROBE(mappings, "channel.mappings.lists_a_new_mapping", PC_CH_MAPPINGS,
		 "a new mapping between two unmapped pages is listed once, and not at all once unmapped")
{
	size_t ps = pl_page_size(), listed = 0, gone = 1;
	char *r, *m;
	/* Where part of a reservation can go, its first and last pages leave unmapped neighbours. */
	bool trim = pl_caps()->partial_unmap;
	PC_SETUP(ctx, pl_reserve((trim ? 5 : 3) * ps, 0, (void **)&r));
	m = trim ? r + ps : r;
	if (trim) {
		PC_SETUP(ctx, pl_unmap(r, ps));
		PC_SETUP(ctx, pl_unmap(r + 4 * ps, ps));
	}
	int e = pl_mapping_count(m, 3 * ps, &listed);
	if (e)
		missing_or_error(ctx, "mapping list", e);
	PC_SETUP(ctx, pl_unmap(m, 3 * ps));
	PC_SETUP(ctx, pl_mapping_count(m, 3 * ps, &gone));
	pc_observe(ctx, "listed", "%zu", listed);
	pc_observe(ctx, "after_unmap", "%zu", gone);
	PC_CHECK(ctx, listed == 1, "a new mapping is listed %zu times", listed);
	PC_CHECK(ctx, gone == 0, "an unmapped range is still listed %zu times", gone);
	pc_pass(ctx);
}

/* The break as the program sees it: the kernel's own call where it can be asked, else libc's. */
static int current_break(uintptr_t *cur)
{
	void *now;
	if (pl_raw_break(NULL, &now) == 0) {
		*cur = (uintptr_t)now;
		return 0;
	}
	int e = pc_sbrk(0, &now);
	if (e == 0)
		*cur = (uintptr_t)now;
	return e;
}

PC_CHANNEL_PROBE(break_start, "channel.break_start.below_the_break", PC_CH_BREAK_START,
		 "the recorded start of the break is at or below the break, and the heap from there is mapped")
{
	uintptr_t start = 0, cur = 0;
	int e = pl_break_start(&start);
	if (e)
		missing_or_error(ctx, "where the break started", e);
	if ((e = current_break(&cur)) != 0)
		pc_skip_unsupported(ctx, "no way to read the break here: %s", pl_errno_name(e));
	pc_measure(ctx, "break_above_start_bytes", "%lld", (long long)(cur - start));
	/* Under a tool that emulates the break (valgrind) the kernel's record describes the tool's own heap. */
	PC_CHECK(ctx, cur >= start, "the break %p is below its recorded start %p", (void *)cur, (void *)start);
	if (cur >= start + pl_page_size()) {
		/* Mapped, not necessarily readable: musl's malloc turns the first page of
		 * the break into a PROT_NONE guard page (a refused access, not a hole). */
		struct pl_fault first = pc_access((void *)start, false, 0);
		pc_observe(ctx, "first_heap_page", "%s", first.name);
		PC_CHECK(ctx, first.kind == PL_FAULT_NONE || first.kind == PL_FAULT_ACCESS,
			 "the first page of the heap at the recorded start %p is not mapped (%s)", (void *)start,
			 first.name);
		PC_CHECK(ctx, pc_access_faults((void *)(cur - pl_page_size()), false, 0) == 0,
			 "the page just below the break %p cannot be read", (void *)cur);
	}
	pc_pass(ctx);
}
