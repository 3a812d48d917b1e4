/* refalloc: allocate/free churn under each release policy of the reference
 * allocator, and glibc's (the C library's) malloc for comparison. refalloc's
 * policy is fixed once per process, so every run happens in a forked child
 * configured for one policy; the parent asks for iterations over a pipe and
 * records the child's own timing (manual time). One iteration allocates a
 * batch of blocks of the argument's size (about 16 MiB, writing every page),
 * then frees them all, after one such batch as warm-up (the steady state of
 * a program that allocates and frees the same amounts over and over); the
 * counters are the child's RSS after the last free, its page faults and
 * what the allocator gave back. */
#include "config.h"
#include "pagelab/bench.h"
#include "pagelab/platform.h"
#include "pagelab/refalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH_BYTES ((size_t)16 << 20)
#define BATCH_MIN 16
#define BATCH_MAX 65536
#define REFALLOC_SIZES_FULL PB_ARGS(64, 4096, PB_KIB(256), PB_MIB(4))
#define REFALLOC_SIZES_QUICK PB_ARGS(64, PB_KIB(256), PB_MIB(4))

enum which { USE_REFALLOC, USE_LIBC };

struct churn {
	enum which which;
	size_t size, n;
	void **slot;
};

struct reply {
	int err;
	double sec;
};

struct final {
	int err;
	double rss_start, rss_end, faults, released, release_calls;
};

/* Whole-buffer socket I/O; a dead peer is EPIPE, never SIGPIPE. */
static int io_full(int fd, void *buf, size_t len, bool wr)
{
	char *b = buf;
	while (len > 0) {
		ssize_t k = wr ? send(fd, b, len, MSG_NOSIGNAL) : read(fd, b, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k == 0 ? EPIPE : errno;
		b += k;
		len -= (size_t)k;
	}
	return 0;
}

/* One batch: allocate n blocks, write every page of each, free them all. */
static int churn_once(const struct churn *c, double *sec)
{
	size_t ps = pl_page_size();
	double t0 = pb_seconds();
	for (size_t i = 0; i < c->n; i++) {
		char *p = c->which == USE_LIBC ? malloc(c->size) : ra_malloc(c->size);
		if (!p)
			return ENOMEM;
		for (size_t off = 0; off < c->size; off += ps)
			((volatile char *)p)[off] = 1;
		c->slot[i] = p;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (c->which == USE_LIBC)
			free(c->slot[i]);
		else
			ra_free(c->slot[i]);
	}
	*sec = pb_seconds() - t0;
	return 0;
}

static double rss_now(void)
{
	size_t rss = 0;
	return pl_rss(&rss) == 0 ? (double)rss : -1;
}

static double faults_now(void)
{
	uint64_t minor = 0, major = 0;
	return pl_fault_counts(&minor, &major) == 0 ? (double)(minor + major) : -1;
}

/* Allocator totals after the warm-up batch, so counters cover the measured batches. */
struct baseline {
	double rss, faults, released, release_calls;
};

static void ra_totals(const struct churn *c, double *released, double *calls)
{
	struct ra_stats st;
	*released = *calls = 0;
	if (c->which == USE_REFALLOC && ra_stats(&st) == 0) {
		*released = (double)st.released;
		*calls = (double)st.release_calls;
	}
}

static int child_setup(struct churn *c, enum ra_release policy, struct baseline *b)
{
	size_t slots = (c->n * sizeof(void *) + pl_page_size() - 1) / pl_page_size() * pl_page_size();
	double sec;
	b->rss = rss_now();
	if (c->which == USE_REFALLOC) {
		struct ra_config cfg;
		ra_config_default(&cfg);
		cfg.release = policy;
		cfg.retain = 0; /* every emptied span goes back at once: the policy decides how */
		int e = ra_configure(&cfg);
		if (e)
			return e;
	}
	int e = pl_map_anon(slots, (void **)&c->slot);
	if (!e)
		e = churn_once(c, &sec); /* warm-up: start-up costs stay out of the timed batches */
	b->faults = faults_now();
	ra_totals(c, &b->released, &b->release_calls);
	return e;
}

/* The child: answer 'r' with one timed batch, anything else with the totals. */
static void child_main(int fd, struct churn *c, enum ra_release policy)
{
	struct baseline b = {0};
	struct final f = {0};
	int e = child_setup(c, policy, &b);
	if (io_full(fd, &e, sizeof(e), true) || e)
		_exit(1);
	for (;;) {
		char cmd;
		struct reply r = {0};
		if (io_full(fd, &cmd, 1, false))
			_exit(1);
		if (cmd != 'r')
			break;
		r.err = churn_once(c, &r.sec);
		if (io_full(fd, &r, sizeof(r), true))
			_exit(1);
	}
	f.rss_start = b.rss;
	f.rss_end = rss_now();
	double faults = faults_now();
	f.faults = faults >= 0 && b.faults >= 0 ? faults - b.faults : -1; /* -1: unavailable */
	ra_totals(c, &f.released, &f.release_calls);
	f.released -= b.released;
	f.release_calls -= b.release_calls;
	_exit(io_full(fd, &f, sizeof(f), true) ? 1 : 0);
}

struct child {
	pid_t pid;
	int fd;
};

/* Reap the child; EPROTO unless it exited with status 0. */
static int child_reap(struct child *ch)
{
	int st;
	close(ch->fd);
	while (waitpid(ch->pid, &st, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : EPROTO;
}

/* Fork the child for one allocator and policy; 0, or the child's set-up error. */
static int child_start(struct child *ch, struct churn *c, enum ra_release policy)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return errno;
	ch->pid = fork();
	if (ch->pid == 0) {
		close(sv[0]);
		child_main(sv[1], c, policy);
	}
	close(sv[1]);
	if (ch->pid < 0) {
		close(sv[0]);
		return errno;
	}
	ch->fd = sv[0];
	int e, status = io_full(ch->fd, &e, sizeof(e), false);
	if (status || e) {
		(void)child_reap(ch);
		return status ? status : e;
	}
	return 0;
}

static int child_batch(struct child *ch, double *sec)
{
	char cmd = 'r';
	struct reply r;
	int e = io_full(ch->fd, &cmd, 1, true);
	if (!e)
		e = io_full(ch->fd, &r, sizeof(r), false);
	*sec = e ? 0 : r.sec;
	return e ? e : r.err;
}

static int child_finish(struct child *ch, struct final *f)
{
	char cmd = 'q';
	int e = io_full(ch->fd, &cmd, 1, true);
	if (!e)
		e = io_full(ch->fd, f, sizeof(*f), false);
	int r = child_reap(ch);
	return e ? e : r;
}

static void report(pb_state *s, const struct churn *c, const struct final *f)
{
	double iters = (double)pb_iterations(s);
	pb_set_items_processed(s, pb_iterations(s) * (int64_t)c->n);
	pb_counter(s, "ops", (double)c->n, PB_COUNTER_TOTAL);
	/* Counters the system cannot give (-1) are left out rather than reported as numbers. */
	if (f->rss_end >= 0)
		pb_counter(s, "rss_bytes", f->rss_end, PB_COUNTER_TOTAL);
	if (f->rss_end >= 0 && f->rss_start >= 0)
		pb_counter(s, "rss_growth_bytes", f->rss_end - f->rss_start, PB_COUNTER_TOTAL);
	if (f->faults >= 0)
		pb_counter(s, "child_faults_per_iter", iters > 0 ? f->faults / iters : 0, PB_COUNTER_TOTAL);
	if (c->which == USE_REFALLOC) {
		pb_counter(s, "released_bytes_per_iter", iters > 0 ? f->released / iters : 0, PB_COUNTER_TOTAL);
		pb_counter(s, "release_calls_per_iter", iters > 0 ? f->release_calls / iters : 0, PB_COUNTER_TOTAL);
	}
}

static void run_churn(pb_state *s, enum which which, enum ra_release policy)
{
	struct churn c = {.which = which, .size = (size_t)pb_arg(s, 0)};
	struct child ch;
	struct final f;
	size_t n = c.size ? BATCH_BYTES / c.size : 0;
	c.n = n < BATCH_MIN ? BATCH_MIN : n > BATCH_MAX ? BATCH_MAX : n;
	int e = child_start(&ch, &c, policy);
	if (e) {
		pb_skip_errno(s, e == EBUSY ? "refalloc already started in this process; policy cannot be set"
			   : which == USE_REFALLOC ? "refalloc child set-up" : "malloc child set-up", e);
		return;
	}
	while (pb_keep_running(s)) {
		double sec;
		if ((e = child_batch(&ch, &sec)) != 0) {
			pb_skip_errno(s, "allocation batch in the child", e);
			break;
		}
		pb_set_iteration_time(s, sec);
	}
	memset(&f, 0, sizeof(f));
	int fe = child_finish(&ch, &f);
	if (!e && fe)
		pb_skip_errno(s, "child did not finish cleanly", fe);
	else if (!e)
		report(s, &c, &f);
}

#define CHURN_BENCH(func, name, what, which, policy)                                              \
	PB_BENCH(func, name, what, .args = REFALLOC_SIZES_FULL, .quick_args = REFALLOC_SIZES_QUICK, \
		 .manual_time = true, .max_iterations = 2000)                                      \
	{                                                                                          \
		run_churn(s, which, policy);                                                       \
	}

CHURN_BENCH(bm_ra_none, "refalloc/none", "refalloc (keep free memory): allocate ~16 MiB of arg-byte blocks, write, free all, after a warm-up batch",
	    USE_REFALLOC, RA_RELEASE_NONE)
CHURN_BENCH(bm_ra_release, "refalloc/release", "refalloc (pl_release): allocate ~16 MiB of arg-byte blocks, write, free all, after a warm-up batch",
	    USE_REFALLOC, RA_RELEASE_RELEASE)
CHURN_BENCH(bm_ra_zero, "refalloc/release_zero",
	    "refalloc (pl_release_zero): allocate ~16 MiB of arg-byte blocks, write, free all, after a warm-up batch", USE_REFALLOC,
	    RA_RELEASE_ZERO)
CHURN_BENCH(bm_ra_reusable, "refalloc/reusable",
	    "refalloc (pl_reusable/pl_reuse): allocate ~16 MiB of arg-byte blocks, write, free all, after a warm-up batch", USE_REFALLOC,
	    RA_RELEASE_REUSABLE)
CHURN_BENCH(bm_ra_decommit, "refalloc/decommit",
	    "refalloc (pl_decommit): allocate ~16 MiB of arg-byte blocks, write, free all, after a warm-up batch", USE_REFALLOC,
	    RA_RELEASE_DECOMMIT)
CHURN_BENCH(bm_ra_libc, "refalloc/libc_malloc",
	    "the C library's malloc/free: allocate ~16 MiB of arg-byte blocks, write, free all, after a warm-up batch", USE_LIBC,
	    RA_RELEASE_NONE)
