/* tlb: what a TLB shootdown costs. The measuring thread unmaps, DONTNEEDs or
 * write-protects one page it touched while N other threads of this process
 * spin on other cores ("_threads": they share the mm, so the kernel must
 * interrupt them) or N other processes do ("_procs": same CPU load, no shared
 * mm, no shootdown); threads minus procs isolates the shootdown. The
 * "reaccess_*" benchmarks time the victim's side: reading pages again after
 * another thread invalidated its TLB entries. Counter "tlb_irqs_per_iter":
 * shootdown interrupts received by all CPUs per iteration, set-up and
 * retries included (mprotect's RW restore flushes too), where the system
 * counts them (pl_tlb_shootdowns).
 * A sample is taken again (at most MAX_RETRIES times) when this thread was
 * preempted inside its timed window, or when a _threads shootdown reached no
 * other CPU by interrupt: a CPU the threads' core was not running (another
 * task had it, or the hypervisor had descheduled the virtual CPU and flushes
 * it lazily) needs none, and a sample without one is not the cost named.
 * All timing is manual: set-up (map, touch, handshakes) is not measured. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "pl_abi.h"

#define MAX_OTHERS 64
#define OTHERS_FULL PB_ARGS(0, 1, 2, 3, 7, 15)
#define OTHERS_QUICK PB_ARGS(0, 1)
#define TLB_MAX_ITER 200000
/* A sample whose timed window saw this thread preempted is taken again, at most this often. */
#define MAX_RETRIES 8
/* A victim iteration times ~1 us but its handshake costs 10-100x that: 2 ms of
 * measured time (thousands of samples) keeps each run well under a second. */
#define VICTIM_MIN_TIME 0.002

enum tlb_op { OP_MUNMAP, OP_DONTNEED, OP_MPROTECT };

/* N busy threads (sharing our mm) or processes (not sharing it), pinned to other cores. */
struct others {
	int n;
	bool procs;
	char *pages; /* one page per thread, touched by it */
	size_t pages_len;
	pthread_t th[MAX_OTHERS];
	pid_t pid[MAX_OTHERS];
	int pin_err[MAX_OTHERS];
	atomic_int ready;
	atomic_int stop;
};

struct spin_arg {
	struct others *o;
	int i;
};
static struct spin_arg spin_args[MAX_OTHERS];

/* Skip (and say why) when this machine has fewer than `need` other cores. */
static bool enough_cores(pb_state *s, int need)
{
	int other = pb_ncores() - 1;
	if (need <= other && need <= MAX_OTHERS)
		return true;
	char msg[128];
	snprintf(msg, sizeof(msg), "needs %d other core(s); this machine has %d usable core(s)", need,
		 pb_ncores());
	pb_skip(s, msg);
	return false;
}

static void *spin_thread(void *argp)
{
	struct spin_arg *a = argp;
	struct others *o = a->o;
	volatile char *mine = o->pages + (size_t)a->i * pl_page_size();
	o->pin_err[a->i] = pb_pin_other(a->i);
	mine[0] = 1;
	atomic_fetch_add(&o->ready, 1);
	while (!atomic_load_explicit(&o->stop, memory_order_relaxed))
		mine[0]++;
	return NULL;
}

/* A spinning process: pinned, reports the pinning result on fd, never returns. */
static void spin_process(int i, int fd)
{
#if defined(HAVE_SYS_PRCTL_H) && defined(PR_SET_PDEATHSIG)
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		_exit(1);
#endif
	int e = pb_pin_other(i);
	unsigned char b = (unsigned char)(e > 255 ? 255 : e);
	if (write(fd, &b, 1) != 1 || e)
		_exit(1);
	volatile unsigned long x = 0;
	for (;;)
		x++;
}

static int start_procs(struct others *o)
{
	int fds[2];
	if (pipe(fds) != 0)
		return errno;
	int e = 0;
	for (int i = 0; i < o->n && !e; i++) {
		pid_t pid = fork();
		if (pid == 0)
			spin_process(i, fds[1]);
		if (pid < 0) {
			e = errno;
			break;
		}
		o->pid[i] = pid;
		unsigned char b;
		e = read(fds[0], &b, 1) == 1 ? b : EPIPE;
		o->pin_err[i] = e;
	}
	close(fds[0]);
	close(fds[1]);
	return e;
}

static int start_threads(struct others *o)
{
	o->pages_len = (size_t)o->n * pl_page_size();
	int e = pl_map_anon(o->pages_len, (void **)&o->pages);
	if (e)
		return e;
	int started = 0;
	for (; started < o->n && !e; started++) {
		spin_args[started] = (struct spin_arg){o, started};
		e = pthread_create(&o->th[started], NULL, spin_thread, &spin_args[started]);
	}
	o->n = e ? started - 1 : started; /* only the created ones are joined */
	while (!e && atomic_load(&o->ready) < o->n)
		sched_yield();
	for (int i = 0; i < o->n && !e; i++)
		e = o->pin_err[i];
	return e;
}

static void stop_others(struct others *o)
{
	atomic_store(&o->stop, 1);
	for (int i = 0; i < o->n; i++) {
		if (o->procs && o->pid[i] > 0) {
			int st;
			if (kill(o->pid[i], SIGKILL) != 0 || waitpid(o->pid[i], &st, 0) < 0)
				fprintf(stderr, "tlb: could not reap spinning process %d\n", (int)o->pid[i]);
		} else if (!o->procs && pthread_join(o->th[i], NULL) != 0) {
			fprintf(stderr, "tlb: could not join a spinning thread\n");
		}
	}
	if (o->pages && pl_unmap(o->pages, o->pages_len) != 0)
		fprintf(stderr, "tlb: munmap of the spinners' pages failed\n");
}

static int start_others(struct others *o, int n, bool procs)
{
	memset(o, 0, sizeof(*o));
	atomic_init(&o->ready, 0);
	atomic_init(&o->stop, 0);
	o->procs = procs;
	o->n = n;
	if (n == 0)
		return 0;
	return procs ? start_procs(o) : start_threads(o);
}

/* Involuntary context switches of this thread so far; -1 where unknown. */
static long preemptions(void)
{
#ifdef RUSAGE_THREAD
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) == 0)
		return ru.ru_nivcsw;
#endif
	return -1;
}

/* One timed operation on the single page *p (re-mapped for munmap). */
static int op_once(enum tlb_op op, char **p, double *sec, bool *preempted)
{
	size_t ps = pl_page_size();
	int e = 0;
	*sec = 0;
	if (op == OP_MUNMAP && (e = pl_map_anon(ps, (void **)p)) != 0)
		return e;
	if (op == OP_MPROTECT && (e = pl_protect(*p, ps, PL_PROT_RW)) != 0)
		return e;
	*(volatile char *)*p = 1; /* a writable TLB entry on this core */
	long c0 = preemptions();
	double t0 = pb_seconds();
	if (op == OP_MUNMAP)
		e = munmap(*p, ps) == 0 ? 0 : errno;
	else if (op == OP_MPROTECT)
		e = mprotect(*p, ps, PROT_READ) == 0 ? 0 : errno;
	else
		e = madvise(*p, ps, MADV_DONTNEED) == 0 ? 0 : errno;
	*sec = pb_seconds() - t0;
	*preempted = c0 >= 0 && preemptions() != c0;
	if (op == OP_MUNMAP)
		*p = NULL;
	return e;
}

/* Samples taken again, by reason, and kept although invalid after MAX_RETRIES. */
struct retries {
	int64_t preempted, no_interrupt, kept_invalid;
};

/* op_once until a sample is valid: not preempted inside the timed window and,
 * when want_irq and the system counts them, with a shootdown interrupt in it. */
static int op_sample(enum tlb_op op, char **p, bool want_irq, double *sec, struct retries *r)
{
	for (int k = 0;; k++) {
		uint64_t i0 = 0, i1 = 0;
		bool preempted, counted = want_irq && pl_tlb_shootdowns(&i0) == 0;
		int e = op_once(op, p, sec, &preempted);
		bool no_irq = counted && pl_tlb_shootdowns(&i1) == 0 && i1 == i0;
		if (e || (!preempted && !no_irq))
			return e;
		if (k == MAX_RETRIES) {
			r->kept_invalid++;
			return 0;
		}
		r->preempted += preempted;
		r->no_interrupt += no_irq && !preempted;
	}
}

static const char *op_name(enum tlb_op op)
{
	return op == OP_MUNMAP ? "munmap" : op == OP_MPROTECT ? "mprotect" : "madvise(MADV_DONTNEED)";
}

static void run_shootdown(pb_state *s, enum tlb_op op, bool procs)
{
	int n = (int)pb_arg(s, 0);
	char *p = NULL;
	struct others o;
	if (!enough_cores(s, n))
		return;
	int e = op == OP_MUNMAP ? 0 : pl_map_anon(pl_page_size(), (void **)&p);
	if (e) {
		pb_skip_errno(s, "mmap", e);
		return;
	}
	if ((e = start_others(&o, n, procs)) != 0)
		pb_skip_errno(s, procs ? "cannot start a pinned process on another core"
				    : "cannot start a pinned thread on another core", e);
	uint64_t irq0 = 0, irq1 = 0;
	struct retries r = {0, 0, 0};
	int irq_err = pl_tlb_shootdowns(&irq0);
	while (!e && pb_keep_running(s)) {
		double sec;
		if ((e = op_sample(op, &p, n > 0 && !procs, &sec, &r)) != 0)
			pb_skip_errno(s, op_name(op), e);
		else
			pb_set_iteration_time(s, sec);
	}
	if (!irq_err && !pl_tlb_shootdowns(&irq1) && pb_iterations(s) > 0)
		pb_counter(s, "tlb_irqs_per_iter", (double)(irq1 - irq0) / (double)pb_iterations(s), PB_COUNTER_TOTAL);
	stop_others(&o);
	if (p && pl_unmap(p, pl_page_size()) != 0)
		fprintf(stderr, "tlb: munmap of the measured page failed\n");
	pb_counter(s, "others", n, PB_COUNTER_TOTAL);
	pb_counter(s, "preempted_retries", (double)r.preempted, PB_COUNTER_TOTAL);
	if (n > 0 && !procs && !irq_err) {
		pb_counter(s, "no_interrupt_retries", (double)r.no_interrupt, PB_COUNTER_TOTAL);
		pb_counter(s, "invalid_samples_kept", (double)r.kept_invalid, PB_COUNTER_TOTAL);
	}
	pb_counter(s, "pages", 1, PB_COUNTER_TOTAL);
}

#define SHOOTDOWN_BENCH(func, name, what, op, procs)                                             \
	PB_BENCH(func, name, what, .args = OTHERS_FULL, .quick_args = OTHERS_QUICK,              \
		 .manual_time = true, .max_iterations = TLB_MAX_ITER)                            \
	{                                                                                         \
		run_shootdown(s, op, procs);                                                      \
	}

SHOOTDOWN_BENCH(bm_munmap_threads, "tlb/munmap_threads",
		"munmap of one touched page; arg threads of this process spin on other cores (a sample in which no other CPU got a shootdown interrupt is taken again)", OP_MUNMAP, false)
SHOOTDOWN_BENCH(bm_munmap_procs, "tlb/munmap_procs",
		"munmap of one touched page; arg other processes spin on other cores", OP_MUNMAP, true)
SHOOTDOWN_BENCH(bm_dontneed_threads, "tlb/dontneed_threads",
		"MADV_DONTNEED of one touched page; arg threads of this process spin on other cores (a sample in which no other CPU got a shootdown interrupt is taken again)",
		OP_DONTNEED, false)
SHOOTDOWN_BENCH(bm_dontneed_procs, "tlb/dontneed_procs",
		"MADV_DONTNEED of one touched page; arg other processes spin on other cores", OP_DONTNEED, true)
SHOOTDOWN_BENCH(bm_mprotect_threads, "tlb/mprotect_threads",
		"mprotect RW->R of one written page; arg threads of this process spin on other cores (a sample in which no other CPU got a shootdown interrupt is taken again)",
		OP_MPROTECT, false)
SHOOTDOWN_BENCH(bm_mprotect_procs, "tlb/mprotect_procs",
		"mprotect RW->R of one written page; arg other processes spin on other cores", OP_MPROTECT, true)

/* ---- the victim's side: re-access after another thread invalidated our entries ---- */

enum victim_op { V_NONE, V_MPROTECT, V_REMAP };

struct helper {
	pthread_t th;
	enum victim_op op;
	char *p;
	size_t len;
	atomic_int req;  /* sequence number of the requested operation; -1: exit */
	atomic_int done; /* sequence number of the last finished one */
	atomic_int ready;
	int pin_err;
	int err;
};

static size_t gcd(size_t a, size_t b)
{
	while (b) {
		size_t r = a % b;
		a = b;
		b = r;
	}
	return a;
}

/* Chain the pages into a cycle with a stride coprime to their count, so the
 * chase visits each once in an order no prefetcher follows page by page. */
static void link_pages(char *p, size_t len)
{
	size_t ps = pl_page_size(), n = len / ps, stride = n > 2 ? n / 2 + 1 : 1;
	while (gcd(stride, n) != 1)
		stride++;
	for (size_t k = 0; k < n; k++) {
		size_t from = k * stride % n, to = (k + 1) * stride % n;
		*(char **)(p + from * ps) = p + to * ps;
	}
}

static int helper_op(struct helper *h)
{
	if (h->op == V_MPROTECT) {
		int e = pl_protect(h->p, h->len, PL_PROT_READ);
		return e ? e : pl_protect(h->p, h->len, PL_PROT_RW);
	}
	if (h->op == V_REMAP) {
		/* One MAP_FIXED replaces the range atomically: no unmapped window another thread could map into. */
		void *q = mmap(h->p, h->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (q == MAP_FAILED)
			return errno;
		link_pages(h->p, h->len); /* present again: the victim misses the TLB, not a page */
	}
	return 0;
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	h->pin_err = pb_pin_other(0);
	atomic_store(&h->ready, 1);
	int seen = 0;
	for (;;) {
		int r;
		while ((r = atomic_load_explicit(&h->req, memory_order_acquire)) == seen)
			;
		if (r < 0)
			break;
		if (!h->err)
			h->err = helper_op(h);
		seen = r;
		atomic_store_explicit(&h->done, r, memory_order_release);
	}
	return NULL;
}

/* One dependent load per page, in the order link_pages set: each miss is paid in full. */
static uintptr_t chase_pages(const char *p, size_t pages)
{
	const char *q = p;
	for (size_t i = 0; i < pages; i++)
		q = *(const char *const volatile *)q;
	return (uintptr_t)q;
}

/* One iteration: warm the TLB, let the helper act, then time the re-read. */
static double victim_once(struct helper *h, int seq, size_t pages, uintptr_t *sum, bool *preempted)
{
	*sum += chase_pages(h->p, pages);
	atomic_store_explicit(&h->req, seq, memory_order_release);
	while (atomic_load_explicit(&h->done, memory_order_acquire) != seq)
		;
	long c0 = preemptions();
	double t0 = pb_seconds();
	*sum += chase_pages(h->p, pages);
	double sec = pb_seconds() - t0;
	*preempted = c0 >= 0 && preemptions() != c0;
	return sec;
}

static int helper_start(struct helper *h, enum victim_op op, size_t len)
{
	memset(h, 0, sizeof(*h));
	atomic_init(&h->req, 0);
	atomic_init(&h->done, 0);
	atomic_init(&h->ready, 0);
	h->op = op;
	h->len = len;
	int e = pl_map_anon(len, (void **)&h->p);
	if (e)
		return e;
	link_pages(h->p, len);
	if ((e = pthread_create(&h->th, NULL, helper_main, h)) != 0) {
		(void)pl_unmap(h->p, len);
		h->p = NULL;
		return e;
	}
	while (!atomic_load(&h->ready))
		sched_yield();
	return h->pin_err;
}

static void helper_stop(struct helper *h)
{
	atomic_store(&h->req, -1);
	if (pthread_join(h->th, NULL) != 0)
		fprintf(stderr, "tlb: could not join the helper thread\n");
	if (pl_unmap(h->p, h->len) != 0)
		fprintf(stderr, "tlb: munmap of the victim's pages failed\n");
}

static void run_victim(pb_state *s, enum victim_op op)
{
	size_t ps = pl_page_size(), pages = (size_t)pb_arg(s, 0);
	struct helper h;
	uintptr_t sum = 0;
	int seq = 0;
	if (!enough_cores(s, 1))
		return;
	int e = helper_start(&h, op, pages * ps);
	if (e) {
		pb_skip_errno(s, "cannot start a pinned helper thread on another core", e);
		if (h.p)
			helper_stop(&h);
		return;
	}
	int64_t retries = 0;
	while (pb_keep_running(s)) {
		bool preempted = true;
		double sec = 0;
		for (int k = 0; preempted && k <= MAX_RETRIES && !h.err; k++, retries += preempted)
			sec = victim_once(&h, ++seq, pages, &sum, &preempted);
		if (h.err) {
			pb_skip_errno(s, op == V_MPROTECT ? "mprotect" : "mmap(MAP_FIXED)", h.err);
			break;
		}
		pb_set_iteration_time(s, sec);
	}
	helper_stop(&h);
	pb_do_not_optimize(&sum);
	pb_set_items_processed(s, pb_iterations(s) * (int64_t)pages);
	pb_counter(s, "pages", (double)pages, PB_COUNTER_TOTAL);
	pb_counter(s, "preempted_retries", (double)retries, PB_COUNTER_TOTAL);
}

#define VICTIM_BENCH(func, name, what, op)                                                        \
	PB_BENCH(func, name, what, .args = PB_ARGS(1, 16, 64, 512), .quick_args = PB_ARGS(16),   \
		 .manual_time = true, .max_iterations = TLB_MAX_ITER, .min_time = VICTIM_MIN_TIME) \
	{                                                                                         \
		run_victim(s, op);                                                                \
	}

VICTIM_BENCH(bm_reaccess_warm, "tlb/reaccess_warm",
	     "chase a pointer through arg pages after a handshake with a thread that does nothing (baseline)",
	     V_NONE)
VICTIM_BENCH(bm_reaccess_mprotect, "tlb/reaccess_mprotect",
	     "chase a pointer through arg pages after another thread's mprotect R then RW of them", V_MPROTECT)
VICTIM_BENCH(bm_reaccess_remap, "tlb/reaccess_remap",
	     "chase a pointer through arg pages after another thread replaces them (mmap MAP_FIXED) and relinks them",
	     V_REMAP)
