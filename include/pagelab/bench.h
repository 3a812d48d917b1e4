/* pagelab benchmarks: a C API in Google Benchmark's vocabulary.
 *
 * A benchmark file only does the work and counts it; warm-up, calibration,
 * timing, pinning, repetitions, counters and output belong to the harness.
 * Two back-ends implement this header and write the same JSON (Google
 * Benchmark's schema): Google Benchmark itself through lib/harness/gbench_shim.cc,
 * and the portable C back-end in lib/harness/bench_portable.c.
 *
 *   PB_BENCH(bm_dontneed, "madvise/dontneed", "madvise of a resident range",
 *            .args = PB_SIZES_FULL, .quick_args = PB_SIZES_QUICK) {
 *       size_t len = (size_t)pb_arg(s, 0);
 *       ... set-up ...
 *       while (pb_keep_running(s)) {
 *           pb_pause_timing(s); touch(p, len); pb_resume_timing(s);
 *           madvise(p, len, MADV_DONTNEED);
 *       }
 *       pb_set_items_processed(s, pb_iterations(s) * (len / page));
 *       pb_counter_per_item(s, "pages", ...);
 *   }
 * The name of one instance is "area/op/arg" (e.g. madvise/dontneed/65536).
 */
#ifndef PAGELAB_BENCH_H
#define PAGELAB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pb_state pb_state;
typedef void (*pb_fn)(pb_state *s);

#define PB_MAX_ARGS 64

enum pb_profile { PB_QUICK = 1, PB_FULL = 2 };

/* One argument per instance (a size, a thread count ...). */
struct pb_arg_list {
	int64_t v[PB_MAX_ARGS];
	int n;
};
#define PB_ARGS(...)                                                    \
	{ .v = {__VA_ARGS__},                                           \
	  .n = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)) }

struct pb_bench {
	const char *name;   /* "area/op" */
	const char *what;   /* one line: what one iteration is */
	pb_fn fn;
	struct pb_arg_list args;       /* full profile; empty: one instance, no argument */
	struct pb_arg_list quick_args; /* quick profile; empty: same as args */
	bool manual_time;   /* iteration time comes from pb_set_iteration_time */
	int threads;        /* >1: fn runs on that many threads at once */
	double min_time;    /* seconds; 0 = harness default for the profile */
	int64_t max_iterations; /* 0 = no cap; caps calibration (e.g. 1 GiB ops) */
};

void pb_register(const struct pb_bench *b);

#define PB_CAT2(a, b) a##b
#define PB_CAT(a, b) PB_CAT2(a, b)
/* Declare and register a benchmark. The trailing fields are designated
 * initialisers of struct pb_bench, e.g. .args = PB_SIZES_FULL, .manual_time = true */
#define PB_BENCH(func, namestr, whatstr, ...)                                 \
	static void func(pb_state *s);                                        \
	static const struct pb_bench PB_CAT(pb_bench_, func) = {              \
		.name = namestr, .what = whatstr, .fn = func, __VA_ARGS__};   \
	__attribute__((constructor)) static void PB_CAT(pb_reg_, func)(void)  \
	{                                                                     \
		pb_register(&PB_CAT(pb_bench_, func));                        \
	}                                                                     \
	static void func(pb_state *s)

#define PB_KIB(x) ((int64_t)(x) << 10)
#define PB_MIB(x) ((int64_t)(x) << 20)
#define PB_GIB(x) ((int64_t)(x) << 30)
/* An argument of one base page, whatever this system's page size is: the
 * instance is named by that size in bytes (madvise/free/4096, or /65536). An
 * instance whose name another argument of the list already gave is dropped. */
#define PB_PAGE INT64_MIN
/* The usual size sweeps: one page .. 1 GiB (full), page/64K/2M/256M (quick). */
#define PB_SIZES_FULL PB_ARGS(PB_PAGE, PB_KIB(16), PB_KIB(64), PB_KIB(256), PB_MIB(1), PB_MIB(2), \
			      PB_MIB(8), PB_MIB(32), PB_MIB(128), PB_MIB(256), PB_GIB(1))
#define PB_SIZES_QUICK PB_ARGS(PB_PAGE, PB_KIB(64), PB_MIB(2), PB_MIB(256))

/* ---- the loop ---- */
/* True while the harness wants another iteration; the timer runs between calls. */
bool pb_keep_running(pb_state *s);
void pb_pause_timing(pb_state *s);
void pb_resume_timing(pb_state *s);
/* With .manual_time: the seconds this iteration took, measured by the benchmark. */
void pb_set_iteration_time(pb_state *s, double seconds);
/* Iterations run so far / in total for this run. */
int64_t pb_iterations(const pb_state *s);
/* The i-th argument of this instance. */
int64_t pb_arg(const pb_state *s, int i);
/* The argument as a length in bytes when it is a whole number of base pages;
 * otherwise the benchmark is skipped, saying so, and 0 is returned (a 16 KiB
 * size on a system of 64 KiB pages). */
size_t pb_arg_bytes(pb_state *s);
/* Thread index and count, for .threads benchmarks. */
int pb_thread_index(const pb_state *s);
int pb_threads(const pb_state *s);

/* ---- what was done ---- */
void pb_set_items_processed(pb_state *s, int64_t items); /* -> items_per_second */
void pb_set_bytes_processed(pb_state *s, int64_t bytes); /* -> bytes_per_second */
void pb_set_label(pb_state *s, const char *label);

enum pb_counter_kind {
	PB_COUNTER_TOTAL,        /* the value as given */
	PB_COUNTER_AVG_ITER,     /* value / iterations */
	PB_COUNTER_RATE,         /* value / seconds */
};
/* A custom counter, written as a field of the benchmark's JSON entry. */
void pb_counter(pb_state *s, const char *name, double value, enum pb_counter_kind kind);

/* Feature missing on this system: the benchmark is reported skipped with msg
 * (Google Benchmark's error_occurred/error_message). Call before the loop, then return. */
void pb_skip(pb_state *s, const char *msg);

/* Keep the compiler from discarding a value or from caching memory. */
static inline void pb_do_not_optimize(const void *p)
{
#if defined(__GNUC__)
	__asm__ __volatile__("" : : "r"(p) : "memory");
#else
	(void)p;
#endif
}
static inline void pb_clobber_memory(void)
{
#if defined(__GNUC__)
	__asm__ __volatile__("" : : : "memory");
#endif
}

/* ---- for the harness: the active profile and helpers for benchmarks ---- */
enum pb_profile pb_profile(void);
/* Touch (write one byte per page) [p, p+len). */
void pb_touch_pages(void *p, size_t len);
/* Read one byte per page of [p, p+len); returns a checksum so it is not optimised out. */
unsigned pb_read_pages(const void *p, size_t len);
/* Monotonic time in seconds, for manual iteration timing (0 if the clock fails). */
double pb_seconds(void);
/* pb_skip with "what: EINVAL (Invalid argument)" for an OS call that failed. */
void pb_skip_errno(pb_state *s, const char *what, int e);
/* One iteration handles `pages` pages: items_per_second becomes pages/s, and a
 * "pages" counter lets reports turn per-iteration counters into per-page ones. */
void pb_per_page(pb_state *s, size_t pages);
/* Pin the calling thread to the n-th core other than the measuring one (same
 * package first); returns 0 or errno (ENOTSUP/EINVAL when impossible). */
int pb_pin_other(int n);
/* Number of online cores usable by this process. */
int pb_ncores(void);

#ifdef __cplusplus
}
#endif
#endif
