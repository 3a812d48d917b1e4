/* refalloc's public functions: start-up, the malloc family, statistics, fork.
 *
 * Start-up runs inside the first allocation and may itself allocate (the page
 * layer's thread creation, pthread_atfork): such nested calls from the
 * starting thread are served from a static bootstrap arena, whose blocks are
 * never reused, so start-up never recurses into itself. */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ra_state ra_g = {
	.heap_lock = PTHREAD_MUTEX_INITIALIZER,
	.tc_lock = PTHREAD_MUTEX_INITIALIZER,
};
_Atomic int ra_init_state;
static bool configured;
static __thread bool starting;
static _Atomic(const char *) pattern_note; /* why pattern init falls back to memset, or NULL */
static _Atomic bool rearm_pending;         /* a forked child: pattern ranges not yet served again */
static pthread_mutex_t rearm_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread bool rearming;

/* ---- bootstrap arena ---- */

#define BOOT_SIZE ((size_t)1 << 20)
#define BOOT_HDR 16
static _Alignas(64) char boot[BOOT_SIZE];
static _Atomic size_t boot_used;

void *ra_boot_alloc(size_t size, size_t align)
{
	if (align < BOOT_HDR)
		align = BOOT_HDR;
	size_t old = atomic_load(&boot_used), start, end;
	do {
		start = (old + BOOT_HDR + align - 1) & ~(align - 1);
		end = start + size;
		if (size > BOOT_SIZE || end > BOOT_SIZE)
			return NULL;
	} while (!atomic_compare_exchange_weak(&boot_used, &old, end));
	memcpy(boot + start - sizeof(size_t), &size, sizeof(size_t));
	return boot + start;
}

bool ra_is_boot(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + BOOT_SIZE;
}

size_t ra_boot_size(const void *p)
{
	size_t size;
	memcpy(&size, (const char *)p - sizeof(size_t), sizeof(size_t));
	return size;
}

/* ---- start-up ---- */

static void fork_prepare(void)
{
	for (unsigned c = 0; c < RA_NCLASS; c++)
		pthread_mutex_lock(&ra_g.class_lock[c]);
	pthread_mutex_lock(&ra_g.heap_lock);
	pthread_mutex_lock(&ra_g.tc_lock);
}

/* Both sides: the forking thread holds every lock, so the state is consistent. */
static void fork_release(void)
{
	pthread_mutex_unlock(&ra_g.tc_lock);
	pthread_mutex_unlock(&ra_g.heap_lock);
	for (unsigned c = RA_NCLASS; c-- > 0;)
		pthread_mutex_unlock(&ra_g.class_lock[c]);
}

/* The child's fault counters restart at fork; its pattern ranges need serving again. */
static void fork_child(void)
{
	fork_release();
	if (pl_fault_counts(&ra_g.start_minor, &ra_g.start_major) != 0)
		ra_g.start_minor = ra_g.start_major = 0;
	if (atomic_load(&ra_g.refpage))
		atomic_store(&rearm_pending, true);
}

/* A function, not a direct call: where pthread_atfork is a macro that drops
 * its arguments (winpthreads: Windows has no fork), the handlers stay used. */
static int at_fork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	return pthread_atfork(prepare, parent, child);
}

/* Before any pattern mapping: the pattern layer's fork handlers must be
 * registered after ours, so they run inside ours. */
static void register_fork_handlers(void)
{
	static bool done;
	if (done)
		return;
	for (unsigned c = 0; c < RA_NCLASS; c++)
		pthread_mutex_init(&ra_g.class_lock[c], NULL);
	if (at_fork(fork_prepare, fork_release, fork_child) != 0)
		ra_warn("pthread_atfork failed: fork while another thread allocates may deadlock", NULL);
	done = true;
}

/* Does a page-layer pattern mapping of this mode work here? *used says how it was served. */
static bool try_pattern(enum pl_pattern_mode mode, enum pl_pattern_mode *used)
{
	void *p;
	if (pl_map_pattern(ra_g.page, ra_g.cfg.pattern, mode, &p, used) != 0)
		return false;
	(void)pl_unmap_pattern(p, ra_g.page);
	return *used != PL_PATTERN_MEMSET;
}

/* Can pattern-initialised pages come from the page layer, and in which mode?
 * Only modes that serve faults inside system calls: with a user-mode-only
 * userfaultfd, read(2) into a fresh block would fail with EFAULT. */
static bool find_refpage(enum ra_pattern_via via, enum pl_pattern_mode *mode)
{
	static const enum pl_pattern_mode tries[] = {PL_PATTERN_AUTO, PL_PATTERN_NATIVE, PL_PATTERN_UFFD_FULL};
	size_t ntries = via == RA_PATTERN_AUTO ? 1 : 3;
	enum pl_pattern_mode used;
	for (size_t i = 0; i < ntries; i++)
		if (try_pattern(tries[i], &used)) {
			*mode = used;
			return true;
		}
	if (try_pattern(PL_PATTERN_UFFD, &used) && used == PL_PATTERN_UFFD)
		atomic_store(&pattern_note, "only a user-mode userfaultfd here (system calls would get EFAULT): "
					    "the pattern is written with memset");
	else
		atomic_store(&pattern_note, "no reference-page mapping here: the pattern is written with memset");
	return false;
}

/* In a forked child, the first clean pattern block asks the page layer to
 * serve the inherited ranges again; if it cannot, the pattern is written. */
static bool pattern_served(void)
{
	if (RA_LIKELY(!atomic_load_explicit(&rearm_pending, memory_order_acquire)))
		return atomic_load_explicit(&ra_g.refpage, memory_order_relaxed);
	if (rearming)
		return false; /* an allocation made by the re-arming itself: memset is always right */
	pthread_mutex_lock(&rearm_lock);
	if (atomic_load(&rearm_pending)) {
		enum pl_pattern_mode used;
		rearming = true;
		if (!try_pattern(ra_g.pmode, &used)) {
			atomic_store(&ra_g.refpage, false);
			atomic_store(&pattern_note, "the forked child's pattern mappings cannot be served again: "
						    "the pattern is written with memset");
		}
		rearming = false;
		atomic_store(&rearm_pending, false);
	}
	pthread_mutex_unlock(&rearm_lock);
	return atomic_load(&ra_g.refpage);
}

/* A marker no correct program writes: random per process, never zero. */
static uintptr_t random_marker(void)
{
	struct timespec t = {0, 0};
	int local;
	(void)clock_gettime(CLOCK_REALTIME, &t);
	uint64_t x = (uint64_t)t.tv_sec * 1000000007u ^ (uint64_t)t.tv_nsec ^ (uint64_t)(uintptr_t)&local ^
		     (uint64_t)(uintptr_t)&ra_g;
	x += 0x9e3779b97f4a7c15ULL; /* splitmix64 */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (uintptr_t)(x ^ (x >> 31)) | 1;
}

static void start_locked(void)
{
	ra_g.free_marker = random_marker();
	if (!configured)
		(void)ra_config_from_env(&ra_g.cfg); /* malformed values were reported; defaults stand */
	ra_g.page = pl_page_size();
	(void)pl_caps(); /* the page layer probes the kernel once, before any lock is held */
	ra_classes_init();
	if (ra_tcache_key_init() != 0)
		ra_warn("no thread-exit hook: exiting threads keep their cached blocks", NULL);
	register_fork_handlers();
	if (ra_g.cfg.init == RA_INIT_PATTERN && ra_g.cfg.via != RA_PATTERN_MEMSET) {
		atomic_store(&ra_g.refpage, find_refpage(ra_g.cfg.via, &ra_g.pmode));
		if (!ra_g.refpage && ra_g.cfg.via == RA_PATTERN_REFPAGE)
			ra_warn(atomic_load(&pattern_note), NULL);
	}
	if (pl_fault_counts(&ra_g.start_minor, &ra_g.start_major) != 0)
		ra_g.start_minor = ra_g.start_major = 0;
}

void ra_start(void)
{
	if (starting)
		return;
	int expected = 0;
	if (!atomic_compare_exchange_strong(&ra_init_state, &expected, 1)) {
		while (atomic_load_explicit(&ra_init_state, memory_order_acquire) != 2)
			sched_yield();
		return;
	}
	starting = true;
	start_locked();
	starting = false;
	atomic_store_explicit(&ra_init_state, 2, memory_order_release);
}

static bool valid_config(const struct ra_config *c)
{
	return (unsigned)c->release <= RA_RELEASE_DECOMMIT && (unsigned)c->init <= RA_INIT_PATTERN &&
	       (unsigned)c->via <= RA_PATTERN_REFPAGE;
}

int ra_configure(const struct ra_config *c)
{
	if (!c || !valid_config(c))
		return EINVAL;
	if (atomic_load(&ra_init_state) != 0)
		return EBUSY;
	ra_g.cfg = *c;
	configured = true;
	if (c->init == RA_INIT_PATTERN && c->via == RA_PATTERN_REFPAGE) {
		ra_g.page = pl_page_size();
		register_fork_handlers();
		enum pl_pattern_mode mode;
		if (!find_refpage(RA_PATTERN_REFPAGE, &mode)) {
			configured = false;
			return ENOTSUP;
		}
	}
	return 0;
}

void ra_config_get(struct ra_config *c)
{
	if (!ra_ready())
		ra_start();
	*c = ra_g.cfg;
}

const char *ra_pattern_mode(void)
{
	if (!ra_ready())
		ra_start();
	return ra_g.refpage ? pl_pattern_mode_name(ra_g.pmode) : "none";
}

const char *ra_pattern_note(void)
{
	if (!ra_ready())
		ra_start();
	return atomic_load(&pattern_note);
}

/* ---- the malloc family ---- */

static void init_fill(void *p, size_t size, bool zero, bool clean, bool pattern)
{
	if (zero || ra_g.cfg.init == RA_INIT_ZERO) {
		if (!(clean && !pattern))
			memset(p, 0, size);
	} else if (ra_g.cfg.init == RA_INIT_PATTERN && !(clean && pattern && pattern_served())) {
		memset(p, ra_g.cfg.pattern, size);
	}
}

static void *alloc_any(size_t size, size_t align, bool zero)
{
	void *p;
	bool clean = false, pattern = false;
	size_t need = size > align ? size : align;
	if (align > RA_MIN_BLOCK && need <= RA_SMALL_MAX)
		need = (size_t)1 << (64 - __builtin_clzll((unsigned long long)need - 1)); /* power-of-two classes are self-aligned */
	if (need <= RA_SMALL_MAX)
		p = ra_small_alloc(ra_class_of(need));
	else if (need <= RA_MEDIUM_MAX && align <= RA_SPAN)
		p = ra_medium_alloc(size, &clean, &pattern);
	else
		p = ra_large_alloc(size, align, &clean, &pattern);
	if (RA_UNLIKELY(!p)) {
		errno = ENOMEM;
		return NULL;
	}
	init_fill(p, size, zero, clean, pattern);
	return p;
}

static bool started(void)
{
	if (RA_LIKELY(ra_ready()))
		return true;
	ra_start();
	return ra_ready();
}

void *ra_malloc(size_t size)
{
	if (RA_UNLIKELY(!started()))
		return ra_boot_alloc(size, 16);
	/* The common case straight to the thread cache: a small block that needs no initialisation. */
	if (RA_LIKELY(size <= RA_SMALL_MAX && ra_g.cfg.init == RA_INIT_NONE)) {
		void *p = ra_small_alloc(ra_class_of(size));
		if (RA_UNLIKELY(!p))
			errno = ENOMEM;
		return p;
	}
	return alloc_any(size, 0, false);
}

void *ra_calloc(size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (RA_UNLIKELY(!started()))
		return ra_boot_alloc(total, 16); /* static storage reads zero and is never reused */
	return alloc_any(total, 0, true);
}

void *ra_memalign(size_t align, size_t size)
{
	if (align == 0 || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	if (RA_UNLIKELY(!started()))
		return ra_boot_alloc(size, align);
	return alloc_any(size, align <= RA_MIN_BLOCK ? 0 : align, false);
}

int ra_posix_memalign(void **out, size_t align, size_t size)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	int saved = errno;
	void *p = ra_memalign(align, size);
	if (!p)
		return ENOMEM;
	errno = saved;
	*out = p;
	return 0;
}

void ra_free(void *p)
{
	if (!p)
		return;
	struct ra_seg *s = ra_lookup(p);
	if (RA_UNLIKELY(!s)) {
		if (ra_is_boot(p))
			return;
		ra_die("free of a pointer refalloc never returned", p);
	}
	if (s->kind == SEG_LARGE) {
		ra_large_free(s, p);
		return;
	}
	struct ra_span *sp = ra_span_of(s, p);
	if (RA_LIKELY(sp->kind == SPAN_SMALL))
		ra_small_free(s, p);
	else if (sp->kind == SPAN_MEDIUM)
		ra_medium_free(s, sp, p);
	else
		ra_die("free of a pointer refalloc never returned (or already freed)", p);
}

/* The usable size of p, or 0 when p is not a live allocation of ours. */
static size_t live_size(const void *p)
{
	struct ra_seg *s = ra_lookup(p);
	if (!s)
		return ra_is_boot(p) ? ra_boot_size(p) : 0;
	if (s->kind == SEG_LARGE)
		return p == s->data && atomic_load(&s->live) ? s->cap : 0;
	struct ra_span *sp = ra_span_of(s, p);
	if (sp->kind == SPAN_SMALL)
		return ra_small_live(s, p) ? sp->block_size : 0;
	if (sp->kind == SPAN_MEDIUM && p == ra_span_base(s, sp) && atomic_load(&sp->live))
		return (size_t)sp->nspans << RA_SPAN_SHIFT;
	return 0;
}

size_t ra_usable_size(const void *p)
{
	return p ? live_size(p) : 0;
}

bool ra_owns(const void *p)
{
	return p && !ra_is_boot(p) && live_size(p) != 0;
}

static bool grow_in_place(void *p, size_t old, size_t size)
{
	struct ra_seg *s = ra_lookup(p);
	if (!s || s->kind != SEG_SMALL)
		return false;
	struct ra_span *sp = ra_span_of(s, p);
	if (sp->kind != SPAN_MEDIUM || !ra_medium_grow(s, sp, size))
		return false;
	init_fill((char *)p + old, size - old, false, false, false);
	return true;
}

void *ra_realloc(void *p, size_t size)
{
	if (!p)
		return ra_malloc(size);
	if (size == 0) {
		ra_free(p); /* glibc's behaviour: free and return NULL */
		return NULL;
	}
	size_t old = live_size(p);
	if (old == 0)
		ra_die("realloc of a pointer refalloc never returned (or already freed)", p);
	if (!ra_is_boot(p)) {
		if (size <= old && size >= old / 2)
			return p;
		if (size > old && grow_in_place(p, old, size))
			return p;
	}
	void *q = ra_malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	ra_free(p);
	return q;
}

/* ---- statistics ---- */

/* Must be called with the heap lock held. */
static size_t heap_resident(void)
{
	size_t pages = 0, n;
	for (struct ra_seg *s = ra_g.small_segs; s; s = s->next)
		if (pl_resident_pages(s->base, RA_GUARD_SPAN * RA_SPAN, &n) == 0)
			pages += n;
	for (struct ra_seg *s = ra_g.large_all; s; s = s->all_next)
		if (pl_resident_pages(s->base, s->map_len, &n) == 0)
			pages += n;
	return pages * ra_g.page;
}

int ra_stats(struct ra_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!started())
		return EAGAIN;
	uint64_t alloc = 0, freed = 0;
	pthread_mutex_lock(&ra_g.tc_lock);
	alloc = ra_g.dead_alloc_bytes;
	freed = ra_g.dead_free_bytes;
	for (struct ra_tcache *t = ra_g.caches; t; t = t->next) {
		alloc += atomic_load_explicit(&t->alloc_bytes, memory_order_relaxed);
		freed += atomic_load_explicit(&t->free_bytes, memory_order_relaxed) + ra_cached_bytes(t);
	}
	pthread_mutex_unlock(&ra_g.tc_lock);
	st->in_use = (size_t)(alloc - freed);
	st->mapped = atomic_load(&ra_g.mapped);
	st->released = atomic_load(&ra_g.released);
	st->release_calls = atomic_load(&ra_g.release_calls);
	pthread_mutex_lock(&ra_g.heap_lock);
	st->resident = heap_resident();
	pthread_mutex_unlock(&ra_g.heap_lock);
	uint64_t minor, major;
	int e = pl_fault_counts(&minor, &major);
	/* Clamped: a child made without fork handlers (clone) restarts its counters below the baseline. */
	if (!e) {
		st->minor_faults = minor >= ra_g.start_minor ? minor - ra_g.start_minor : minor;
		st->major_faults = major >= ra_g.start_major ? major - ra_g.start_major : major;
	}
	return e;
}

void ra_stats_dump(int fd)
{
	struct ra_stats st;
	char line[768];
	int e = ra_stats(&st);
	const char *note = ra_pattern_note();
	int n = snprintf(line, sizeof(line),
			 "refalloc: release=%s init=%s pattern=%s in_use=%zu mapped=%zu resident=%zu released=%zu "
			 "release_calls=%llu minor_faults=%llu major_faults=%llu%s%s%s\n",
			 ra_release_name(ra_g.cfg.release), ra_init_name(ra_g.cfg.init), ra_pattern_mode(),
			 st.in_use, st.mapped, st.resident, st.released, (unsigned long long)st.release_calls,
			 (unsigned long long)st.minor_faults, (unsigned long long)st.major_faults,
			 e ? " (fault counts unavailable)" : "", note ? " pattern_note=" : "", note ? note : "");
	if (n > 0 && write(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		return;
}

int ra_trim(void)
{
	if (!started())
		return 0;
	return ra_trim_small();
}

__attribute__((destructor)) static void dump_at_exit(void)
{
	if (ra_ready() && ra_g.cfg.stats_at_exit)
		ra_stats_dump(STDERR_FILENO);
}
