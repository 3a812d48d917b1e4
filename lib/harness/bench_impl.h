/* Internals shared by the benchmark back-ends (not a public header). */
#ifndef PAGELAB_BENCH_IMPL_H
#define PAGELAB_BENCH_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "pagelab/bench.h"
#include "pagelab/counters.h"
#include "pagelab/json.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PB_MAX_CUSTOM 24
#define PB_MAX_RUN_COUNTERS (PB_MAX_CUSTOM + PL_COUNTERS_MAX + 2)
#define PB_NAME_MAX 160

struct pb_options {
	const char *filter;        /* regex; a leading '-' excludes */
	int repetitions;           /* 0: profile default */
	double min_time;           /* seconds; 0: profile/benchmark default */
	int64_t fixed_iterations;  /* --benchmark_min_time=Nx */
	double min_warmup;         /* seconds; <0: profile default */
	const char *out;
	bool random_interleaving;
	bool list_tests;
	const char *counters;
	const char *counter_source;
	int pin_cpu;               /* OS CPU; -1: auto; -2: none */
	enum pb_profile profile;
	const char *backend;       /* "gbench" or "portable" */
	const char *topology_out;
};

/* One instance of a benchmark: a registered benchmark with one argument. */
struct pb_instance {
	const struct pb_bench *b;
	char name[PB_NAME_MAX];
	int64_t arg;
	bool has_arg;
	int threads;
	int family_index, per_family_index;
	double min_time, min_warmup;
	int64_t fixed_iterations; /* 0: calibrate */
	int repetitions;
};

struct pb_named {
	char name[64];
	double value;
};

/* One reported run, in Google Benchmark's terms (times in ns per iteration). */
struct pb_run {
	const struct pb_instance *inst;
	int repetition_index;
	int64_t iterations;
	double real_ns, cpu_ns;
	bool error;
	char message[256];
	char label[128];
	int ncounters;
	struct pb_named counter[PB_MAX_RUN_COUNTERS];
};

struct pb_custom {
	char name[64];
	double value;
	enum pb_counter_kind kind;
};

struct pb_backend_ops {
	void (*start)(pb_state *s);  /* set s->max_iter, start timers */
	void (*stop)(pb_state *s);
	void (*pause)(pb_state *s);
	void (*resume)(pb_state *s);
	void (*iteration_time)(pb_state *s, double seconds);
	void (*skip)(pb_state *s, const char *msg);
};

struct pb_state {
	int64_t remaining; /* the loop's hot field: iterations still to hand out */
	int64_t max_iter;
	bool started, finished, paused, skipped;
	const struct pb_instance *inst;
	int thread_index, nthreads;
	const struct pb_backend_ops *ops;
	void *backend; /* the back-end's own per-run state */
	/* portable timing */
	struct timespec real0, cpu0;
	double real_s, cpu_s, manual_s;
	/* what the benchmark reported */
	int64_t items, bytes;
	bool has_items, has_bytes;
	char label[128];
	char message[256];
	int ncustom;
	struct pb_custom custom[PB_MAX_CUSTOM];
	/* counters of this thread */
	struct pl_counters *ctr;
	bool own_ctr;
	int ctr_err;
	double ctr_total[PL_COUNTERS_MAX];
	double host_ref_s; /* the host reference timed before the run (measuring thread) */
};

/* ---- bench_common.c ---- */
extern struct pb_options pb_opts;
/* The selected instances, in registration order. */
int pb_instances(const struct pb_instance **out);
/* Expand the registry for the profile and filter; 0 or errno (msg filled). */
int pb_select(char *msg, size_t msglen);
/* Prepare / finish a state for one run on the calling thread. */
void pb_state_init(pb_state *s, const struct pb_instance *in, int thread_index, int nthreads,
		   const struct pb_backend_ops *ops, void *backend);
void pb_state_done(pb_state *s);
/* Called after fn returns: make sure the loop finished, else mark an error. */
void pb_state_after_fn(pb_state *s);

/* ---- bench_report.c ---- */
/* Start reporting for a run of the selected instances with this back-end. */
void pb_report_begin(const char *backend_name);
/* One repetition finished (or was skipped). When it completes its instance,
 * the JSON file (--benchmark_out) is rewritten with every finished instance,
 * so an interrupted run keeps them; 0 or errno. */
int pb_report_run(const struct pb_run *r);
/* The runs reported so far (for the self-test). */
int pb_report_runs(const struct pb_run **out);
/* Write the final JSON file (when --benchmark_out); 0 or errno. */
int pb_report_end(void);
/* Members of the "context" object (bench_context.c). */
void pb_context_members(struct pl_json *j, const char *backend_name);
/* Its machine members: host, executable, CPUs, caches, load (bench_machine_<family>.c). */
void pb_machine_members(struct pl_json *j);

/* ---- bench_filter_<family>.c: --benchmark_filter's regular expression (POSIX extended) ---- */
struct pb_filter;
/* Compile pattern; 0, or EINVAL for a bad expression (ENOMEM when out of memory). */
int pb_filter_compile(const char *pattern, struct pb_filter **out);
/* Does the expression match anywhere in name? */
bool pb_filter_match(const struct pb_filter *f, const char *name);
void pb_filter_free(struct pb_filter *f);

/* ---- bench_clock_<family>.c ---- */
/* Seconds on clock clk (CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID, CLOCK_REALTIME); 0 if it fails. */
double pb_now(clockid_t clk);

/* ---- bench_stats.c ---- */
/* Statistics of n values: mean, median, sample stddev, cv (stddev/mean). */
void pb_stats(const double *v, int n, double *mean, double *median, double *stddev, double *cv);

#define PB_SHAPE_MAX 128          /* repetitions analysed for modes at most */
#define PB_MODE_SEPARATION 0.15   /* modes differ by at least 15% */
#define PB_GAP_FACTOR 4.0         /* ... and by 4x the typical gap between repetitions */

struct pb_mode {
	double center, lo, hi; /* median and range of its repetitions */
	int count;
};

/* The shape of a sample of repetitions (see bench_stats.c for the rule). */
struct pb_shape {
	int n, nmodes, noutliers;
	bool scattered; /* no two repetitions close together: no mode at all */
	struct pb_mode mode[PB_SHAPE_MAX / 2]; /* fastest first */
	int mode_of[PB_SHAPE_MAX];             /* per repetition: its mode, -1 for an outlier */
	int outlier[PB_SHAPE_MAX];             /* repetition indices of the outliers */
};
/* Modes and outliers of n positive values; 0, EDOM for a value that is not
 * positive, E2BIG for more than PB_SHAPE_MAX values (sh then says nothing). */
int pb_shape(const double *v, int n, struct pb_shape *sh);
/* "unimodal", "outliers", "bimodal", "multimodal" or "scattered". */
const char *pb_shape_name(const struct pb_shape *sh);

/* ---- bench_portable.c / gbench_shim.cc ---- */
int pb_portable_run(void);
int pb_gbench_run(void);
/* Warm in up and choose its iteration count as the portable back-end does
 * (Google Benchmark's growth rule, within the profile's wall-time budget and
 * the benchmark's max_iterations); 0 or errno. */
int pb_calibrate(const struct pb_instance *in, int64_t *iters);

/* ---- bench_opts.c ---- */
/* Parse argv into pb_opts; 0, or 2 after printing a one-line error, or -1 for --help. */
int pb_parse_args(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
