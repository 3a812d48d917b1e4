/* Real reclaim: a worker process in a memory-limited group of its own (made
 * without changing any system setting) fills memory the system may drop,
 * then allocates more until the limit makes the system reclaim. Lazily freed
 * pages (MADV_FREE) and droppable memory (MAP_DROPPABLE) must then be dropped
 * (read zero) before anything is killed, while pages written after MADV_FREE
 * keep their data. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "pl_abi.h"

#define MIB ((size_t)1 << 20)
#define LIMIT (48 * MIB)
#define DROPPABLE_BYTES (16 * MIB)
#define PRESSURE_MAX (4 * LIMIT)
#define SEED 53

/* Worker results (exit statuses). */
enum { W_DROPPED, W_KEPT_ALL, W_LOST_WRITES, W_SETUP, W_JOIN, W_REFUSED };

static struct pl_memlimit *group;
static bool droppable_kind;

/* Pages of [p, p+len) that read zero now. */
static size_t zero_pages(const char *p, size_t len)
{
	size_t n = 0;
	for (size_t off = 0; off < len; off += pl_page_size())
		n += pc_all_bytes(p + off, pl_page_size(), 0);
	return n;
}

/* Allocate and touch memory a MiB at a time until some of [p, p+len) is dropped or PRESSURE_MAX is reached. */
static bool press_until_dropped(const char *p, size_t len)
{
	for (size_t used = 0; used < PRESSURE_MAX; used += MIB) {
		char *q;
		if (pl_map_anon(MIB, (void **)&q) != 0)
			return false;
		memset(q, 1, MIB);
		if (zero_pages(p, len) > 0)
			return true;
	}
	return false;
}

/* The worker: joins the group, prepares the memory, presses; exits with a W_* status. */
static int worker(void *arg)
{
	(void)arg;
	size_t ps = pl_page_size(), len = DROPPABLE_BYTES;
	char *p;
	if (pl_memlimit_join(group) != 0)
		return W_JOIN;
	if (droppable_kind) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return errno == ENOMEM ? W_SETUP : W_REFUSED;
	} else if (pl_map_anon(len, (void **)&p) != 0) {
		return W_SETUP;
	}
	pc_fill(p, len, SEED);
	if (!droppable_kind && (pc_madvise(p, len, MADV_FREE) != 0))
		return W_REFUSED;
	/* Written after MADV_FREE: these two pages must survive any reclaim. */
	p[0] = 'k';
	p[10 * ps] = 'k';
	if (!press_until_dropped(p, len))
		return W_KEPT_ALL;
	return droppable_kind || (p[0] == 'k' && p[10 * ps] == 'k') ? W_DROPPED : W_LOST_WRITES;
}

static void run_pressure(struct pc_ctx *ctx, bool droppable)
{
	const char *why = NULL;
	int e = pl_memlimit_create(LIMIT, &group, &why);
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "%s", why ? why : "no memory-limited groups here");
	if (e == EPERM)
		pc_skip_prerequisite(ctx, "%s", why ? why : "not allowed to make a memory-limited group");
	PC_SETUP(ctx, e);
	droppable_kind = droppable;
	int st = pc_in_child(worker, NULL), fork_e = errno;
	PC_SETUP(ctx, pl_memlimit_remove(group));
	if (st < 0)
		pc_error(ctx, "fork: %s", pc_strerror(fork_e));
	if (st == W_JOIN)
		pc_skip_prerequisite(ctx, "the worker could not join the memory-limited group");
	if (st == W_SETUP)
		pc_error(ctx, "the worker could not map its memory");
	if (st == W_REFUSED) /* the parent's feature probe saw the request accepted */
		pc_fail_refused(ctx, "the worker's %s of %zu MiB was refused", droppable ? "mmap(MAP_DROPPABLE)" : "MADV_FREE",
				DROPPABLE_BYTES / MIB);
	pc_measure(ctx, "group_limit_mib", "%zu", LIMIT / MIB);
	pc_observe(ctx, "under_pressure", "%s", st == W_DROPPED ? "dropped" : st == W_KEPT_ALL ? "kept all"
					      : st == W_LOST_WRITES ? "lost written pages" : st == 128 + SIGKILL ? "killed" : "other");
	/* madvise(2): a page written after MADV_FREE is not freed. */
	PC_CHECK(ctx, st != W_LOST_WRITES, "pages written after MADV_FREE were dropped under pressure");
	PC_CHECK(ctx, st == W_DROPPED || st == W_KEPT_ALL || st == 128 + SIGKILL, "the worker ended with status %d", st);
	/* The system "can" drop such pages under pressure (madvise(2), mmap(2)): when, and before what, is its choice. */
	PC_BEHAVIOUR(ctx, st == W_DROPPED, "expected the pages let go to be dropped under the group's pressure before "
		     "anything was killed (Linux's reclaim order), saw: %s",
		     st == W_KEPT_ALL ? "nothing dropped" : "the worker killed (out of memory) first");
	pc_pass(ctx);
}

PC_PROBE_NEEDS(free_pressure, "reclaim.free.dropped_under_pressure", PC_FB(PC_F_MADV_FREE) | PC_FB(PC_F_FORK),
	       "under a group's memory pressure lazily freed pages are dropped (read zero); pages written since survive")
{
	run_pressure(ctx, false);
}

PC_PROBE_NEEDS(droppable_pressure, "reclaim.droppable.dropped_under_pressure",
	       PC_FB(PC_F_MAP_DROPPABLE) | PC_FB(PC_F_FORK),
	       "under a group's memory pressure droppable memory is dropped (reads zero) instead of the worker being killed")
{
	void *p = mmap(NULL, pl_page_size(), PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		pc_refusal(ctx, "mmap(MAP_DROPPABLE)", errno == PL_ENOTSUPP ? ENOTSUP : errno, pc_unknown_map_type_errno());
	run_pressure(ctx, true);
}
