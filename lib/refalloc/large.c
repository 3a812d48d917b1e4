/* Large and over-aligned objects: one segment each (header page, guard, data,
 * guard page). Freed ones wait in a small cache, released by the policy like
 * free spans, and are reused for a request of up to their size and at least
 * half of it; the oldest are unmapped when the cache is full. */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Measured (refalloc/none churn, 16 blocks per batch, 2-16 MiB): with 8
 * entries every batch unmapped half its blocks and refaulted their pages
 * (8200 faults and 16 ms per 64 MiB batch against none and 0.1 ms with 16
 * entries or more); 64 leaves room for batches four times that, and looking
 * through 64 entries costs nothing next to one mapping. The byte bound is
 * what the "none" policy may keep resident. */
#define CACHE_MAX 64
#define CACHE_MAX_BYTES ((size_t)256 << 20)

/* Must be called with the heap lock held. */
static void cache_unlink(struct ra_seg *s)
{
	struct ra_seg **pp = &ra_g.large_cache;
	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	s->next = NULL;
	ra_g.large_cached--;
	ra_g.large_cached_bytes -= s->cap;
	if (s->dirty) {
		s->dirty = false;
		ra_g.dirty_bytes -= s->cap;
	}
}

/* Must be called with the heap lock held: the best cached fit, taken back. */
static struct ra_seg *cache_take(size_t cap, size_t align)
{
	struct ra_seg *best = NULL;
	for (struct ra_seg *s = ra_g.large_cache; s; s = s->next) {
		bool fits = s->cap >= cap && s->cap / 2 <= cap && ((uintptr_t)s->data & (align - 1)) == 0;
		if (fits && (!best || s->cap < best->cap))
			best = s;
	}
	if (!best)
		return NULL;
	/* Not usable again (e.g. recommit refused): leave it for eviction. */
	if (ra_take_back(best->data, best->cap, best->decommitted, best->reusable) != 0)
		return NULL;
	cache_unlink(best);
	best->decommitted = best->reusable = false;
	return best;
}

/* Must be called with the heap lock held. */
static void all_link(struct ra_seg *s)
{
	s->all_prev = NULL;
	s->all_next = ra_g.large_all;
	if (ra_g.large_all)
		ra_g.large_all->all_prev = s;
	ra_g.large_all = s;
}

/* Must be called with the heap lock held. */
static void all_unlink(struct ra_seg *s)
{
	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		ra_g.large_all = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
}

static struct ra_seg *large_new(size_t cap, size_t align)
{
	size_t page = ra_g.page, total = align + cap + page;
	if (total < cap)
		return NULL;
	char *base;
	bool pattern;
	if (ra_seg_map(total, align > RA_SEG ? align : RA_SEG, &base, &pattern) != 0)
		return NULL;
	struct ra_seg *s = (struct ra_seg *)base;
	if (pattern)
		memset(s, 0, offsetof(struct ra_seg, free_mask)); /* pattern memory does not read zero */
	s->magic = RA_MAGIC;
	s->kind = SEG_LARGE;
	s->pattern = pattern;
	s->base = base;
	s->map_len = total;
	s->data = base + align;
	s->cap = cap;
	s->align = align;
	s->clean = true;
	int e = pl_guard(base + page, align - page);
	if (!e)
		e = pl_guard(s->data + cap, page);
	pthread_mutex_lock(&ra_g.heap_lock);
	if (!e)
		e = ra_register(s);
	if (!e) {
		all_link(s);
		atomic_fetch_add(&ra_g.mapped, cap);
	}
	pthread_mutex_unlock(&ra_g.heap_lock);
	if (e) {
		ra_seg_unmap(base, total, pattern);
		return NULL;
	}
	return s;
}

void *ra_large_alloc(size_t size, size_t align, bool *clean, bool *pattern)
{
	size_t page = ra_g.page;
	if (align < RA_SPAN)
		align = RA_SPAN; /* the header page and a guard fit before the data */
	size_t cap = (size + page - 1) & ~(page - 1);
	if (cap < size)
		return NULL;
	pthread_mutex_lock(&ra_g.heap_lock);
	struct ra_seg *s = cache_take(cap, align);
	pthread_mutex_unlock(&ra_g.heap_lock);
	if (!s)
		s = large_new(cap, align);
	if (!s)
		return NULL;
	*clean = s->clean;
	*pattern = s->pattern;
	s->clean = false;
	atomic_store(&s->live, 1);
	ra_account(s->cap, 0);
	return s->data;
}

/* Must be called with the heap lock held: unlink the oldest cached segments
 * beyond the limits onto *victims, to be unmapped after unlocking. */
static void cache_evict(struct ra_seg **victims)
{
	while (ra_g.large_cached > CACHE_MAX || ra_g.large_cached_bytes > CACHE_MAX_BYTES) {
		struct ra_seg *old = ra_g.large_cache;
		while (old->next)
			old = old->next;
		cache_unlink(old);
		all_unlink(old);
		ra_unregister(old);
		atomic_fetch_sub(&ra_g.mapped, old->cap);
		old->next = *victims;
		*victims = old;
	}
}

void ra_large_free(struct ra_seg *s, void *p)
{
	if (p != s->data)
		ra_die("free of a pointer inside an allocation", p);
	if (atomic_exchange(&s->live, 0) != 1)
		ra_die("double free", p);
	ra_account(0, s->cap);
	struct ra_seg *victims = NULL;
	pthread_mutex_lock(&ra_g.heap_lock);
	s->next = ra_g.large_cache;
	ra_g.large_cache = s;
	ra_g.large_cached++;
	ra_g.large_cached_bytes += s->cap;
	s->dirty = true;
	s->clean = false;
	ra_g.dirty_bytes += s->cap;
	cache_evict(&victims);
	if (ra_g.dirty_bytes > ra_g.cfg.retain)
		(void)ra_release_dirty(ra_g.cfg.retain / 2); /* a failed release leaves memory resident, which is allowed */
	pthread_mutex_unlock(&ra_g.heap_lock);
	while (victims) {
		struct ra_seg *v = victims;
		victims = v->next;
		ra_seg_unmap(v->base, v->map_len, v->pattern);
	}
}
