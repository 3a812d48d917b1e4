/* The portable back-end: plain C and POSIX threads. Calibrates the iteration
 * count to a minimum time as Google Benchmark does, warms up, repeats, and
 * hands each run to the common reporter (which computes the aggregates). */
#include "config.h"
#include "bench_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITERATIONS 1000000000LL

/* All threads of one run start and stop their timers together. */
struct barrier {
	pthread_mutex_t m;
	pthread_cond_t c;
	int n, waiting, generation;
};

struct prun {
	int64_t iters;
	struct barrier *bar;
};

static void barrier_wait(struct barrier *b)
{
	if (!b || b->n < 2)
		return;
	pthread_mutex_lock(&b->m);
	int gen = b->generation;
	if (++b->waiting == b->n) {
		b->waiting = 0;
		b->generation++;
		pthread_cond_broadcast(&b->c);
	} else {
		while (gen == b->generation)
			pthread_cond_wait(&b->c, &b->m);
	}
	pthread_mutex_unlock(&b->m);
}

static void p_start(pb_state *s)
{
	struct prun *r = s->backend;
	barrier_wait(r->bar);
	s->max_iter = r->iters;
	s->cpu_s -= pb_now(CLOCK_THREAD_CPUTIME_ID);
	s->real_s -= pb_now(CLOCK_MONOTONIC);
}

static void p_pause(pb_state *s)
{
	s->real_s += pb_now(CLOCK_MONOTONIC);
	s->cpu_s += pb_now(CLOCK_THREAD_CPUTIME_ID);
}

static void p_resume(pb_state *s)
{
	s->cpu_s -= pb_now(CLOCK_THREAD_CPUTIME_ID);
	s->real_s -= pb_now(CLOCK_MONOTONIC);
}

static void p_stop(pb_state *s)
{
	if (!s->paused)
		p_pause(s);
	barrier_wait(((struct prun *)s->backend)->bar);
}

static void p_iteration_time(pb_state *s, double seconds)
{
	s->manual_s += seconds;
}

static void p_skip(pb_state *s, const char *msg)
{
	(void)s;
	(void)msg;
}

static const struct pb_backend_ops portable_ops = {p_start, p_stop, p_pause, p_resume, p_iteration_time, p_skip};

struct worker {
	pb_state s;
	pthread_t tid;
	const struct pb_instance *in;
	int index;
	struct prun *run;
};

static void run_state(struct worker *w)
{
	pb_state_init(&w->s, w->in, w->index, w->in->threads, &portable_ops, w->run);
	w->in->b->fn(&w->s);
	pb_state_after_fn(&w->s);
	pb_state_done(&w->s);
}

static void *worker_main(void *arg)
{
	run_state(arg);
	return NULL;
}

/* One run of iters iterations on in->threads threads; w[] gets the states. */
static int run_once(const struct pb_instance *in, int64_t iters, struct worker *w)
{
	struct barrier bar = {.n = in->threads};
	struct prun run = {iters, &bar};
	int e = pthread_mutex_init(&bar.m, NULL);
	if (e)
		return e;
	e = pthread_cond_init(&bar.c, NULL);
	if (e) {
		pthread_mutex_destroy(&bar.m);
		return e;
	}
	int started = 1;
	for (int t = 0; t < in->threads; t++)
		w[t] = (struct worker){.in = in, .index = t, .run = &run};
	while (started < in->threads && !e) {
		e = pthread_create(&w[started].tid, NULL, worker_main, &w[started]);
		started += !e;
	}
	if (e) { /* Release the started threads from a barrier the missing ones never reach. */
		pthread_mutex_lock(&bar.m);
		bar.n = started;
		pthread_mutex_unlock(&bar.m);
	}
	run_state(&w[0]);
	for (int t = 1; t < started; t++)
		pthread_join(w[t].tid, NULL);
	pthread_cond_destroy(&bar.c);
	pthread_mutex_destroy(&bar.m);
	return e;
}

static int cmp_named(const void *a, const void *b)
{
	return strcmp(((const struct pb_named *)a)->name, ((const struct pb_named *)b)->name);
}

static void add_counter(struct pb_run *r, const char *name, double v)
{
	if (r->ncounters == PB_MAX_RUN_COUNTERS)
		return;
	snprintf(r->counter[r->ncounters].name, sizeof(r->counter[0].name), "%s", name);
	r->counter[r->ncounters++].value = v;
}

/* Combine the threads' states as Google Benchmark does: real time averaged,
 * CPU time summed, counters summed (per-iteration ones over all threads'
 * iterations), rates over CPU time unless the time is manual. */
static void make_run(const struct pb_instance *in, struct worker *w, int64_t iters, struct pb_run *r)
{
	int n = in->threads;
	memset(r, 0, sizeof(*r));
	r->inst = in;
	r->iterations = iters;
	double real = 0, cpu = 0, manual = 0, items = 0, bytes = 0;
	bool has_items = false, has_bytes = false;
	for (int t = 0; t < n; t++) {
		const pb_state *s = &w[t].s;
		if (s->skipped && !r->error) {
			r->error = true;
			snprintf(r->message, sizeof(r->message), "%s", s->message);
		}
		real += s->real_s / n;
		cpu += s->cpu_s;
		manual += s->manual_s / n;
		items += (double)s->items;
		bytes += (double)s->bytes;
		has_items |= s->has_items;
		has_bytes |= s->has_bytes;
	}
	if (r->error)
		return;
	double time = in->b->manual_time ? manual : real;
	double rate_s = in->b->manual_time ? manual : cpu;
	double all_iters = (double)iters * n;
	r->real_ns = time * 1e9 / (double)iters;
	r->cpu_ns = cpu * 1e9 / (double)iters;
	snprintf(r->label, sizeof(r->label), "%s", w[0].s.label);
	for (int i = 0; i < pl_counters_count(); i++) {
		double sum = 0;
		for (int t = 0; t < n; t++)
			sum += w[t].s.ctr_total[i];
		add_counter(r, pl_counters_name(i), sum / all_iters);
	}
	for (int c = 0; c < w[0].s.ncustom; c++) {
		const struct pb_custom *k = &w[0].s.custom[c];
		double sum = 0;
		for (int t = 0; t < n; t++)
			for (int x = 0; x < w[t].s.ncustom; x++)
				if (strcmp(w[t].s.custom[x].name, k->name) == 0)
					sum += w[t].s.custom[x].value;
		add_counter(r, k->name, k->kind == PB_COUNTER_AVG_ITER ? sum / all_iters : k->kind == PB_COUNTER_RATE ? sum / rate_s : sum);
	}
	if (has_items)
		add_counter(r, "items_per_second", items / rate_s);
	if (has_bytes)
		add_counter(r, "bytes_per_second", bytes / rate_s);
	qsort(r->counter, (size_t)r->ncounters, sizeof(r->counter[0]), cmp_named);
}

/* Grow the iteration count until a run lasts min_time (Google Benchmark's rule);
 * *iters holds the count of the run left in r. Untimed work can dwarf the
 * timed part, so a run's wall time is bounded too: the part of it that grows
 * with the iterations (pauses for set-up), estimated from the last two runs,
 * so that set-up done once per run (a buffer filled before the loop) does not
 * count as if every iteration paid it. */
static int calibrate(const struct pb_instance *in, double min_time, int64_t *iters, struct worker *w, struct pb_run *r)
{
	int64_t cap = in->b->max_iterations > 0 ? in->b->max_iterations : MAX_ITERATIONS;
	double budget = pb_opts.profile == PB_QUICK ? 0.25 : 2.5;
	int64_t prev_iters = 0;
	double prev_wall = 0;
	for (;;) {
		double wall = pb_now(CLOCK_MONOTONIC);
		int e = run_once(in, *iters, w);
		if (e)
			return e;
		wall = pb_now(CLOCK_MONOTONIC) - wall;
		make_run(in, w, *iters, r);
		double t = r->real_ns * 1e-9 * (double)*iters;
		if (r->error || in->fixed_iterations || t >= min_time || *iters >= cap)
			return 0;
		int64_t limit = cap;
		if (prev_iters > 0 && *iters > prev_iters) {
			/* Wall time per iteration from two runs; the rest is the run's own set-up. */
			double per = (wall - prev_wall) / (double)(*iters - prev_iters);
			if (per > 0 && budget / per < (double)limit)
				limit = (int64_t)(budget / per);
			if (limit <= *iters)
				return 0;
		} else if (wall > t && wall * 10 > budget) {
			/* One run: set-up per run and per iteration cannot be told apart yet; grow
			 * as if all of it were per iteration, but to two runs at least. */
			int64_t fit = (int64_t)((double)*iters * budget / wall);
			limit = fit > *iters ? fit : *iters + 1;
		}
		prev_iters = *iters;
		prev_wall = wall;
		double mult = t / min_time > 0.1 ? min_time * 1.4 / (t > 1e-9 ? t : 1e-9) : 10;
		double next = (double)*iters * mult;
		if (limit > cap)
			limit = cap;
		*iters = next > (double)limit ? limit : next > (double)(*iters + 1) ? (int64_t)next : *iters + 1;
	}
}

struct job {
	int instance, repetition;
};

/* Warm up, then find the iteration count of in's repetitions; r holds the last run. */
static int find_iterations(const struct pb_instance *in, int64_t *iters, struct worker *w, struct pb_run *r)
{
	int64_t warm = 1;
	int e = 0;
	if (in->min_warmup > 0 && !in->fixed_iterations)
		e = calibrate(in, in->min_warmup, &warm, w, r);
	*iters = in->fixed_iterations ? in->fixed_iterations : 1;
	return e ? e : calibrate(in, in->min_time, iters, w, r);
}

int pb_calibrate(const struct pb_instance *in, int64_t *iters)
{
	struct worker *w = calloc((size_t)in->threads, sizeof(*w));
	struct pb_run r;
	int e = w ? find_iterations(in, iters, w, &r) : ENOMEM;
	free(w);
	return e;
}

/* Run (instance, repetition) pairs; the first run of an instance calibrates. */
static int run_job(const struct pb_instance *in, int rep, int64_t *iters, struct worker *w)
{
	struct pb_run r;
	int e = 0;
	if (*iters == 0) {
		e = find_iterations(in, iters, w, &r);
	} else {
		e = run_once(in, *iters, w);
		make_run(in, w, *iters, &r);
	}
	if (e)
		return e;
	r.repetition_index = rep;
	return pb_report_run(&r);
}

static void shuffle(struct job *jobs, int n)
{
	uint64_t x = (uint64_t)(pb_now(CLOCK_REALTIME) * 1e6) | 1;
	for (int i = n - 1; i > 0; i--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int k = (int)(x % (uint64_t)(i + 1));
		struct job t = jobs[i];
		jobs[i] = jobs[k];
		jobs[k] = t;
	}
}

int pb_portable_run(void)
{
	const struct pb_instance *ins;
	int nin = pb_instances(&ins), njobs = 0, maxthreads = 1;
	for (int i = 0; i < nin; i++) {
		njobs += ins[i].repetitions;
		maxthreads = ins[i].threads > maxthreads ? ins[i].threads : maxthreads;
	}
	struct job *jobs = calloc((size_t)njobs + 1, sizeof(*jobs));
	int64_t *iters = calloc((size_t)nin + 1, sizeof(*iters));
	struct worker *w = calloc((size_t)maxthreads, sizeof(*w));
	int e = jobs && iters && w ? 0 : ENOMEM;
	for (int i = 0, k = 0; !e && i < nin; i++)
		for (int rep = 0; rep < ins[i].repetitions; rep++)
			jobs[k++] = (struct job){i, rep};
	if (!e && pb_opts.random_interleaving)
		shuffle(jobs, njobs);
	pb_report_begin("portable");
	for (int k = 0; !e && k < njobs; k++)
		e = run_job(&ins[jobs[k].instance], jobs[k].repetition, &iters[jobs[k].instance], w);
	free(jobs);
	free(iters);
	free(w);
	return e;
}
