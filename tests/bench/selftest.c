/* The benchmark harness's own tests: statistics, the portable back-end on
 * benchmarks whose cost is known, and counters that must count exactly. */
#include "../../lib/harness/bench_impl.h"
#include "pagelab/counters.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
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

static const struct pb_run *find(const char *name, int from)
{
	const struct pb_run *runs;
	int n = pb_report_runs(&runs);
	for (int i = from; i < n; i++)
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

static int run_suite(const char *source, int from)
{
	char err[256];
	if (pl_counters_configure("minor-faults,page-faults", source, err, sizeof(err)) != 0 || pb_select(err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-selftest: %s\n", err);
		return -1;
	}
	int e = pb_portable_run();
	check(e == 0, "portable back-end ran the self-test benchmarks", e, 0, 0);
	const struct pb_run *r = find("selftest/manual", from);
	check_range("manual time of 2 us is reported exactly (ns)", r ? r->real_ns : NAN, 1999.999, 2000.001);
	r = find("selftest/spin", from);
	check_range("a 20 us CPU spin measures 20 us of CPU (ns)", r ? r->cpu_ns : NAN, 20000, 22000);
	check_range("real time is at least CPU time (ratio)", r ? r->real_ns / r->cpu_ns : NAN, 0.99, 100);
	check_range("iterations calibrated to the minimum time (s)", r ? (double)r->iterations * r->real_ns * 1e-9 : NAN, 0.02, 1.0);
	r = find("selftest/touch/256", from);
	check_range("minor faults per iteration of 256 touched pages", counter(r, "minor-faults"), 256, 260);
	r = find("selftest/skip", from);
	check(r && r->error && strcmp(r->message, "feature missing on purpose") == 0, "skip carries its message",
	      r ? r->error : -1, 1, 1);
	r = find("selftest/custom", from);
	check_range("per-iteration custom counter", counter(r, "three"), 3, 3);
	check_range("total custom counter", counter(r, "total"), 7, 7);
	const struct pb_run *runs;
	return pb_report_runs(&runs);
}

int main(void)
{
	pb_opts.filter = "^selftest/";
	pb_opts.profile = PB_QUICK;
	pb_opts.repetitions = 2;
	pb_opts.min_time = 0.02;
	pb_opts.min_warmup = 0;
	pb_opts.pin_cpu = -2;
	test_stats();
	test_counters("rusage");
#ifdef __linux__
	test_counters("perf");
	int n = run_suite("perf", 0);
#else
	int n = 0;
#endif
	if (n >= 0)
		run_suite("rusage", n);
	printf("1..%d\n", checks);
	return failures ? 1 : 0;
}
