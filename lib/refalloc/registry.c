/* The radix map from 4 MiB address chunk to segment: how free() knows a
 * pointer is ours before touching any memory it points near. Two levels over
 * 48-bit addresses; leaves are mapped on demand and never freed. Readers take
 * no lock; writers hold the heap lock. */
#include "internal.h"

#include <errno.h>

leaf_t *_Atomic ra_radix_top[(size_t)1 << RA_TOP_BITS];

/* Must be called with the heap lock held. */
static int set_range(struct ra_seg *s, struct ra_seg *value)
{
	uintptr_t first = (uintptr_t)s->base >> RA_SEG_SHIFT;
	uintptr_t last = ((uintptr_t)s->base + s->map_len - 1) >> RA_SEG_SHIFT;
	if (last >> RA_CHUNK_BITS)
		return ENOMEM;
	for (uintptr_t c = first; c <= last; c++) {
		leaf_t *leaf = atomic_load_explicit(&ra_radix_top[c >> RA_LEAF_BITS], memory_order_relaxed);
		if (!leaf) {
			void *m;
			int e = pl_map_anon(RA_LEAF_LEN * sizeof(leaf_t), &m);
			if (e)
				return e;
			leaf = m;
			atomic_store_explicit(&ra_radix_top[c >> RA_LEAF_BITS], leaf, memory_order_release);
		}
		atomic_store_explicit(&leaf[c & (RA_LEAF_LEN - 1)], value, memory_order_release);
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
