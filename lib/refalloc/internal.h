/* refalloc internals, shared by the lib/refalloc sources; not public.
 *
 * Layout. The heap is made of 4 MiB segments aligned to 4 MiB, each mapped
 * through the page layer. A small segment is 64 spans of 64 KiB: span 0 holds
 * this header (then a guard page), spans 1..62 hold objects, span 63 is a
 * guard. A span serves one small size class (16 B .. 32 KiB), or a run of
 * spans serves one medium object (up to 1 MiB). Larger or over-aligned objects
 * get a segment of their own (header span, data, guard page). A radix map from
 * 4 MiB address chunk to segment tells free() whether a pointer is ours.
 *
 * Threads. Each thread keeps a small cache of free blocks per size class
 * (plain thread-local lists, no atomics), refilled from and flushed to the
 * spans in batches under a per-class lock; segments and medium/large objects
 * are under one heap lock. Thread caches make the common malloc/free pair
 * free of locks and atomic instructions and keep freed memory hot in the
 * freeing thread, while per-class locks keep the shared state simple enough
 * to audit; a cross-thread free just lands in the freeing thread's cache.
 * Lock order: class, then heap.
 *
 * Double frees. A free small block (in a thread cache or back in its span)
 * carries a per-process random marker in its second word; handing it out
 * clears it. free() aborts on the marker (this thread's cache is searched to
 * say where the block was) and on a block its span never carved; malloc
 * aborts on a cached block without it (written after it was freed). A live
 * block holds the marker only if the program copied it out of freed memory.
 * No atomic instruction and no shared bitmap: the block's own cache line is
 * touched anyway, and runs of blocks move between caches and spans in one
 * splice because they stay marked.
 * Page-layer pattern mappings are made with no allocator lock held (the
 * pattern layer's fork handler allocates). */
#ifndef REFALLOC_INTERNAL_H
#define REFALLOC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagelab/platform.h"
#include "pagelab/refalloc.h"

#define RA_SEG_SHIFT 22
#define RA_SEG ((size_t)1 << RA_SEG_SHIFT)
#define RA_SPAN_SHIFT 16
#define RA_SPAN ((size_t)1 << RA_SPAN_SHIFT)
#define RA_SPANS 64
#define RA_GUARD_SPAN 63
#define RA_USABLE_SPANS 0x7ffffffffffffffeULL /* spans 1..62 */
#define RA_SMALL_MAX ((size_t)32768)
#define RA_MEDIUM_MAX ((size_t)1 << 20)
#define RA_STEP_SHIFT 3 /* 2^3 classes per power of two above 128 bytes */
#define RA_STEPS (1u << RA_STEP_SHIFT)
#define RA_NCLASS (8 + 8 * RA_STEPS)
/* A free block holds its free-list link and the free marker: two words, 16 bytes
 * where pointers are 8, 32 where they are capabilities (CheriBSD's purecap ABI). */
#define RA_MIN_BLOCK (2 * sizeof(void *) > 16 ? 2 * sizeof(void *) : 16)
_Static_assert(RA_MIN_BLOCK >= sizeof(void *) + sizeof(uintptr_t), "a free block holds its link and the free marker");
#define RA_MAGIC 0x72616c63u

#define RA_LIKELY(x) __builtin_expect(!!(x), 1)
#define RA_UNLIKELY(x) __builtin_expect(!!(x), 0)

enum ra_span_kind { SPAN_FREE, SPAN_SMALL, SPAN_MEDIUM, SPAN_TAIL };
enum ra_seg_kind { SEG_SMALL = 1, SEG_LARGE = 2 };

struct ra_seg;

struct ra_span {
	uint8_t kind;
	uint8_t cls;
	uint16_t nspans;     /* medium: length of the run */
	uint32_t block_size; /* small: class size */
	uint32_t recip;      /* small: 2^32 / block_size rounded up, for index = off * recip >> 32 */
	uint16_t capacity, carved, used;
	bool in_partial;
	_Atomic uint8_t live; /* medium: 1 while handed out */
	void *free_list;
	struct ra_span *next, *prev; /* the class's partial list */
};

struct ra_seg {
	uint32_t magic;
	uint8_t kind;
	bool pattern; /* mapped with pl_map_pattern: clean memory reads the pattern, not zero */
	char *base;
	size_t map_len;
	struct ra_seg *next;          /* small: all small segments; large: the free cache */
	struct ra_seg *all_next, *all_prev; /* large: every large segment */
	/* large segments: only the fields up to free_mask exist in their header page */
	char *data;
	size_t cap;       /* usable bytes at data */
	size_t align;     /* alignment data was placed for */
	_Atomic int live; /* 1 while handed out, 0 in the cache */
	bool clean, dirty, decommitted, reusable;
	/* small segments, under the heap lock; bit i is span i */
	uint64_t free_mask, dirty_mask, clean_mask, decommitted_mask, reusable_mask;
	struct ra_span spans[RA_SPANS];
};

/* What a release left behind: how the memory must be taken back and what it reads. */
struct ra_after {
	bool clean, decommitted, reusable;
};

struct ra_tcache {
	void *head[RA_NCLASS];
	_Atomic uint32_t count[RA_NCLASS]; /* written by the owner only, read by ra_stats */
	/* Bytes taken out of / given back to spans and the heap, written by the
	 * owner only: what is out minus what is cached is in use. The
	 * malloc/free pair of a cached block counts nothing. */
	_Atomic uint64_t alloc_bytes, free_bytes;
	struct ra_tcache *next, *prev;
	bool registered;
	bool exited; /* its thread-exit flush ran: the thread is going away */
};

struct ra_state {
	struct ra_config cfg;
	_Atomic bool refpage;        /* segments come from pl_map_pattern; cleared when a forked child cannot serve them */
	enum pl_pattern_mode pmode;  /* the mode serving refpage */
	size_t page;
	pthread_mutex_t heap_lock;
	pthread_mutex_t class_lock[RA_NCLASS];
	struct ra_span *partial[RA_NCLASS];
	struct ra_seg *small_segs;
	struct ra_seg *large_cache; /* freed large segments, newest first */
	struct ra_seg *large_all;
	size_t large_cached, large_cached_bytes;
	size_t dirty_bytes;          /* free, not yet released */
	_Atomic size_t mapped, released;
	_Atomic uint64_t release_calls;
	pthread_mutex_t tc_lock;
	struct ra_tcache *caches;
	uint64_t dead_alloc_bytes, dead_free_bytes;
	uint64_t start_minor, start_major;
	pthread_key_t tc_key;
	uintptr_t free_marker;       /* second word of every free small block */
};

extern struct ra_state ra_g;
extern _Atomic int ra_init_state; /* 0 not started, 1 starting, 2 ready */
extern uint32_t ra_class_size[RA_NCLASS];
extern uint32_t ra_class_limit[RA_NCLASS];

/* config.c */
void ra_warn(const char *msg, const char *detail);
_Noreturn void ra_die(const char *what, const void *p);

/* registry.c: 4 MiB chunk -> segment, two levels over 48-bit addresses */
#define RA_ADDR_BITS 48
#define RA_CHUNK_BITS (RA_ADDR_BITS - RA_SEG_SHIFT)
#define RA_LEAF_BITS (RA_CHUNK_BITS / 2)
#define RA_TOP_BITS (RA_CHUNK_BITS - RA_LEAF_BITS)
#define RA_LEAF_LEN ((size_t)1 << RA_LEAF_BITS)
typedef struct ra_seg *_Atomic leaf_t;
extern leaf_t *_Atomic ra_radix_top[(size_t)1 << RA_TOP_BITS];

/* The segment holding p, or NULL: how free() knows a pointer is ours. */
static inline struct ra_seg *ra_lookup(const void *p)
{
	uintptr_t chunk = (uintptr_t)p >> RA_SEG_SHIFT;
	if (chunk >> RA_CHUNK_BITS)
		return NULL;
	leaf_t *leaf = atomic_load_explicit(&ra_radix_top[chunk >> RA_LEAF_BITS], memory_order_acquire);
	if (!leaf)
		return NULL;
	return atomic_load_explicit(&leaf[chunk & (RA_LEAF_LEN - 1)], memory_order_acquire);
}
int ra_register(struct ra_seg *s);
void ra_unregister(struct ra_seg *s);

/* heap.c: segments, spans, release policy */
int ra_seg_map(size_t len, size_t align, char **base, bool *pattern);
void ra_seg_unmap(char *base, size_t len, bool pattern);
int ra_grow(void);
struct ra_span *ra_spans_take(unsigned n, bool *clean, bool *pattern);
void ra_spans_give(struct ra_seg *s, unsigned first, unsigned n);
int ra_release_dirty(size_t target);
void *ra_medium_alloc(size_t size, bool *clean, bool *pattern);
void ra_medium_free(struct ra_seg *s, struct ra_span *sp, void *p);
bool ra_medium_grow(struct ra_seg *s, struct ra_span *sp, size_t size);
int ra_apply_release(char *p, size_t len, bool pattern, struct ra_after *after);
int ra_take_back(char *p, size_t len, bool decommitted, bool reusable);

/* large.c */
void *ra_large_alloc(size_t size, size_t align, bool *clean, bool *pattern);
void ra_large_free(struct ra_seg *s, void *p);

/* small.c */
void *ra_small_alloc(unsigned cls);
void ra_small_free(struct ra_seg *s, void *p);
void ra_classes_init(void);
void ra_tcache_flush_all(struct ra_tcache *t);
void ra_account(size_t allocated, size_t freed);
/* Bytes of free blocks sitting in t. */
uint64_t ra_cached_bytes(const struct ra_tcache *t);
int ra_trim_small(void);
int ra_tcache_key_init(void);
bool ra_small_live(struct ra_seg *s, const void *p);

/* api.c */
void ra_start(void);
bool ra_in_start(void);
void *ra_boot_alloc(size_t size, size_t align);
bool ra_is_boot(const void *p);
size_t ra_boot_size(const void *p);

/* The size class serving size bytes (size <= RA_SMALL_MAX). */
static inline unsigned ra_class_of(size_t size)
{
	if (size <= 128)
		return size ? (unsigned)((size - 1) >> 4) : 0;
	unsigned lg = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
	return 8 + (lg - 7) * RA_STEPS + (unsigned)(((size - 1) >> (lg - RA_STEP_SHIFT)) & (RA_STEPS - 1));
}

static inline struct ra_span *ra_span_of(struct ra_seg *s, const void *p)
{
	return &s->spans[((uintptr_t)p >> RA_SPAN_SHIFT) & (RA_SPANS - 1)];
}

static inline char *ra_span_base(struct ra_seg *s, const struct ra_span *sp)
{
	return s->base + ((size_t)(sp - s->spans) << RA_SPAN_SHIFT);
}

static inline bool ra_ready(void)
{
	return RA_LIKELY(atomic_load_explicit(&ra_init_state, memory_order_acquire) == 2);
}

#endif
