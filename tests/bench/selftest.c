/* The benchmark harness's own tests: statistics, the portable back-end on
 * benchmarks whose cost is known, and counters that must count exactly. */
#include "config.h"
#include "../../lib/harness/bench_impl.h"
#include "pagelab/counters.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#define TOUCH_PAGES 256

static int failures, checks;

static void check(bool ok, const char *what, double got, double lo, double hi)
{
	checks++;
	failures += !ok;
	printf("%s %d - %s: %.6g (expected %.6g .. %.6g)\n", ok ? "ok" : "not ok", checks, what, got, lo, hi);
}

static void check_range(const char *what, double got, double lo, double hi)
{
	check(got >= lo && got <= hi, what, got, lo, hi);
}

static void sleep_s(double s)
{
	struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

PB_BENCH(bm_manual, "selftest/manual", "reports 2 us per iteration", .manual_time = true)
{
	while (pb_keep_running(s))
		pb_set_iteration_time(s, 2e-6);
}

/* Spins on this thread's CPU clock, so its cost is known even on a busy machine. */
PB_BENCH(bm_spin, "selftest/spin", "spins 20 us of CPU time per iteration")
{
	struct timespec a, b;
	while (pb_keep_running(s)) {
		if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a) != 0) {
			pb_skip(s, "no thread CPU clock");
			return;
		}
		do {
			if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b) != 0)
				break;
		} while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 20000);
	}
}

/* Touches fresh pages in the timed part; mapping and unmapping are paused. */
PB_BENCH(bm_touch, "selftest/touch", "first touch of fresh pages", .args = PB_ARGS(TOUCH_PAGES))
{
	size_t len = (size_t)pb_arg(s, 0) * (size_t)sysconf(_SC_PAGESIZE);
	while (pb_keep_running(s)) {
		pb_pause_timing(s);
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || madvise(p, len, MADV_NOHUGEPAGE) != 0) {
			pb_skip(s, "mmap or MADV_NOHUGEPAGE failed");
			return;
		}
		pb_resume_timing(s);
		pb_touch_pages(p, len);
		pb_pause_timing(s);
		if (munmap(p, len) != 0) {
			pb_skip(s, "munmap failed");
			return;
		}
		pb_resume_timing(s);
	}
}

PB_BENCH(bm_skip, "selftest/skip", "always skips")
{
	pb_skip(s, "feature missing on purpose");
}

PB_BENCH(bm_custom, "selftest/custom", "custom counters")
{
	while (pb_keep_running(s))
		pb_clobber_memory();
	pb_counter(s, "three", 3.0 * (double)pb_iterations(s), PB_COUNTER_AVG_ITER);
	pb_counter(s, "total", 7, PB_COUNTER_TOTAL);
}

/* Alternates between 2 us and 4 us per call; "slow" says which: a bimodal
 * sample whose modes a counter explains. */
PB_BENCH(bm_bimodal, "selftest/bimodal", "2 us or 4 us by turns", .manual_time = true)
{
	static int calls;
	bool slow = calls++ % 2;
	while (pb_keep_running(s))
		pb_set_iteration_time(s, slow ? 4e-6 : 2e-6);
	pb_counter(s, "slow", slow, PB_COUNTER_TOTAL);
}


/* 120 ms of set-up once per run, outside the loop: the iteration count must
 * still reach the minimum time (set-up per run is not set-up per iteration). */
PB_BENCH(bm_setup_once, "selftest/setup_once", "120 ms of set-up per run, then 2 us per iteration", .manual_time = true)
{
	sleep_s(0.12);
	while (pb_keep_running(s))
		pb_set_iteration_time(s, 2e-6);
}

/* 20 ms of paused set-up per iteration: the run's wall time stays near the budget. */
PB_BENCH(bm_setup_each, "selftest/setup_each", "20 ms of paused set-up, then 2 us, per iteration", .manual_time = true)
{
	while (pb_keep_running(s)) {
		pb_pause_timing(s);
		sleep_s(0.02);
		pb_resume_timing(s);
		pb_set_iteration_time(s, 2e-6);
	}
}

static void spin_cpu(double s)
{
	struct timespec a, b;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a) != 0)
		return;
	do {
		if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b) != 0)
			return;
	} while ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9 < s);
}

/* 1 ms of CPU per iteration, and every other call also 1 ms asleep: the slow
 * mode is explained by the time off the CPU, not by the CPU time. */
PB_BENCH(bm_offcpu, "selftest/offcpu", "1 ms of CPU, and 1 ms asleep every other call", .min_time = 0.01)
{
	static int calls;
	bool sleeps = calls++ % 2;
	while (pb_keep_running(s)) {
		spin_cpu(1e-3);
		if (sleeps)
			sleep_s(1e-3);
	}
}

static const struct pb_run *find(const char *name)
{
	const struct pb_run *runs;
	int n = pb_report_runs(&runs);
	for (int i = 0; i < n; i++)
		if (strcmp(runs[i].inst->name, name) == 0)
			return &runs[i];
	return NULL;
}

static double counter(const struct pb_run *r, const char *name)
{
	for (int i = 0; r && i < r->ncounters; i++)
		if (strcmp(r->counter[i].name, name) == 0)
			return r->counter[i].value;
	return NAN;
}

static void test_stats(void)
{
	double m, med, sd, cv;
	pb_stats((const double[]){1, 2, 3, 4}, 4, &m, &med, &sd, &cv);
	check_range("mean of 1..4", m, 2.5, 2.5);
	check_range("median of 1..4", med, 2.5, 2.5);
	check_range("sample stddev of 1..4", sd, 1.2909944, 1.2909945);
	check_range("cv of 1..4", cv, 0.5163977, 0.5163978);
	pb_stats((const double[]){5, 1, 3}, 3, &m, &med, &sd, &cv);
	check_range("median of 5,1,3", med, 3, 3);
}

/* Synthetic samples with a known shape. */
static void check_shape(const char *what, const double *v, int n, const char *shape, int nmodes, int noutliers)
{
	struct pb_shape sh;
	int e = pb_shape(v, n, &sh);
	bool ok = e == 0 && strcmp(pb_shape_name(&sh), shape) == 0 && sh.nmodes == nmodes && sh.noutliers == noutliers;
	checks++;
	failures += !ok;
	printf("%s %d - %s: %s, %d mode(s), %d outlier(s) (expected %s, %d, %d)\n", ok ? "ok" : "not ok", checks, what,
	       e ? "error" : pb_shape_name(&sh), sh.nmodes, sh.noutliers, shape, nmodes, noutliers);
}

static void test_shapes(void)
{
	check_shape("tight sample", (const double[]){100, 101, 102, 103, 104}, 5, "unimodal", 1, 0);
	check_shape("evenly spread noise has no mode structure", (const double[]){100, 120, 140, 160, 180}, 5,
		    "unimodal", 1, 0);
	check_shape("one repetition 3x the rest", (const double[]){100, 101, 300, 102, 103}, 5, "outliers", 1, 1);
	check_shape("three fast, two slow", (const double[]){100, 150, 101, 151, 102}, 5, "bimodal", 2, 0);
	check_shape("three modes of two", (const double[]){100, 400, 200, 101, 401, 201}, 6, "multimodal", 3, 0);
	check_shape("two modes and an outlier", (const double[]){100, 101, 102, 200, 201, 202, 900}, 7, "bimodal", 2, 1);
	check_shape("two far-apart values", (const double[]){100, 200}, 2, "scattered", 0, 0);
	check_shape("a 10% step is noise, not a mode", (const double[]){100, 101, 110, 111, 112}, 5, "unimodal", 1, 0);
	struct pb_shape sh;
	pb_shape((const double[]){100, 150, 101, 151, 102}, 5, &sh);
	check(sh.mode_of[0] == 0 && sh.mode_of[1] == 1 && sh.mode_of[3] == 1 && sh.mode[0].count == 3 &&
		      sh.mode[0].center == 101 && sh.mode[1].center == 150.5,
	      "modes list their repetitions, fastest first, with their medians", sh.mode[1].center, 150.5, 150.5);
	pb_shape((const double[]){100, 101, 300, 102, 103}, 5, &sh);
	check(sh.outlier[0] == 2 && sh.mode_of[2] == -1, "the outlier is repetition 2", sh.outlier[0], 2, 2);
	check(pb_shape((const double[]){1, 0, 2}, 3, &sh) == EDOM, "a zero time is refused", 0, 0, 0);
}

/* Touch n fresh pages with THP off and return the counted value of counter 0. */
static double count_touch(size_t n)
{
	size_t len = n * (size_t)sysconf(_SC_PAGESIZE);
	struct pl_counters *c;
	double v[PL_COUNTERS_MAX] = {NAN};
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || madvise(p, len, MADV_NOHUGEPAGE) != 0 || pl_counters_open(&c) != 0)
		return NAN;
	if (pl_counters_begin(c) == 0) {
		pb_touch_pages(p, len);
		if (pl_counters_end(c, v) != 0)
			v[0] = NAN;
	}
	pl_counters_close(c);
	if (munmap(p, len) != 0)
		return NAN;
	return v[0];
}

static void test_counters(const char *source)
{
	char err[256], what[128];
	int e = pl_counters_configure("minor-faults", source, err, sizeof(err));
	snprintf(what, sizeof(what), "configure minor-faults via %s", source);
	check(e == 0 && pl_counters_count() == 1, what, e, 0, 0);
	snprintf(what, sizeof(what), "%s: 1000 fresh pages touched = minor faults", source);
	check_range(what, count_touch(1000), 1000, 1010);
	e = pl_counters_configure("page-faults,no-such-event", source, err, sizeof(err));
	check(e == EINVAL, "unknown counter name is refused", e, EINVAL, EINVAL);
}

static void run_suite(const char *source)
{
	char err[256];
	if (pl_counters_configure("minor-faults,page-faults", source, err, sizeof(err)) != 0 || pb_select(err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-selftest: %s\n", err);
		check(false, "configure counters and select the self-test benchmarks", 0, 0, 0);
		return;
	}
	int e = pb_portable_run();
	check(e == 0, "portable back-end ran the self-test benchmarks", e, 0, 0);
	const struct pb_run *r = find("selftest/manual");
	check_range("manual time of 2 us is reported exactly (ns)", r ? r->real_ns : NAN, 1999.999, 2000.001);
	r = find("selftest/spin");
	check_range("a 20 us CPU spin measures 20 us of CPU (ns)", r ? r->cpu_ns : NAN, 20000, 22000);
	check_range("real time is at least CPU time (ratio)", r ? r->real_ns / r->cpu_ns : NAN, 0.99, 100);
	check_range("iterations calibrated to the minimum time (s)", r ? (double)r->iterations * r->real_ns * 1e-9 : NAN, 0.02, 1.0);
	r = find("selftest/touch/256");
	check_range("minor faults per iteration of 256 touched pages", counter(r, "minor-faults"), 256, 260);
	r = find("selftest/skip");
	check(r && r->error && strcmp(r->message, "feature missing on purpose") == 0, "skip carries its message",
	      r ? r->error : -1, 1, 1);
	r = find("selftest/custom");
	check_range("per-iteration custom counter", counter(r, "three"), 3, 3);
	check_range("total custom counter", counter(r, "total"), 7, 7);
	/* min_time 0.02 s of 2 us iterations is 10000; the quick profile's wall budget is 0.25 s a run. */
	r = find("selftest/setup_once");
	check_range("set-up once per run does not cap the iterations", r ? (double)r->iterations : NAN, 9000, 20000);
	r = find("selftest/setup_each");
	check_range("set-up in every iteration keeps a run within the wall budget", r ? (double)r->iterations : NAN, 2, 16);
}

/* Read a whole small file into a malloc'd string, or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = 0;
	return buf;
}

/* Six repetitions alternating 2 us and 4 us: the file names both modes and
 * what tells them apart, and lists nothing as not run. */
static void test_bimodal_report(void)
{
	char path[] = "/tmp/pagelab-bench-selftest-XXXXXX", err[256];
	int fd = mkstemp(path);
	if (fd < 0 || close(fd) != 0) {
		check(false, "temporary file for the JSON report", 0, 0, 0);
		return;
	}
	pb_opts.filter = "^selftest/bimodal$";
	pb_opts.repetitions = 6;
	pb_opts.out = path;
	int e = pl_counters_configure("none", "rusage", err, sizeof(err));
	e = e ? e : pb_select(err, sizeof(err));
	e = e ? e : pb_portable_run();
	e = e ? e : pb_report_end();
	check(e == 0, "bimodal benchmark ran and its report was written", e, 0, 0);
	char *doc = slurp(path);
	unlink(path);
	check(doc && strstr(doc, "\"shape\": \"bimodal\""), "the report calls the sample bimodal", 0, 0, 0);
	check(doc && strstr(doc, "\"count\": 3"), "three repetitions in each mode", 0, 0, 0);
	check(doc && strstr(doc, "\"differs_by\": \"slow 1 vs 0\""), "the slow mode is explained by its counter", 0, 0, 0);
	check(doc && strstr(doc, "\"benchmarks_not_run\": []") && strstr(doc, "\"benchmarks_complete\": true"),
	      "a finished run lists nothing as not run", 0, 0, 0);
	free(doc);
	/* The same with a mode that sleeps: explained by the time off the CPU. */
	fd = -1;
	char path2[] = "/tmp/pagelab-bench-selftest-XXXXXX";
	if ((fd = mkstemp(path2)) < 0 || close(fd) != 0) {
		check(false, "temporary file for the JSON report", 0, 0, 0);
		return;
	}
	pb_opts.filter = "^selftest/offcpu$";
	pb_opts.out = path2;
	e = pb_select(err, sizeof(err));
	e = e ? e : pb_portable_run();
	e = e ? e : pb_report_end();
	check(e == 0, "off-CPU benchmark ran and its report was written", e, 0, 0);
	doc = slurp(path2);
	unlink(path2);
	check(doc && strstr(doc, "\"shape\": \"bimodal\""), "the sleeping repetitions make a second mode", 0, 0, 0);
	check(doc && strstr(doc, "\"differs_by\": \"off_cpu_time"), "the sleeping mode is explained by time off the CPU",
	      0, 0, 0);
	free(doc);
	pb_opts.out = NULL;
}

int main(void)
{
	pb_opts.profile = PB_QUICK;
	pb_opts.min_warmup = 0;
	pb_opts.pin_cpu = -2;
	test_stats();
	test_shapes();
	test_counters("rusage");
	pb_opts.filter = "^selftest/(manual|spin|touch|skip|custom|setup_once|setup_each)";
	pb_opts.repetitions = 2;
	pb_opts.min_time = 0.02;
#ifdef HAVE_PERF_EVENT
	test_counters("perf");
	run_suite("perf");
#endif
	run_suite("rusage");
	test_bimodal_report();
	printf("1..%d\n", checks);
	return failures ? 1 : 0;
}
