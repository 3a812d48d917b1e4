/* Small objects: 72 size classes (16-byte steps to 128, then eight per power
 * of two to 32 KiB, so at most 12.5% of a block is slack), per-thread caches
 * over per-class span lists. Double frees are caught by the free-block
 * marker (internal.h), which costs the malloc/free pair no atomic instruction. */
#include "internal.h"

#include <errno.h>
#include <string.h>

uint32_t ra_class_size[RA_NCLASS];
uint32_t ra_class_limit[RA_NCLASS];

static __thread struct ra_tcache tc;

void ra_classes_init(void)
{
	for (unsigned c = 0; c < RA_NCLASS; c++) {
		size_t size;
		if (c < 8) {
			size = (size_t)(c + 1) * 16;
		} else {
			unsigned lg = 7 + (c - 8) / RA_STEPS, sub = (c - 8) % RA_STEPS;
			size = ((size_t)1 << lg) + (size_t)(sub + 1) * ((size_t)1 << (lg - RA_STEP_SHIFT));
		}
		if (size < RA_MIN_BLOCK)
			size = RA_MIN_BLOCK; /* 128-bit pointers: the first class grows to hold two of them */
		ra_class_size[c] = (uint32_t)size;
		/* About 16 KiB of cached blocks per class (at least 4, at most 256): a refill
		 * links (touches) half of them, so this bounds the memory touched per class. */
		size_t limit = ((size_t)16 << 10) / size;
		ra_class_limit[c] = (uint32_t)(limit < 4 ? 4 : limit > 256 ? 256 : limit);
	}
}

static void tcache_exit(void *arg);

static void tcache_register(struct ra_tcache *t)
{
	pthread_mutex_lock(&ra_g.tc_lock);
	t->prev = NULL;
	t->next = ra_g.caches;
	if (ra_g.caches)
		ra_g.caches->prev = t;
	ra_g.caches = t;
	t->registered = true;
	pthread_mutex_unlock(&ra_g.tc_lock);
	/* So the thread's cache is flushed when it exits; without it the blocks stay parked. */
	(void)pthread_setspecific(ra_g.tc_key, t);
}

/* Only the owner writes its counters: relaxed stores, no read-modify-write. */
static inline void count_bytes(_Atomic uint64_t *c, size_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline uint32_t cached(const struct ra_tcache *t, unsigned cls)
{
	return atomic_load_explicit(&t->count[cls], memory_order_relaxed);
}

static inline void set_cached(struct ra_tcache *t, unsigned cls, uint32_t n)
{
	atomic_store_explicit(&t->count[cls], n, memory_order_relaxed);
}

uint64_t ra_cached_bytes(const struct ra_tcache *t)
{
	uint64_t sum = 0;
	for (unsigned c = 0; c < RA_NCLASS; c++)
		sum += (uint64_t)cached(t, c) * ra_class_size[c];
	return sum;
}

void ra_account(size_t allocated, size_t freed)
{
	struct ra_tcache *t = &tc;
	if (RA_UNLIKELY(!t->registered)) {
		if (t->exited) {
			/* The thread is being torn down: count straight into the totals. */
			pthread_mutex_lock(&ra_g.tc_lock);
			ra_g.dead_alloc_bytes += allocated;
			ra_g.dead_free_bytes += freed;
			pthread_mutex_unlock(&ra_g.tc_lock);
			return;
		}
		tcache_register(t);
	}
	if (allocated)
		count_bytes(&t->alloc_bytes, allocated);
	if (freed)
		count_bytes(&t->free_bytes, freed);
}

static size_t block_index(const struct ra_span *sp, const char *sbase, const void *p, bool *exact)
{
	size_t off = (size_t)((const char *)p - sbase);
	size_t idx = (size_t)(((uint64_t)off * sp->recip) >> 32);
	*exact = idx * sp->block_size == off;
	return idx;
}

/* Must be called with the class lock held: a fresh span for class cls, or NULL. */
static struct ra_span *span_new(unsigned cls)
{
	bool clean, pattern;
	pthread_mutex_lock(&ra_g.heap_lock);
	struct ra_span *sp = ra_spans_take(1, &clean, &pattern);
	if (sp) {
		uint32_t size = ra_class_size[cls];
		sp->kind = SPAN_SMALL;
		sp->cls = (uint8_t)cls;
		sp->block_size = size;
		sp->recip = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
		sp->capacity = (uint16_t)(RA_SPAN / size);
		sp->carved = sp->used = 0;
		sp->free_list = NULL;
	}
	pthread_mutex_unlock(&ra_g.heap_lock);
	return sp;
}

/* Must be called with the class lock held. */
static void partial_remove(unsigned cls, struct ra_span *sp)
{
	if (sp->prev)
		sp->prev->next = sp->next;
	else
		ra_g.partial[cls] = sp->next;
	if (sp->next)
		sp->next->prev = sp->prev;
	sp->in_partial = false;
}

/* Must be called with the class lock held. */
static void partial_add(unsigned cls, struct ra_span *sp)
{
	sp->prev = NULL;
	sp->next = ra_g.partial[cls];
	if (sp->next)
		sp->next->prev = sp;
	ra_g.partial[cls] = sp;
	sp->in_partial = true;
}

static struct ra_seg *seg_of(const void *p)
{
	return (struct ra_seg *)((uintptr_t)p & ~(uintptr_t)(RA_SEG - 1));
}

static uintptr_t *marker_slot(void *b)
{
	return (uintptr_t *)b + 1;
}

/* Must be called with the class lock held: move up to want blocks of sp to
 * t. Blocks of the span's free list are already chained and marked free, so
 * a run of them moves with one splice; fresh blocks are carved and marked. */
static unsigned take_blocks(struct ra_tcache *t, unsigned cls, struct ra_span *sp, unsigned want)
{
	unsigned got = 0;
	void *first = sp->free_list, *last = NULL;
	for (void *b = first; b && got < want; b = *(void **)b, got++)
		last = b;
	if (last) {
		sp->free_list = *(void **)last;
		*(void **)last = t->head[cls];
		t->head[cls] = first;
	}
	char *sbase = ra_span_base(seg_of(sp), sp);
	for (; got < want && sp->carved < sp->capacity; got++) {
		void *b = sbase + (size_t)sp->carved++ * sp->block_size;
		*marker_slot(b) = ra_g.free_marker;
		*(void **)b = t->head[cls];
		t->head[cls] = b;
	}
	sp->used = (uint16_t)(sp->used + got);
	if (!sp->free_list && sp->carved == sp->capacity)
		partial_remove(cls, sp);
	return got;
}

__attribute__((noinline)) static bool refill(struct ra_tcache *t, unsigned cls)
{
	unsigned want = ra_class_limit[cls] / 2, got = 0;
	if (!t->registered && !t->exited)
		tcache_register(t);
	pthread_mutex_lock(&ra_g.class_lock[cls]);
	while (got < want) {
		struct ra_span *sp = ra_g.partial[cls];
		if (!sp && got)
			break;
		if (!sp && (sp = span_new(cls)) != NULL)
			partial_add(cls, sp);
		if (!sp) {
			pthread_mutex_unlock(&ra_g.class_lock[cls]);
			if (ra_grow() != 0)
				return false;
			pthread_mutex_lock(&ra_g.class_lock[cls]);
			continue;
		}
		got += take_blocks(t, cls, sp, want - got);
	}
	pthread_mutex_unlock(&ra_g.class_lock[cls]);
	set_cached(t, cls, cached(t, cls) + got);
	ra_account((size_t)got * ra_class_size[cls], 0);
	return true;
}

/* Must be called with the class lock held: n blocks went back to sp's free list. */
static void span_took_back(unsigned cls, struct ra_span *sp, unsigned n)
{
	sp->used = (uint16_t)(sp->used - n);
	if (sp->used == 0) {
		struct ra_seg *s = seg_of(sp);
		if (sp->in_partial)
			partial_remove(cls, sp);
		pthread_mutex_lock(&ra_g.heap_lock);
		ra_spans_give(s, (unsigned)(sp - s->spans), 1);
		pthread_mutex_unlock(&ra_g.heap_lock);
	} else if (!sp->in_partial) {
		partial_add(cls, sp);
	}
}

/* Give blocks back to their spans until keep are left. Blocks freed one after
 * another often share a span: such a run is already chained (and marked
 * free), and moves with one splice. */
__attribute__((noinline)) static void flush(struct ra_tcache *t, unsigned cls, uint32_t keep)
{
	pthread_mutex_lock(&ra_g.class_lock[cls]);
	while (cached(t, cls) > keep) {
		void *first = t->head[cls], *last = first;
		struct ra_span *sp = ra_span_of(seg_of(first), first);
		uint32_t n = 1, most = cached(t, cls) - keep;
		for (void *next = *(void **)last; n < most && next && ra_span_of(seg_of(next), next) == sp;
		     next = *(void **)last, n++)
			last = next;
		t->head[cls] = *(void **)last;
		set_cached(t, cls, cached(t, cls) - n);
		ra_account(0, (size_t)n * ra_class_size[cls]);
		*(void **)last = sp->free_list;
		sp->free_list = first;
		span_took_back(cls, sp, n);
	}
	pthread_mutex_unlock(&ra_g.class_lock[cls]);
}

void ra_tcache_flush_all(struct ra_tcache *t)
{
	for (unsigned c = 0; c < RA_NCLASS; c++)
		if (cached(t, c))
			flush(t, c, 0);
}

static void tcache_exit(void *arg)
{
	struct ra_tcache *t = arg;
	ra_tcache_flush_all(t);
	pthread_mutex_lock(&ra_g.tc_lock);
	ra_g.dead_alloc_bytes += atomic_load(&t->alloc_bytes);
	ra_g.dead_free_bytes += atomic_load(&t->free_bytes);
	atomic_store(&t->alloc_bytes, 0);
	atomic_store(&t->free_bytes, 0);
	if (t->prev)
		t->prev->next = t->next;
	else
		ra_g.caches = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->registered = false;
	t->exited = true;
	pthread_mutex_unlock(&ra_g.tc_lock);
}

int ra_tcache_key_init(void)
{
	return pthread_key_create(&ra_g.tc_key, tcache_exit);
}

int ra_trim_small(void)
{
	ra_tcache_flush_all(&tc);
	pthread_mutex_lock(&ra_g.heap_lock);
	int e = ra_release_dirty(0);
	pthread_mutex_unlock(&ra_g.heap_lock);
	return e;
}

void *ra_small_alloc(unsigned cls)
{
	struct ra_tcache *t = &tc;
	void *b = t->head[cls];
	if (RA_UNLIKELY(!b)) {
		if (!refill(t, cls))
			return NULL;
		b = t->head[cls];
	}
	if (RA_UNLIKELY(*marker_slot(b) != ra_g.free_marker))
		ra_die("heap corruption: a free block was written to (use after free?)", b);
	t->head[cls] = *(void **)b;
	set_cached(t, cls, cached(t, cls) - 1);
	*marker_slot(b) = 0; /* live blocks carry no marker */
	return b;
}

/* Is b in this thread's cache of class cls? */
static bool in_own_cache(const struct ra_tcache *t, unsigned cls, const void *b)
{
	for (const void *x = t->head[cls]; x; x = *(void *const *)x)
		if (x == b)
			return true;
	return false;
}

/* Why freeing p (a small block of s that failed the checks) is an error. */
static const char *bad_free(struct ra_seg *s, const struct ra_tcache *t, void *p)
{
	struct ra_span *sp = ra_span_of(s, p);
	bool exact;
	size_t idx = block_index(sp, ra_span_base(s, sp), p, &exact);
	if (!exact)
		return "free of a pointer inside an allocation";
	if (idx >= sp->carved)
		return "free of a block never handed out";
	return in_own_cache(t, sp->cls, p) ? "double free (the block is in this thread's cache)"
					    : "double free (the block is back in its span or in another thread's cache, "
					      "or freed memory was copied into it)";
}

void ra_small_free(struct ra_seg *s, void *p)
{
	struct ra_tcache *t = &tc;
	struct ra_span *sp = ra_span_of(s, p);
	bool exact;
	size_t idx = block_index(sp, ra_span_base(s, sp), p, &exact);
	/* The marker is read only for an exact block: an interior pointer may end at a guard. */
	if (RA_UNLIKELY(!exact || idx >= sp->carved || *marker_slot(p) == ra_g.free_marker))
		ra_die(bad_free(s, t, p), p);
	unsigned cls = sp->cls;
	if (RA_UNLIKELY(!t->registered && !t->exited))
		ra_account(0, 0); /* registers the cache, so its blocks are counted as cached */
	*(void **)p = t->head[cls];
	*marker_slot(p) = ra_g.free_marker;
	t->head[cls] = p;
	uint32_t n = cached(t, cls) + 1;
	set_cached(t, cls, n);
	if (RA_UNLIKELY(n > ra_class_limit[cls] || t->exited))
		flush(t, cls, t->exited ? 0 : ra_class_limit[cls] / 2);
}

bool ra_small_live(struct ra_seg *s, const void *p)
{
	struct ra_span *sp = ra_span_of(s, p);
	bool exact;
	size_t idx = block_index(sp, ra_span_base(s, sp), p, &exact);
	return exact && idx < sp->carved && *marker_slot((void *)p) != ra_g.free_marker;
}
