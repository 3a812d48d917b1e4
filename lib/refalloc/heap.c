/* Segments, spans and the release policy. Spans are taken and given back
 * under the heap lock; freed spans stay "dirty" (resident, unreleased) until
 * more than cfg.retain bytes are dirty, then every dirty range is released by
 * the policy at once, coalesced into as few page-layer calls as possible. */
#include "internal.h"

#include <errno.h>
#include <string.h>

static uint64_t run_bits(unsigned first, unsigned n)
{
	return (n >= 64 ? ~0ULL : ((1ULL << n) - 1)) << first;
}

int ra_seg_map(size_t len, size_t align, char **base, bool *pattern)
{
	void *p;
	if (!ra_g.refpage) {
		int e = pl_reserve(len, align, &p);
		if (e)
			return e;
		e = pl_commit(p, len);
		if (e) {
			(void)pl_unmap(p, len);
			return e;
		}
		*base = p;
		*pattern = false;
		return 0;
	}
	/* pl_map_pattern takes no alignment: map more and trim both ends. */
	enum pl_pattern_mode used;
	size_t over = len + align;
	if (over < len)
		return ENOMEM;
	int e = pl_map_pattern(over, ra_g.cfg.pattern, ra_g.pmode, &p, &used);
	if (e)
		return e;
	char *start = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	size_t head = (size_t)(start - (char *)p), tail = over - head - len;
	if (head)
		e = pl_unmap_pattern(p, head);
	if (!e && tail)
		e = pl_unmap_pattern(start + len, tail);
	if (e) {
		(void)pl_unmap_pattern(start, len);
		return e;
	}
	*base = start;
	*pattern = used != PL_PATTERN_MEMSET;
	return 0;
}

void ra_seg_unmap(char *base, size_t len, bool pattern)
{
	int e = pattern ? pl_unmap_pattern(base, len) : pl_unmap(base, len);
	if (e)
		ra_warn("cannot unmap a segment", strerror(e));
}

/* Guard the page after the header and the last span: overruns fault instead of
 * reaching the next segment or the block metadata. */
static int guard_small(struct ra_seg *s)
{
	size_t page = ra_g.page;
	if (sizeof(*s) + page <= RA_SPAN) {
		int e = pl_guard(s->base + RA_SPAN - page, page);
		if (e)
			return e;
	}
	return pl_guard(s->base + RA_GUARD_SPAN * RA_SPAN, RA_SPAN);
}

/* A new small segment; called with no allocator lock held. */
int ra_grow(void)
{
	char *base;
	bool pattern;
	int e = ra_seg_map(RA_SEG, RA_SEG, &base, &pattern);
	if (e)
		return e;
	struct ra_seg *s = (struct ra_seg *)base;
	if (pattern)
		memset(s, 0, sizeof(*s)); /* pattern memory does not read zero */
	s->magic = RA_MAGIC;
	s->kind = SEG_SMALL;
	s->pattern = pattern;
	s->base = base;
	s->map_len = RA_SEG;
	s->free_mask = s->clean_mask = RA_USABLE_SPANS;
	e = guard_small(s);
	pthread_mutex_lock(&ra_g.heap_lock);
	if (!e)
		e = ra_register(s);
	if (!e) {
		s->next = ra_g.small_segs;
		ra_g.small_segs = s;
		atomic_fetch_add(&ra_g.mapped, (RA_SPANS - 2) * RA_SPAN);
	}
	pthread_mutex_unlock(&ra_g.heap_lock);
	if (e)
		ra_seg_unmap(base, RA_SEG, pattern);
	return e;
}

int ra_take_back(char *p, size_t len, bool decommitted, bool reusable)
{
	if (decommitted)
		return pl_commit(p, len);
	if (reusable)
		return pl_reuse(p, len);
	return 0;
}

/* Dropped pages of a pattern mapping fault in as the pattern again; pages
 * pl_release_zero had to write zeros into (e.g. mlocked) stay resident and read zero. */
static bool all_dropped(const char *p, size_t len)
{
	size_t n;
	return pl_resident_pages(p, len, &n) == 0 && n == 0;
}

int ra_apply_release(char *p, size_t len, bool pattern, struct ra_after *after)
{
	int e = 0;
	*after = (struct ra_after){0};
	switch (ra_g.cfg.release) {
	case RA_RELEASE_NONE:
		return 0;
	case RA_RELEASE_RELEASE:
		e = pl_release(p, len);
		break;
	case RA_RELEASE_ZERO:
		e = pl_release_zero(p, len);
		after->clean = !pattern || (!e && all_dropped(p, len));
		break;
	case RA_RELEASE_REUSABLE:
		e = pl_reusable(p, len);
		after->reusable = true;
		break;
	case RA_RELEASE_DECOMMIT:
		/* Recommitted pages read zero: clean only where clean means zero. */
		e = pl_decommit(p, len);
		after->decommitted = true;
		after->clean = !pattern;
		break;
	}
	if (e) {
		*after = (struct ra_after){0};
		return e;
	}
	atomic_fetch_add(&ra_g.released, len);
	atomic_fetch_add(&ra_g.release_calls, 1);
	return 0;
}

/* Must be called with the heap lock held: release dirty runs of s until at most target bytes are dirty. */
static int release_segment(struct ra_seg *s, size_t target)
{
	int err = 0;
	while (s->dirty_mask && ra_g.dirty_bytes > target) {
		unsigned first = (unsigned)__builtin_ctzll(s->dirty_mask), n = 0;
		while (first + n < 64 && (s->dirty_mask >> (first + n)) & 1)
			n++;
		uint64_t bits = run_bits(first, n);
		struct ra_after after;
		int e = ra_apply_release(s->base + ((size_t)first << RA_SPAN_SHIFT), (size_t)n << RA_SPAN_SHIFT,
					 s->pattern, &after);
		s->dirty_mask &= ~bits;
		ra_g.dirty_bytes -= (size_t)n << RA_SPAN_SHIFT;
		if (e) {
			err = e;
			continue; /* the span stays usable, just not released */
		}
		s->clean_mask |= after.clean ? bits : 0;
		s->decommitted_mask |= after.decommitted ? bits : 0;
		s->reusable_mask |= after.reusable ? bits : 0;
	}
	return err;
}

/* Must be called with the heap lock held: release a cached large segment. */
static int release_large(struct ra_seg *s)
{
	struct ra_after after;
	int e = ra_apply_release(s->data, s->cap, s->pattern, &after);
	s->dirty = false;
	ra_g.dirty_bytes -= s->cap;
	if (e)
		return e;
	s->clean = after.clean;
	s->decommitted = after.decommitted;
	s->reusable = after.reusable;
	return 0;
}

/* Must be called with the heap lock held: release by the policy until at
 * most target bytes of free memory are dirty; large objects first. */
int ra_release_dirty(size_t target)
{
	int err = 0, e;
	if (ra_g.cfg.release == RA_RELEASE_NONE)
		return 0;
	for (struct ra_seg *s = ra_g.large_cache; s && ra_g.dirty_bytes > target; s = s->next)
		if (s->dirty && (e = release_large(s)) != 0)
			err = e;
	for (struct ra_seg *s = ra_g.small_segs; s && ra_g.dirty_bytes > target; s = s->next)
		if ((e = release_segment(s, target)) != 0)
			err = e;
	return err;
}

/* Must be called with the heap lock held: spans [first, first+n) of s become ours. */
static bool take_at(struct ra_seg *s, unsigned first, unsigned n, bool *clean)
{
	uint64_t bits = run_bits(first, n);
	char *p = s->base + ((size_t)first << RA_SPAN_SHIFT);
	if (ra_take_back(p, (size_t)n << RA_SPAN_SHIFT, (s->decommitted_mask & bits) != 0,
			 (s->reusable_mask & bits) != 0) != 0)
		return false;
	*clean = (s->clean_mask & bits) == bits;
	ra_g.dirty_bytes -= (size_t)__builtin_popcountll(s->dirty_mask & bits) << RA_SPAN_SHIFT;
	s->free_mask &= ~bits;
	s->dirty_mask &= ~bits;
	s->clean_mask &= ~bits;
	s->decommitted_mask &= ~bits;
	s->reusable_mask &= ~bits;
	return true;
}

static struct ra_span *take_first_run(unsigned n, bool dirty_only, bool *clean, bool *pattern)
{
	for (struct ra_seg *s = ra_g.small_segs; s; s = s->next) {
		uint64_t avail = dirty_only ? s->free_mask & s->dirty_mask : s->free_mask, run = avail;
		for (unsigned k = 1; k < n && run; k++)
			run &= avail >> k;
		if (!run)
			continue;
		unsigned first = (unsigned)__builtin_ctzll(run);
		if (!take_at(s, first, n, clean))
			continue;
		*pattern = s->pattern;
		return &s->spans[first];
	}
	return NULL;
}

/* Must be called with the heap lock held. Dirty spans first: they are
 * resident already, so reusing them costs no page faults. NULL when no
 * segment has n free spans in a row: the caller drops its locks, calls
 * ra_grow, and retries. */
struct ra_span *ra_spans_take(unsigned n, bool *clean, bool *pattern)
{
	struct ra_span *sp = ra_g.dirty_bytes ? take_first_run(n, true, clean, pattern) : NULL;
	return sp ? sp : take_first_run(n, false, clean, pattern);
}

/* Must be called with the heap lock held. */
void ra_spans_give(struct ra_seg *s, unsigned first, unsigned n)
{
	uint64_t bits = run_bits(first, n);
	for (unsigned i = first; i < first + n; i++)
		s->spans[i].kind = SPAN_FREE;
	s->free_mask |= bits;
	s->dirty_mask |= bits;
	s->clean_mask &= ~bits;
	ra_g.dirty_bytes += (size_t)n << RA_SPAN_SHIFT;
	/* Down to half the threshold, so a steady free/alloc cycle does not release every time. */
	if (ra_g.dirty_bytes > ra_g.cfg.retain)
		(void)ra_release_dirty(ra_g.cfg.retain / 2); /* a failed release leaves memory resident, which is allowed */
}

void *ra_medium_alloc(size_t size, bool *clean, bool *pattern)
{
	unsigned n = (unsigned)((size + RA_SPAN - 1) >> RA_SPAN_SHIFT);
	for (;;) {
		pthread_mutex_lock(&ra_g.heap_lock);
		struct ra_span *sp = ra_spans_take(n, clean, pattern);
		if (sp) {
			sp->kind = SPAN_MEDIUM;
			sp->nspans = (uint16_t)n;
			for (unsigned i = 1; i < n; i++)
				sp[i].kind = SPAN_TAIL;
			atomic_store(&sp->live, 1);
			pthread_mutex_unlock(&ra_g.heap_lock);
			struct ra_seg *s = (struct ra_seg *)((uintptr_t)sp & ~(uintptr_t)(RA_SEG - 1));
			ra_account((size_t)n << RA_SPAN_SHIFT, 0);
			return ra_span_base(s, sp);
		}
		pthread_mutex_unlock(&ra_g.heap_lock);
		if (ra_grow() != 0)
			return NULL;
	}
}

void ra_medium_free(struct ra_seg *s, struct ra_span *sp, void *p)
{
	if (p != ra_span_base(s, sp))
		ra_die("free of a pointer inside an allocation", p);
	if (atomic_exchange(&sp->live, 0) != 1)
		ra_die("double free", p);
	ra_account(0, (size_t)sp->nspans << RA_SPAN_SHIFT);
	pthread_mutex_lock(&ra_g.heap_lock);
	ra_spans_give(s, (unsigned)(sp - s->spans), sp->nspans);
	pthread_mutex_unlock(&ra_g.heap_lock);
}

/* Grow a medium object in place when the spans after it are free. */
bool ra_medium_grow(struct ra_seg *s, struct ra_span *sp, size_t size)
{
	unsigned first = (unsigned)(sp - s->spans), old = sp->nspans;
	unsigned n = (unsigned)((size + RA_SPAN - 1) >> RA_SPAN_SHIFT);
	if (size > RA_MEDIUM_MAX || first + n > RA_GUARD_SPAN)
		return false;
	bool ok = false, clean;
	pthread_mutex_lock(&ra_g.heap_lock);
	uint64_t more = run_bits(first + old, n - old);
	if ((s->free_mask & more) == more && take_at(s, first + old, n - old, &clean)) {
		for (unsigned i = old; i < n; i++)
			sp[i].kind = SPAN_TAIL;
		sp->nspans = (uint16_t)n;
		ok = true;
	}
	pthread_mutex_unlock(&ra_g.heap_lock);
	if (ok)
		ra_account((size_t)(n - old) << RA_SPAN_SHIFT, 0);
	return ok;
}
