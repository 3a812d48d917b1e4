/* Results of both back-ends: console lines, aggregates over repetitions, the
 * shape of each sample, and the JSON file in Google Benchmark's schema
 * (context + benchmarks). The file is rewritten, atomically, every time an
 * instance finishes its repetitions, so an interrupted run leaves a valid
 * file holding every finished instance; its context lists the ones not run. */
#include "config.h"
#include "bench_impl.h"
#include "pagelab/env.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pb_run *runs;
static int nruns, capruns;
static int *reported; /* per instance: repetitions reported so far */
static double *seconds; /* per instance: wall time from the previous instance's end to its own */
static double last_end;
static int ninstances;
static const char *backend;

void pb_report_begin(const char *backend_name)
{
	const struct pb_instance *ins;
	backend = backend_name;
	ninstances = pb_instances(&ins);
	free(reported);
	free(seconds);
	reported = calloc((size_t)ninstances + 1, sizeof(*reported));
	seconds = calloc((size_t)ninstances + 1, sizeof(*seconds));
	last_end = pb_now(CLOCK_MONOTONIC);
	nruns = 0; /* runs of an earlier selection point at instances that are gone */
	printf("%-44s %14s %14s %12s  %s\n", "Benchmark", "Time", "CPU", "Iterations", "Counters (per iteration)");
	fflush(stdout);
}

static void print_run(const struct pb_run *r)
{
	if (r->error) {
		printf("%-44s SKIPPED: %s\n", r->inst->name, r->message);
		return;
	}
	printf("%-44s %11.1f ns %11.1f ns %12lld ", r->inst->name, r->real_ns, r->cpu_ns, (long long)r->iterations);
	for (int i = 0; i < r->ncounters; i++)
		printf(" %s=%.4g", r->counter[i].name, r->counter[i].value);
	printf("%s%s\n", r->label[0] ? " " : "", r->label);
	fflush(stdout);
}

static bool finished(int instance)
{
	const struct pb_instance *ins;
	pb_instances(&ins);
	return reported && reported[instance] >= ins[instance].repetitions;
}

/* The good runs of one instance, in repetition order; returns how many. */
static int good_runs(const struct pb_instance *in, int *idx)
{
	int n = 0;
	for (int i = 0; i < nruns; i++)
		if (runs[i].inst == in && !runs[i].error)
			idx[n++] = i;
	return n;
}

static void print_shape_line(const struct pb_instance *in);
static int write_file(bool final);
static void print_aggregates(const struct pb_instance *in);

static int keep(const struct pb_run *r)
{
	if (nruns == capruns) {
		int cap = capruns ? capruns * 2 : 64;
		struct pb_run *n = realloc(runs, (size_t)cap * sizeof(*n));
		if (!n)
			return ENOMEM;
		runs = n;
		capruns = cap;
	}
	runs[nruns++] = *r;
	print_run(r);
	return 0;
}

int pb_report_run(const struct pb_run *r)
{
	const struct pb_instance *ins;
	pb_instances(&ins);
	int k = (int)(r->inst - ins), e = 0;
	bool dup_error = false;
	/* One skipped entry per instance is enough: later repetitions say the same. */
	for (int i = 0; r->error && i < nruns; i++)
		dup_error |= runs[i].inst == r->inst && runs[i].error;
	if (!dup_error)
		e = keep(r);
	if (e || !reported || k < 0 || k >= ninstances)
		return e;
	reported[k]++;
	if (!finished(k))
		return 0;
	if (seconds) {
		double now = pb_now(CLOCK_MONOTONIC);
		seconds[k] = now - last_end;
		last_end = now;
	}
	print_aggregates(r->inst);
	print_shape_line(r->inst);
	return pb_opts.out ? write_file(false) : 0;
}

int pb_report_runs(const struct pb_run **out)
{
	*out = runs;
	return nruns;
}

/* The time samples of runs idx[0..n). */
static void times_of(const int *idx, int n, double *v)
{
	for (int i = 0; i < n; i++)
		v[i] = runs[idx[i]].real_ns;
}

/* run_value's indexes besides the counters (>= 0): -1 is the CPU time. */
#define REAL_TIME (-3)
#define OFF_CPU (-4) /* real minus CPU time: the thread was not running (preempted, blocked) */

static double run_value(const struct pb_run *r, int f)
{
	if (f == OFF_CPU)
		return r->real_ns > r->cpu_ns ? r->real_ns - r->cpu_ns : 0;
	return f == REAL_TIME ? r->real_ns : f < 0 ? r->cpu_ns : r->counter[f].value;
}

static const char *value_name(const struct pb_run *r, int f)
{
	return f == OFF_CPU ? "off_cpu_time" : f < 0 ? "cpu_time" : r->counter[f].name;
}

static bool explains(const struct pb_run *r, int f)
{
	if (f == OFF_CPU) /* CPU time of several threads, or beside a manual time, is not one thread's wall time */
		return r->inst->threads == 1 && !r->inst->b->manual_time;
	if (f < 0)
		return true;
	const char *n = r->counter[f].name;
	return strcmp(n, "items_per_second") && strcmp(n, "bytes_per_second") && strcmp(n, "pages");
}

/* Median of value f over the runs in group g (mode index, or the outlier repetition as -2-rep). */
static double group_median(const int *idx, const struct pb_shape *sh, int g, int f)
{
	double v[PB_SHAPE_MAX], m, med, sd, cv;
	int n = 0;
	for (int i = 0; i < sh->n; i++)
		if ((g >= 0 && sh->mode_of[i] == g) || (g < 0 && i == -2 - g))
			v[n++] = run_value(&runs[idx[i]], f);
	pb_stats(v, n, &m, &med, &sd, &cv);
	return med;
}

/* Mean, median, stddev and cv of value f over runs idx[0..n); 0 or ENOMEM. */
static int stats_of(const int *idx, int n, int f, double st[4])
{
	double *v = malloc((size_t)n * sizeof(*v));
	if (!v)
		return ENOMEM;
	for (int i = 0; i < n; i++)
		v[i] = run_value(&runs[idx[i]], f);
	pb_stats(v, n, &st[0], &st[1], &st[2], &st[3]);
	free(v);
	return 0;
}

/* Google Benchmark's aggregate console lines (NAME_mean, _median, _stddev in ns, _cv in %), so
 * that a console reader (a person, a LAVA monitor) gets the summary and not only the repetitions. */
static void print_aggregates(const struct pb_instance *in)
{
	static const char *names[] = {"mean", "median", "stddev"};
	int *idx = malloc((size_t)(nruns ? nruns : 1) * sizeof(*idx));
	int n = idx ? good_runs(in, idx) : 0;
	double r[4], c[4];
	if (n >= 2 && stats_of(idx, n, REAL_TIME, r) == 0 && stats_of(idx, n, -1, c) == 0) {
		char name[PB_NAME_MAX + 16];
		for (int k = 0; k < 3; k++) {
			snprintf(name, sizeof(name), "%s_%s", in->name, names[k]);
			printf("%-44s %11.1f ns %11.1f ns %12d\n", name, r[k], c[k], n);
		}
		snprintf(name, sizeof(name), "%s_cv", in->name);
		printf("%-44s %11.2f %%  %11.2f %%  %12d\n", name, r[3] * 100, c[3] * 100, n);
		fflush(stdout);
	}
	free(idx);
}

/* Up to two values (counters, CPU time, time off the CPU) that differ by more
 * than half (the host reference: a tenth) between group g and the main mode: the
 * likely reason the group stands apart. */
static void why(const int *idx, const struct pb_shape *sh, int g, int main_mode, char *buf, size_t len)
{
	const struct pb_run *r0 = &runs[idx[0]];
	double best[2] = {0, 0};
	int pick[2] = {-2, -2};
	double time_g = group_median(idx, sh, g, REAL_TIME), time_m = group_median(idx, sh, main_mode, REAL_TIME);
	for (int k = -2; k < r0->ncounters; k++) {
		int f = k == -2 ? OFF_CPU : k;
		if (!explains(r0, f))
			continue;
		double a = group_median(idx, sh, g, f), b = group_median(idx, sh, main_mode, f);
		double rel = fabs(a - b) / fmax(fmax(fabs(a), fabs(b)), 1e-300);
		/* The host reference is a ratio near 1: a tenth slower already means the CPU was
		 * taken away. It and the time off the CPU explain a group only when they moved the
		 * same way as the time, and off-CPU time only when it is a twentieth of the time. */
		bool host = f >= 0 && strcmp(r0->counter[f].name, "host_ref_slowdown") == 0;
		if ((host || f == OFF_CPU) && (a > b) != (time_g > time_m))
			continue;
		if (f == OFF_CPU && fabs(a - b) < 0.05 * fmax(time_g, time_m))
			continue;
		if (!(rel > (host ? 0.1 : 0.5)) || fmax(fabs(a), fabs(b)) < 0.5)
			continue;
		int slot = rel > best[0] ? 0 : rel > best[1] ? 1 : -1;
		if (slot == 0) {
			best[1] = best[0];
			pick[1] = pick[0];
		}
		if (slot >= 0) {
			best[slot] = rel;
			pick[slot] = f;
		}
	}
	size_t used = (size_t)snprintf(buf, len, "%s", pick[0] == -2 ? "no counter differs" : "");
	for (int s = 0; s < 2 && pick[s] != -2 && used < len; s++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s %.4g vs %.4g", s ? ", " : "",
					 value_name(r0, pick[s]), group_median(idx, sh, g, pick[s]),
					 group_median(idx, sh, main_mode, pick[s]));
}

/* The mode holding the most repetitions (the fastest of equals). */
static int main_mode(const struct pb_shape *sh)
{
	int m = 0;
	for (int i = 1; i < sh->nmodes; i++)
		if (sh->mode[i].count > sh->mode[m].count)
			m = i;
	return m;
}

/* The shape of an instance's good runs; false when there is nothing to say. */
static bool shape_of(const struct pb_instance *in, int *idx, struct pb_shape *sh)
{
	int n = good_runs(in, idx);
	double v[PB_SHAPE_MAX];
	if (n < 2 || n > PB_SHAPE_MAX)
		return false;
	times_of(idx, n, v);
	return pb_shape(v, n, sh) == 0;
}

/* One console line for a sample that is not one clean mode. */
static void print_shape_line(const struct pb_instance *in)
{
	int *idx = malloc((size_t)(nruns ? nruns : 1) * sizeof(*idx));
	struct pb_shape sh;
	if (idx && shape_of(in, idx, &sh) && (sh.nmodes != 1 || sh.noutliers)) {
		printf("%-44s %s:", in->name, pb_shape_name(&sh));
		for (int m = 0; m < sh.nmodes; m++)
			printf(" %d at %.4g ns%s", sh.mode[m].count, sh.mode[m].center, m + 1 < sh.nmodes ? "," : "");
		for (int o = 0; o < sh.noutliers; o++)
			printf("%s repetition %d at %.4g ns", o || sh.nmodes ? ";" : "", sh.outlier[o],
			       runs[idx[sh.outlier[o]]].real_ns);
		printf("\n");
		fflush(stdout);
	}
	free(idx);
}

static void entry_head(struct pl_json *j, const struct pb_run *r, const char *suffix)
{
	char name[PB_NAME_MAX + 16];
	snprintf(name, sizeof(name), "%s%s", r->inst->name, suffix);
	pl_json_kv_str(j, "name", name);
	pl_json_kv_int(j, "family_index", r->inst->family_index);
	pl_json_kv_int(j, "per_family_instance_index", r->inst->per_family_index);
	pl_json_kv_str(j, "run_name", r->inst->name);
	pl_json_kv_str(j, "run_type", suffix[0] ? "aggregate" : "iteration");
	pl_json_kv_int(j, "repetitions", r->inst->repetitions);
}

static void write_iteration(struct pl_json *j, const struct pb_run *r)
{
	pl_json_begin_object(j);
	entry_head(j, r, "");
	pl_json_kv_int(j, "repetition_index", r->repetition_index);
	pl_json_kv_int(j, "threads", r->inst->threads);
	if (r->error) {
		pl_json_kv_bool(j, "error_occurred", true);
		pl_json_kv_str(j, "error_message", r->message);
	}
	pl_json_kv_int(j, "iterations", r->iterations);
	pl_json_kv_double(j, "real_time", r->real_ns);
	pl_json_kv_double(j, "cpu_time", r->cpu_ns);
	pl_json_kv_str(j, "time_unit", "ns");
	for (int i = 0; i < r->ncounters; i++)
		pl_json_kv_double(j, r->counter[i].name, r->counter[i].value);
	if (r->label[0])
		pl_json_kv_str(j, "label", r->label);
	pl_json_end_object(j);
}

/* "distribution": the sample's shape, each mode with its repetitions, each
 * outlier with what set it apart. */
static void write_distribution(struct pl_json *j, const int *idx, const struct pb_shape *sh)
{
	char because[256];
	int mm = main_mode(sh);
	pl_json_key(j, "distribution");
	pl_json_begin_object(j);
	pl_json_kv_str(j, "shape", pb_shape_name(sh));
	pl_json_key(j, "modes");
	pl_json_begin_array(j);
	for (int m = 0; m < sh->nmodes; m++) {
		pl_json_begin_object(j);
		pl_json_kv_double(j, "real_time", sh->mode[m].center);
		pl_json_kv_double(j, "min", sh->mode[m].lo);
		pl_json_kv_double(j, "max", sh->mode[m].hi);
		pl_json_kv_int(j, "count", sh->mode[m].count);
		pl_json_key(j, "repetitions");
		pl_json_begin_array(j);
		for (int i = 0; i < sh->n; i++)
			if (sh->mode_of[i] == m)
				pl_json_int(j, runs[idx[i]].repetition_index);
		pl_json_end_array(j);
		if (m != mm) {
			why(idx, sh, m, mm, because, sizeof(because));
			pl_json_kv_str(j, "differs_by", because);
		}
		pl_json_end_object(j);
	}
	pl_json_end_array(j);
	pl_json_key(j, "outliers");
	pl_json_begin_array(j);
	for (int o = 0; o < sh->noutliers && sh->nmodes; o++) {
		const struct pb_run *r = &runs[idx[sh->outlier[o]]];
		why(idx, sh, -2 - sh->outlier[o], mm, because, sizeof(because));
		pl_json_begin_object(j);
		pl_json_kv_int(j, "repetition", r->repetition_index);
		pl_json_kv_double(j, "real_time", r->real_ns);
		pl_json_kv_double(j, "ratio_to_main_mode", r->real_ns / sh->mode[mm].center);
		pl_json_kv_str(j, "differs_by", because);
		pl_json_end_object(j);
	}
	pl_json_end_array(j);
	pl_json_end_object(j);
}

/* One aggregate entry: statistic k (0 mean, 1 median, 2 stddev, 3 cv) of runs[idx[..]];
 * the median carries the sample's shape. */
/* st: the four statistics of the real time, the CPU time, then each counter. */
static void write_aggregate(struct pl_json *j, const int *idx, int n, int k, const double (*st)[4],
			    const struct pb_shape *sh)
{
	static const char *names[] = {"mean", "median", "stddev", "cv"};
	const struct pb_run *first = &runs[idx[0]];
	char suffix[16];
	snprintf(suffix, sizeof(suffix), "_%s", names[k]);
	pl_json_begin_object(j);
	entry_head(j, first, suffix);
	pl_json_kv_int(j, "threads", first->inst->threads);
	pl_json_kv_str(j, "aggregate_name", names[k]);
	pl_json_kv_str(j, "aggregate_unit", k == 3 ? "percentage" : "time");
	pl_json_kv_int(j, "iterations", n);
	for (int f = -2; f < first->ncounters; f++) {
		pl_json_kv_double(j, f == -2 ? "real_time" : f == -1 ? "cpu_time" : first->counter[f].name, st[f + 2][k]);
		if (f == -1)
			pl_json_kv_str(j, "time_unit", "ns");
	}
	if (first->label[0])
		pl_json_kv_str(j, "label", first->label);
	if (k == 1 && sh)
		write_distribution(j, idx, sh);
	pl_json_end_object(j);
}

/* All runs of one instance, then its aggregates when it has two or more good runs. */
static int write_instance(struct pl_json *j, const struct pb_instance *in)
{
	int *idx = malloc((size_t)(nruns ? nruns : 1) * sizeof(*idx));
	if (!idx)
		return ENOMEM;
	for (int i = 0; i < nruns; i++)
		if (runs[i].inst == in)
			write_iteration(j, &runs[i]);
	struct pb_shape sh;
	bool shaped = shape_of(in, idx, &sh);
	int n = good_runs(in, idx), e = 0;
	double st[PB_MAX_RUN_COUNTERS + 2][4];
	for (int f = -2; n > 1 && !e && f < runs[idx[0]].ncounters; f++)
		e = stats_of(idx, n, f == -2 ? REAL_TIME : f, st[f + 2]);
	for (int k = 0; n > 1 && !e && k < 4; k++)
		write_aggregate(j, idx, n, k, (const double(*)[4])st, shaped ? &sh : NULL);
	free(idx);
	return 0;
}

/* Progress members of the context: how many instances were planned, and
 * which have not finished (all of them until the run ends, when final). */
static void progress_members(struct pl_json *j, bool final)
{
	const struct pb_instance *ins;
	int n = pb_instances(&ins);
	pl_json_kv_int(j, "benchmarks_planned", n);
	bool all = true;
	for (int i = 0; i < n; i++)
		all = all && finished(i);
	pl_json_kv_bool(j, "benchmarks_complete", final && all);
	pl_json_key(j, "benchmarks_not_run");
	pl_json_begin_array(j);
	for (int i = 0; i < n; i++)
		if (!finished(i))
			pl_json_str(j, ins[i].name);
	pl_json_end_array(j);
	pl_json_key(j, "benchmark_seconds");
	pl_json_begin_object(j);
	for (int i = 0; i < n && seconds; i++)
		if (finished(i))
			pl_json_kv_double(j, ins[i].name, seconds[i]);
	pl_json_end_object(j);
	pl_json_key(j, "benchmark_descriptions");
	pl_json_begin_object(j);
	for (int i = 0; i < n; i++)
		if (ins[i].per_family_index == 0)
			pl_json_kv_str(j, ins[i].b->name, ins[i].b->what);
	pl_json_end_object(j);
}

/* The whole file, from every finished instance; final when the run ended. */
static int write_file(bool final)
{
	struct pl_atomic a;
	int e = pl_atomic_open(&a, pb_opts.out);
	if (e)
		return e;
	struct pl_json j;
	pl_json_init(&j, a.f, 2);
	pl_json_begin_object(&j);
	pl_json_key(&j, "context");
	pl_json_begin_object(&j);
	pb_context_members(&j, backend ? backend : "none");
	progress_members(&j, final);
	pl_json_end_object(&j);
	pl_json_key(&j, "benchmarks");
	pl_json_begin_array(&j);
	const struct pb_instance *ins;
	int nin = pb_instances(&ins);
	for (int i = 0; i < nin && !e; i++)
		if (finished(i))
			e = write_instance(&j, &ins[i]);
	pl_json_end_array(&j);
	pl_json_end_object(&j);
	fputc('\n', a.f);
	if (e || ferror(a.f)) {
		pl_atomic_abort(&a);
		return e ? e : EIO;
	}
	return pl_atomic_commit(&a);
}

int pb_report_end(void)
{
	return pb_opts.out ? write_file(true) : 0;
}
