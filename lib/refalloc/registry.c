/* The radix map from 4 MiB address chunk to segment: how free() knows a
 * pointer is ours before touching any memory it points near. Two levels over
 * 48-bit addresses; leaves are mapped on demand and never freed. Readers take
 * no lock; writers hold the heap lock. */
#include "internal.h"

#include <errno.h>

#define ADDR_BITS 48
#define CHUNK_BITS (ADDR_BITS - RA_SEG_SHIFT)
#define LEAF_BITS (CHUNK_BITS / 2)
#define TOP_BITS (CHUNK_BITS - LEAF_BITS)
#define LEAF_LEN ((size_t)1 << LEAF_BITS)

typedef struct ra_seg *_Atomic leaf_t;
static leaf_t *_Atomic top[(size_t)1 << TOP_BITS];

struct ra_seg *ra_lookup(const void *p)
{
	uintptr_t chunk = (uintptr_t)p >> RA_SEG_SHIFT;
	if (chunk >> CHUNK_BITS)
		return NULL;
	leaf_t *leaf = atomic_load_explicit(&top[chunk >> LEAF_BITS], memory_order_acquire);
	if (!leaf)
		return NULL;
	return atomic_load_explicit(&leaf[chunk & (LEAF_LEN - 1)], memory_order_acquire);
}

/* Must be called with the heap lock held. */
static int set_range(struct ra_seg *s, struct ra_seg *value)
{
	uintptr_t first = (uintptr_t)s->base >> RA_SEG_SHIFT;
	uintptr_t last = ((uintptr_t)s->base + s->map_len - 1) >> RA_SEG_SHIFT;
	if (last >> CHUNK_BITS)
		return ENOMEM;
	for (uintptr_t c = first; c <= last; c++) {
		leaf_t *leaf = atomic_load_explicit(&top[c >> LEAF_BITS], memory_order_relaxed);
		if (!leaf) {
			void *m;
			int e = pl_map_anon(LEAF_LEN * sizeof(leaf_t), &m);
			if (e)
				return e;
			leaf = m;
			atomic_store_explicit(&top[c >> LEAF_BITS], leaf, memory_order_release);
		}
		atomic_store_explicit(&leaf[c & (LEAF_LEN - 1)], value, memory_order_release);
	}
	return 0;
}

int ra_register(struct ra_seg *s)
{
	return set_range(s, s);
}

void ra_unregister(struct ra_seg *s)
{
	/* Every leaf exists already (registration made them), so this cannot fail. */
	(void)set_range(s, NULL);
}
