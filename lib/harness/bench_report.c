/* Results of both back-ends: console lines, aggregates over repetitions, and
 * the JSON file in Google Benchmark's schema (context + benchmarks). */
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

void pb_report_begin(void)
{
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

int pb_report_run(const struct pb_run *r)
{
	/* One skipped entry per instance is enough: later repetitions say the same. */
	for (int i = 0; r->error && i < nruns; i++)
		if (runs[i].inst == r->inst && runs[i].error)
			return 0;
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

int pb_report_runs(const struct pb_run **out)
{
	*out = runs;
	return nruns;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void pb_stats(const double *v, int n, double *mean, double *median, double *stddev, double *cv)
{
	*mean = *median = *stddev = *cv = NAN;
	if (n <= 0)
		return;
	double *s = malloc((size_t)n * sizeof(*s));
	if (!s)
		return;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += s[i] = v[i];
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	*mean = sum / n;
	*median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	double sq = 0;
	for (int i = 0; i < n; i++)
		sq += (v[i] - *mean) * (v[i] - *mean);
	*stddev = n > 1 ? sqrt(sq / (n - 1)) : 0;
	*cv = *mean != 0 ? *stddev / *mean : 0;
	free(s);
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

/* One aggregate entry: statistic k (0 mean, 1 median, 2 stddev, 3 cv) of runs[idx[..]]. */
static void write_aggregate(struct pl_json *j, const int *idx, int n, int k)
{
	static const char *names[] = {"mean", "median", "stddev", "cv"};
	const struct pb_run *first = &runs[idx[0]];
	double *v = malloc((size_t)n * sizeof(*v));
	if (!v)
		return;
	char suffix[16];
	snprintf(suffix, sizeof(suffix), "_%s", names[k]);
	pl_json_begin_object(j);
	entry_head(j, first, suffix);
	pl_json_kv_int(j, "threads", first->inst->threads);
	pl_json_kv_str(j, "aggregate_name", names[k]);
	pl_json_kv_str(j, "aggregate_unit", k == 3 ? "percentage" : "time");
	pl_json_kv_int(j, "iterations", n);
	for (int f = -2; f < first->ncounters; f++) {
		for (int i = 0; i < n; i++) {
			const struct pb_run *r = &runs[idx[i]];
			v[i] = f == -2 ? r->real_ns : f == -1 ? r->cpu_ns : r->counter[f].value;
		}
		double st[4];
		pb_stats(v, n, &st[0], &st[1], &st[2], &st[3]);
		pl_json_kv_double(j, f == -2 ? "real_time" : f == -1 ? "cpu_time" : first->counter[f].name, st[k]);
		if (f == -1)
			pl_json_kv_str(j, "time_unit", "ns");
	}
	if (first->label[0])
		pl_json_kv_str(j, "label", first->label);
	pl_json_end_object(j);
	free(v);
}

/* All runs of one instance, then its aggregates when it has two or more good runs. */
static int write_instance(struct pl_json *j, const struct pb_instance *in)
{
	int *idx = malloc((size_t)(nruns ? nruns : 1) * sizeof(*idx));
	if (!idx)
		return ENOMEM;
	int n = 0;
	for (int i = 0; i < nruns; i++)
		if (runs[i].inst == in) {
			write_iteration(j, &runs[i]);
			if (!runs[i].error)
				idx[n++] = i;
		}
	for (int k = 0; n > 1 && k < 4; k++)
		write_aggregate(j, idx, n, k);
	free(idx);
	return 0;
}

int pb_report_end(const char *backend_name)
{
	if (!pb_opts.out)
		return 0;
	struct pl_atomic a;
	int e = pl_atomic_open(&a, pb_opts.out);
	if (e)
		return e;
	struct pl_json j;
	pl_json_init(&j, a.f, 2);
	pl_json_begin_object(&j);
	pl_json_key(&j, "context");
	pb_context_json(&j, backend_name);
	pl_json_key(&j, "benchmarks");
	pl_json_begin_array(&j);
	const struct pb_instance *ins;
	int nin = pb_instances(&ins);
	for (int i = 0; i < nin && !e; i++)
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
