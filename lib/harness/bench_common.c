/* The benchmark API of include/pagelab/bench.h, shared by both back-ends:
 * registry, instance selection, the loop, and what benchmarks report. */
#include "config.h"
#include "bench_impl.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"
#include "pagelab/topology.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pb_options pb_opts = {.pin_cpu = -1, .profile = PB_FULL, .min_warmup = -1};

#define PB_MAX_BENCHES 512
static const struct pb_bench *registry[PB_MAX_BENCHES];
static int nregistry;
static bool registry_overflow;
static struct pb_instance *instances;
static int ninstances;
static pthread_t main_thread;
static struct pl_counters *main_ctr; /* the measuring thread's counters, kept open */

void pb_register(const struct pb_bench *b)
{
	if (nregistry < PB_MAX_BENCHES)
		registry[nregistry++] = b;
	else
		registry_overflow = true;
}

int pb_instances(const struct pb_instance **out)
{
	*out = instances;
	return ninstances;
}

enum pb_profile pb_profile(void)
{
	return pb_opts.profile;
}

static bool filter_match(const struct pb_filter *re, bool negative, const char *name)
{
	if (!re)
		return true;
	return pb_filter_match(re, name) != negative;
}

/* Run-time settings of one instance from the profile, the benchmark and the flags. */
static void settle(struct pb_instance *in)
{
	const struct pb_bench *b = in->b;
	bool quick = pb_opts.profile == PB_QUICK;
	/* Long enough that a repetition averages over the hypervisor's and the scheduler's
	 * interruptions instead of catching one or none (10 ms reps varied by 6-17% here). */
	double def = quick ? 0.05 : 0.25;
	in->min_time = b->min_time > 0 && (!quick || b->min_time < def) ? b->min_time : def;
	if (pb_opts.min_time > 0)
		in->min_time = pb_opts.min_time;
	/* A warm-up run in both profiles: the first run of a benchmark in a process pays one-off costs
	 * (slab and page-table growth, a hypervisor backing fresh memory) that no later run pays. */
	in->min_warmup = pb_opts.min_warmup >= 0 ? pb_opts.min_warmup : (quick ? 0.01 : 0.05);
	in->repetitions = pb_opts.repetitions > 0 ? pb_opts.repetitions : 5; /* fewer cannot reach p < 0.05 in a Mann-Whitney comparison */
	in->fixed_iterations = pb_opts.fixed_iterations;
	in->threads = b->threads > 1 ? b->threads : 1;
}

static int add_instance(const struct pb_bench *b, int family, int *per_family, bool has_arg, int64_t arg,
			const struct pb_filter *re, bool negative)
{
	struct pb_instance in;
	memset(&in, 0, sizeof(in));
	in.b = b;
	in.has_arg = has_arg;
	in.arg = arg == PB_PAGE ? (int64_t)pl_page_size() : arg;
	if (has_arg)
		snprintf(in.name, sizeof(in.name), "%s/%" PRId64, b->name, in.arg);
	else
		snprintf(in.name, sizeof(in.name), "%s", b->name);
	if (!filter_match(re, negative, in.name))
		return 0;
	for (int i = 0; i < ninstances; i++)
		if (strcmp(instances[i].name, in.name) == 0)
			return 0; /* PB_PAGE was also in the list: one page is 16 KiB here */
	in.family_index = family;
	in.per_family_index = (*per_family)++;
	settle(&in);
	struct pb_instance *n = realloc(instances, (size_t)(ninstances + 1) * sizeof(*n));
	if (!n)
		return ENOMEM;
	instances = n;
	instances[ninstances++] = in;
	return 0;
}

int pb_select(char *msg, size_t msglen)
{
	main_thread = pthread_self();
	/* A new selection starts afresh (counters may have been reconfigured). */
	pl_counters_close(main_ctr);
	main_ctr = NULL;
	free(instances);
	instances = NULL;
	ninstances = 0;
	if (registry_overflow) {
		snprintf(msg, msglen, "more than %d benchmarks registered", PB_MAX_BENCHES);
		return E2BIG;
	}
	struct pb_filter *re = NULL;
	bool negative = pb_opts.filter && pb_opts.filter[0] == '-';
	const char *pat = pb_opts.filter ? pb_opts.filter + negative : NULL;
	if (pat && pb_filter_compile(pat, &re) != 0) {
		snprintf(msg, msglen, "bad --benchmark_filter regex '%s'", pat);
		return EINVAL;
	}
	int e = 0, family = 0;
	for (int i = 0; i < nregistry && !e; i++) {
		const struct pb_bench *b = registry[i];
		const struct pb_arg_list *a = pb_opts.profile == PB_QUICK && b->quick_args.n > 0 ? &b->quick_args : &b->args;
		int before = ninstances, per_family = 0;
		if (a->n == 0)
			e = add_instance(b, family, &per_family, false, 0, re, negative);
		for (int k = 0; k < a->n && !e; k++)
			e = add_instance(b, family, &per_family, true, a->v[k], re, negative);
		family += ninstances > before;
	}
	pb_filter_free(re);
	if (e)
		snprintf(msg, msglen, "out of memory selecting benchmarks");
	return e;
}

/* Counters of the calling thread: the measuring thread keeps its set open. */
static void open_counters(pb_state *s)
{
	if (pl_counters_count() == 0)
		return;
	if (pthread_equal(pthread_self(), main_thread)) {
		if (!main_ctr)
			s->ctr_err = pl_counters_open(&main_ctr);
		s->ctr = main_ctr;
		return;
	}
	s->ctr_err = pl_counters_open(&s->ctr);
	s->own_ctr = s->ctr != NULL;
}

void pb_state_init(pb_state *s, const struct pb_instance *in, int thread_index, int nthreads,
		   const struct pb_backend_ops *ops, void *backend)
{
	memset(s, 0, sizeof(*s));
	s->inst = in;
	s->thread_index = thread_index;
	s->nthreads = nthreads;
	s->ops = ops;
	s->backend = backend;
	/* Extra threads inherit the measuring thread's pinning: move them off it. */
	if (thread_index > 0 && pb_opts.pin_cpu != -2 && pl_topo_pin_other(thread_index - 1) != 0)
		(void)pl_topo_unpin();
	open_counters(s);
}

void pb_state_done(pb_state *s)
{
	if (s->own_ctr)
		pl_counters_close(s->ctr);
	s->ctr = NULL;
}

static void set_message(pb_state *s, const char *msg)
{
	if (!s->message[0])
		snprintf(s->message, sizeof(s->message), "%s", msg);
}

/* The host reference: a fixed chain of dependent integer operations (about
 * 100 us here), timed by the measuring thread right before and right after
 * each run. It makes no system call and touches no memory, so it only slows
 * down when the CPU itself does: the hypervisor runs something else on it,
 * the frequency drops, an interrupt storm. A virtual machine reports none of
 * that as steal time here, and none of it shows in the guest's counters; a
 * repetition that stands apart with this counter raised is the host's doing. */
#define HOST_REF_ROUNDS 100000
static double host_ref_best;

static double host_ref(void)
{
	volatile uint32_t sink;
	uint32_t x = 1;
	double t0 = pb_seconds();
	for (int i = 0; i < HOST_REF_ROUNDS; i++)
		x = x * 1103515245u + 12345u;
	sink = x;
	(void)sink;
	return pb_seconds() - t0;
}

/* host_ref_slowdown: the slower of the two samples around a run over the
 * fastest sample of the process (1 = as fast as the CPU has been). */
static void host_ref_record(pb_state *s, double before)
{
	double after = host_ref(), lo = before < after ? before : after, hi = before < after ? after : before;
	if (lo > 0 && (host_ref_best == 0 || lo < host_ref_best))
		host_ref_best = lo;
	if (host_ref_best > 0)
		pb_counter(s, "host_ref_slowdown", hi / host_ref_best, PB_COUNTER_TOTAL);
}

static bool keep_running_slow(pb_state *s)
{
	if (s->skipped || s->finished)
		return false;
	if (!s->started) {
		s->started = true;
		if (s->thread_index == 0)
			s->host_ref_s = host_ref();
		if (s->ctr && !s->ctr_err)
			s->ctr_err = pl_counters_begin(s->ctr);
		s->ops->start(s);
		s->remaining = s->max_iter > 0 ? s->max_iter - 1 : 0;
		if (s->max_iter > 0)
			return true;
	}
	if (s->paused) /* The loop may end paused; stop from the running state. */
		pb_resume_timing(s);
	s->finished = true;
	s->ops->stop(s);
	if (s->ctr && !s->ctr_err)
		s->ctr_err = pl_counters_end(s->ctr, s->ctr_total);
	if (s->thread_index == 0)
		host_ref_record(s, s->host_ref_s);
	return false;
}

bool pb_keep_running(pb_state *s)
{
	if (s->remaining > 0) {
		s->remaining--;
		return true;
	}
	return keep_running_slow(s);
}

void pb_state_after_fn(pb_state *s)
{
	if (s->skipped)
		return;
	if (!s->finished) {
		if (s->started) {
			s->remaining = 0;
			(void)keep_running_slow(s);
		}
		pb_skip(s, "benchmark returned before its loop finished");
	} else if (s->ctr_err) {
		char m[128];
		snprintf(m, sizeof(m), "counters failed: %s", strerror(s->ctr_err));
		pb_skip(s, m);
	}
}

void pb_pause_timing(pb_state *s)
{
	if (s->paused || !s->started || s->finished)
		return;
	s->paused = true;
	s->ops->pause(s);
	if (s->ctr && !s->ctr_err)
		s->ctr_err = pl_counters_pause(s->ctr);
}

void pb_resume_timing(pb_state *s)
{
	if (!s->paused)
		return;
	s->paused = false;
	if (s->ctr && !s->ctr_err)
		s->ctr_err = pl_counters_resume(s->ctr);
	s->ops->resume(s);
}

void pb_set_iteration_time(pb_state *s, double seconds)
{
	s->ops->iteration_time(s, seconds);
}

int64_t pb_iterations(const pb_state *s)
{
	return s->started ? s->max_iter - s->remaining : 0;
}

int64_t pb_arg(const pb_state *s, int i)
{
	return i == 0 && s->inst->has_arg ? s->inst->arg : 0;
}

size_t pb_arg_bytes(pb_state *s)
{
	size_t len = (size_t)pb_arg(s, 0), ps = pl_page_size();
	if (len > 0 && len % ps == 0)
		return len;
	char m[128];
	snprintf(m, sizeof(m), "%zu bytes is not a whole number of this system's %zu-byte pages", len, ps);
	pb_skip(s, m);
	return 0;
}

int pb_thread_index(const pb_state *s)
{
	return s->thread_index;
}

int pb_threads(const pb_state *s)
{
	return s->nthreads;
}

void pb_set_items_processed(pb_state *s, int64_t items)
{
	s->items = items;
	s->has_items = true;
}

void pb_set_bytes_processed(pb_state *s, int64_t bytes)
{
	s->bytes = bytes;
	s->has_bytes = true;
}

void pb_set_label(pb_state *s, const char *label)
{
	snprintf(s->label, sizeof(s->label), "%s", label ? label : "");
}

void pb_counter(pb_state *s, const char *name, double value, enum pb_counter_kind kind)
{
	for (int i = 0; i < s->ncustom; i++)
		if (strcmp(s->custom[i].name, name) == 0) {
			s->custom[i].value = value;
			s->custom[i].kind = kind;
			return;
		}
	if (s->ncustom == PB_MAX_CUSTOM)
		return;
	struct pb_custom *c = &s->custom[s->ncustom++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->value = value;
	c->kind = kind;
}

void pb_skip(pb_state *s, const char *msg)
{
	if (s->skipped)
		return;
	s->skipped = true;
	set_message(s, msg && msg[0] ? msg : "skipped");
	s->ops->skip(s, s->message);
}

double pb_seconds(void)
{
	return pb_now(CLOCK_MONOTONIC);
}

void pb_skip_errno(pb_state *s, const char *what, int e)
{
	char m[200];
	snprintf(m, sizeof(m), "%s: %s", what, pl_errno_desc(e));
	pb_skip(s, m);
}

void pb_per_page(pb_state *s, size_t pages)
{
	pb_set_items_processed(s, pb_iterations(s) * (int64_t)pages);
	pb_counter(s, "pages", (double)pages, PB_COUNTER_TOTAL);
}

void pb_touch_pages(void *p, size_t len)
{
	size_t page = pl_page_size();
	volatile char *c = p;
	for (size_t off = 0; off < len; off += page)
		c[off] = 1;
}

unsigned pb_read_pages(const void *p, size_t len)
{
	size_t page = pl_page_size();
	const volatile unsigned char *c = p;
	unsigned sum = 0;
	for (size_t off = 0; off < len; off += page)
		sum += c[off];
	return sum;
}

int pb_pin_other(int n)
{
	if (pb_opts.pin_cpu == -2)
		return ENOTSUP;
	return pl_topo_pin_other(n);
}

int pb_ncores(void)
{
	return pl_topo_ncores();
}
