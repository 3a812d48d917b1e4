/* Many threads allocating and freeing random sizes with their contents
 * stamped and checked, blocks freed by a thread other than the one that
 * allocated them, and fork while other threads allocate (the child must be
 * able to allocate, and its writes stay private). */
#include <pthread.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "pagelab/refalloc.h"
#include "../refalloc/tap.h"

#define THREADS 8
#define SLOTS 512
#define OPS 20000

static _Atomic(unsigned char *) exchange[64]; /* handed between threads */
static _Atomic int bad;
static _Atomic bool stop_forking;

static size_t random_size(uint64_t *rng)
{
	*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
	unsigned r = (unsigned)(*rng >> 33);
	switch (r % 16) {
	case 0: return 32769 + r % 400000;      /* medium */
	case 1: return r % 7 == 0 ? (1u << 20) + r % (3u << 20) : 4096 + r % 20000;
	default: return 1 + r % 512;           /* small */
	}
}

/* Every block starts with its size and a stamp, and is filled with the stamp's low byte. */
static unsigned char *make(size_t size, uint32_t stamp)
{
	if (size < 16)
		size = 16;
	unsigned char *p = ra_malloc(size);
	if (!p)
		return NULL;
	memcpy(p, &size, sizeof(size));
	memcpy(p + 8, &stamp, sizeof(stamp));
	memset(p + 12, (unsigned char)stamp, size - 12);
	return p;
}

static bool check_and_free(unsigned char *p)
{
	size_t size;
	uint32_t stamp;
	memcpy(&size, p, sizeof(size));
	memcpy(&stamp, p + 8, sizeof(stamp));
	bool good = size >= 16 && ra_usable_size(p) >= size;
	for (size_t i = 12; good && i < size; i += 61)
		good = p[i] == (unsigned char)stamp;
	good = good && p[size - 1] == (unsigned char)stamp;
	ra_free(p);
	return good;
}

static void *worker(void *arg)
{
	uint64_t rng = (uintptr_t)arg * 7919 + 1;
	unsigned char *slot[SLOTS] = {0};
	for (uint32_t op = 0; op < OPS; op++) {
		size_t i = (size_t)(rng >> 40) % SLOTS;
		if (slot[i] && !check_and_free(slot[i]))
			atomic_fetch_add(&bad, 1);
		slot[i] = make(random_size(&rng), op ^ (uint32_t)(uintptr_t)arg << 24);
		if (op % 16 == 0 && slot[i]) {
			/* Give this block to whichever thread looks next; free what was there. */
			unsigned char *old = atomic_exchange(&exchange[op / 16 % 64], slot[i]);
			slot[i] = NULL;
			if (old && !check_and_free(old))
				atomic_fetch_add(&bad, 1);
		}
	}
	for (size_t i = 0; i < SLOTS; i++)
		if (slot[i] && !check_and_free(slot[i]))
			atomic_fetch_add(&bad, 1);
	return NULL;
}

static int child_allocates(void *arg)
{
	unsigned char *shared = arg;
	shared[0] = 0x11; /* private copy: the parent must still see its own value */
	for (int i = 0; i < 2000; i++) {
		unsigned char *p = make(1 + (size_t)i * 37 % 70000, (uint32_t)i);
		if (!p || !check_and_free(p))
			return 1;
	}
	/* The child's counters restart at fork: its fault count cannot exceed its own total. */
	struct ra_stats st;
	struct rusage ru;
	if (ra_stats(&st) != 0 || getrusage(RUSAGE_SELF, &ru) != 0 || st.minor_faults > (uint64_t)ru.ru_minflt)
		return 2;
	return 0;
}

static void *forker(void *arg)
{
	int *failures = arg;
	unsigned char *mine = ra_malloc(4096);
	if (!mine)
		return NULL;
	for (int n = 0; n < 40 && !atomic_load(&stop_forking); n++) {
		mine[0] = 0x22;
		int st = in_child(child_allocates, mine, 30);
		if (st != 0 || mine[0] != 0x22)
			(*failures)++;
	}
	ra_free(mine);
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS], f;
	int fork_failures = 0;
	bool forking = pthread_create(&f, NULL, forker, &fork_failures) == 0;
	int created = 0;
	for (uintptr_t i = 0; i < THREADS; i++)
		created += pthread_create(&t[i], NULL, worker, (void *)(i + 1)) == 0;
	for (int i = 0; i < created; i++)
		pthread_join(t[i], NULL);
	atomic_store(&stop_forking, true);
	if (forking)
		pthread_join(f, NULL);
	for (size_t i = 0; i < 64; i++) {
		unsigned char *p = atomic_exchange(&exchange[i], NULL);
		if (p && !check_and_free(p))
			atomic_fetch_add(&bad, 1);
	}
	ok(created == THREADS, "%d worker threads started", created);
	ok(atomic_load(&bad) == 0, "contents intact across %d threads x %d operations (%d bad)", THREADS, OPS,
	   atomic_load(&bad));
	ok(forking && fork_failures == 0, "forks during allocation: children allocate, writes private (%d failed)",
	   fork_failures);
	struct ra_stats st;
	int e = ra_stats(&st);
	ok(e == 0 && st.in_use == 0, "everything freed: ra_stats=%d in_use=%zu", e, st.in_use);
	return tap_done();
}
