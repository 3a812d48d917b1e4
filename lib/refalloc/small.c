/* Small objects: 72 size classes (16-byte steps to 128, then eight per power
 * of two to 32 KiB, so at most 12.5% of a block is slack), per-thread caches over per-class span lists. A bit per block
 * records "handed out": set on malloc, cleared on free, each with one atomic
 * read-modify-write, so a double free or a block handed out twice is caught
 * whichever thread's cache the block sits in. */
#include "internal.h"

#include <errno.h>
#include <string.h>

uint32_t ra_class_size[RA_NCLASS];
uint32_t ra_class_limit[RA_NCLASS];

static __thread struct ra_tcache tc;

unsigned ra_class_of(size_t size)
{
	if (size <= 128)
		return size ? (unsigned)((size - 1) >> 4) : 0;
	unsigned lg = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
	return 8 + (lg - 7) * RA_STEPS + (unsigned)(((size - 1) >> (lg - RA_STEP_SHIFT)) & (RA_STEPS - 1));
}

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
		atomic_store_explicit(&t->alloc_bytes, atomic_load_explicit(&t->alloc_bytes, memory_order_relaxed) + allocated, memory_order_relaxed);
	if (freed)
		atomic_store_explicit(&t->free_bytes, atomic_load_explicit(&t->free_bytes, memory_order_relaxed) + freed, memory_order_relaxed);
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

/* Must be called with the class lock held: move up to want blocks of sp to t. */
static unsigned take_blocks(struct ra_tcache *t, unsigned cls, struct ra_span *sp, unsigned want)
{
	unsigned got = 0;
	char *sbase = ra_span_base(seg_of(sp), sp);
	while (got < want && (sp->free_list || sp->carved < sp->capacity)) {
		void *b = sp->free_list;
		if (b)
			sp->free_list = *(void **)b;
		else
			b = sbase + (size_t)sp->carved++ * sp->block_size;
		sp->used++;
		*(void **)b = t->head[cls];
		t->head[cls] = b;
		got++;
	}
	if (!sp->free_list && sp->carved == sp->capacity)
		partial_remove(cls, sp);
	return got;
}

static bool refill(struct ra_tcache *t, unsigned cls)
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
	t->count[cls] += got;
	return true;
}

/* Must be called with the class lock held: b goes back to its span. */
static void block_return(unsigned cls, void *b)
{
	struct ra_seg *s = seg_of(b);
	struct ra_span *sp = ra_span_of(s, b);
	*(void **)b = sp->free_list;
	sp->free_list = b;
	if (--sp->used == 0) {
		if (sp->in_partial)
			partial_remove(cls, sp);
		pthread_mutex_lock(&ra_g.heap_lock);
		ra_spans_give(s, (unsigned)(sp - s->spans), 1);
		pthread_mutex_unlock(&ra_g.heap_lock);
	} else if (!sp->in_partial) {
		partial_add(cls, sp);
	}
}

static void flush(struct ra_tcache *t, unsigned cls, uint32_t keep)
{
	pthread_mutex_lock(&ra_g.class_lock[cls]);
	while (t->count[cls] > keep) {
		void *b = t->head[cls];
		t->head[cls] = *(void **)b;
		t->count[cls]--;
		block_return(cls, b);
	}
	pthread_mutex_unlock(&ra_g.class_lock[cls]);
}

void ra_tcache_flush_all(struct ra_tcache *t)
{
	for (unsigned c = 0; c < RA_NCLASS; c++)
		if (t->count[c])
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
	t->head[cls] = *(void **)b;
	t->count[cls]--;
	struct ra_seg *s = seg_of(b);
	struct ra_span *sp = ra_span_of(s, b);
	bool exact;
	size_t idx = block_index(sp, ra_span_base(s, sp), b, &exact);
	uint64_t bit = 1ULL << (idx & 63);
	uint64_t old = atomic_fetch_or_explicit(&s->bits[sp - s->spans][idx >> 6], bit, memory_order_relaxed);
	if (RA_UNLIKELY(old & bit))
		ra_die("heap corruption: a block about to be handed out is already in use", b);
	ra_account(sp->block_size, 0);
	return b;
}

void ra_small_free(struct ra_seg *s, void *p)
{
	struct ra_span *sp = ra_span_of(s, p);
	bool exact;
	size_t idx = block_index(sp, ra_span_base(s, sp), p, &exact);
	if (RA_UNLIKELY(!exact))
		ra_die("free of a pointer inside an allocation", p);
	uint64_t bit = 1ULL << (idx & 63);
	uint64_t old = atomic_fetch_and_explicit(&s->bits[sp - s->spans][idx >> 6], ~bit, memory_order_relaxed);
	if (RA_UNLIKELY(!(old & bit)))
		ra_die("double free (or free of a block never handed out)", p);
	struct ra_tcache *t = &tc;
	unsigned cls = sp->cls;
	ra_account(0, sp->block_size);
	*(void **)p = t->head[cls];
	t->head[cls] = p;
	if (RA_UNLIKELY(++t->count[cls] > ra_class_limit[cls] || t->exited)) {
		flush(t, cls, t->exited ? 0 : ra_class_limit[cls] / 2);
	}
}

bool ra_small_live(struct ra_seg *s, const void *p)
{
	struct ra_span *sp = ra_span_of(s, p);
	bool exact;
	size_t idx = block_index(sp, ra_span_base(s, sp), p, &exact);
	uint64_t w = atomic_load_explicit(&s->bits[sp - s->spans][idx >> 6], memory_order_relaxed);
	return exact && ((w >> (idx & 63)) & 1);
}
