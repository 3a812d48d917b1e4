/* madvise advice that changes what a fork() child inherits:
 * WIPEONFORK (child sees zero, and so does its own child) / KEEPONFORK (undoes it), and
 * DONTFORK (range absent in the child: access faults) / DOFORK (undoes it). */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "pl_abi.h"

#define LEN_PAGES 16
#define SEED 9
#define FORK PC_FB(PC_F_FORK)
#define WIPE PC_FB(PC_F_MADV_WIPEONFORK)
#define DONTFORK PC_FB(PC_F_MADV_DONTFORK)

/* What the child saw, as its exit status. */
enum seen { SEEN_OLD, SEEN_ZERO, SEEN_MIXED, SEEN_OTHER, SEEN_SEGV, SEEN_BUS, SEEN_COUNT };
static const char *const seen_name[SEEN_COUNT] = {"old", "zero", "mixed", "other", "SIGSEGV", "SIGBUS"};

static const struct pc_map *child_map;

static int child_look(void *arg)
{
	(void)arg;
	int sig = pc_access_faults(child_map->addr, false, 0);
	if (sig)
		return sig == SIGSEGV ? SEEN_SEGV : SEEN_BUS;
	const char *c = pc_contents(child_map->addr, child_map->len, SEED);
	for (int i = 0; i <= SEEN_OTHER; i++)
		if (strcmp(c, seen_name[i]) == 0)
			return i;
	return SEEN_OTHER;
}

/* Fork; the child reports what it saw in the range; the parent must keep its data. */
static const char *child_sees(struct pc_ctx *ctx, const struct pc_map *m)
{
	child_map = m;
	int st = pc_in_child(child_look, NULL);
	if (st < 0)
		pc_error(ctx, "fork: %s", pc_strerror(errno));
	if (st >= SEEN_COUNT)
		pc_error(ctx, "child ended with status %d", st);
	PC_CHECK(ctx, pc_check_fill(m->addr, m->len, SEED), "the parent's data changed after fork");
	return seen_name[st];
}

/* Map, fill, apply advice in order (the second, when given, undoes the first). */
static void map_advised(struct pc_ctx *ctx, struct pc_map *m, int first, int second, const char *name,
			const char *second_name)
{
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), m);
	pc_fill(m->addr, m->len, SEED);
	pc_need_advice(ctx, first, name);
	pc_advise(ctx, m->addr, m->len, first, name);
	if (second >= 0)
		pc_advise(ctx, m->addr, m->len, second, second_name);
}

static void expect_child(struct pc_ctx *ctx, const struct pc_map *m, const char *want, const char *what)
{
	const char *got = child_sees(ctx, m);
	pc_observe(ctx, "child_sees", "%s", got);
	PC_CHECK(ctx, strcmp(got, want) == 0, "%s: child expected %s, observed %s", what, want, got);
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(wipe_zero, "madvise.wipeonfork.child_sees_zero", PC_PRIVATE_ANON | PC_THP, WIPE | FORK,
	       "after MADV_WIPEONFORK a fork child reads zero; the parent keeps its data")
{
	struct pc_map m;
	map_advised(ctx, &m, MADV_WIPEONFORK, -1, "MADV_WIPEONFORK", NULL);
	expect_child(ctx, &m, "zero", "MADV_WIPEONFORK");
}

PC_PROBE_KINDS_NEEDS(wipe_einval, "madvise.wipeonfork.shared_or_file_einval", PC_SHARED_ANON | PC_FILE_KINDS, WIPE,
	       "MADV_WIPEONFORK on shared or file mappings fails with EINVAL (madvise(2))")
{
	struct pc_map m;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	pc_need_advice(ctx, MADV_WIPEONFORK, "MADV_WIPEONFORK");
	int e = pc_madvise(m.addr, m.len, MADV_WIPEONFORK);
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(keep_data, "madvise.keeponfork.child_sees_data", PC_PRIVATE_ANON | PC_THP, WIPE | FORK,
	       "MADV_KEEPONFORK after MADV_WIPEONFORK: a fork child reads the data again")
{
	struct pc_map m;
	map_advised(ctx, &m, MADV_WIPEONFORK, MADV_KEEPONFORK, "MADV_WIPEONFORK", "MADV_KEEPONFORK");
	expect_child(ctx, &m, "old", "MADV_KEEPONFORK");
}

/* The grandchild's view, as its exit status: 0 zero, 1 the child's data, 2 the parent's data, 3 other. */
static int grandchild_look(void *arg)
{
	(void)arg;
	const char *c = pc_contents(child_map->addr, child_map->len, SEED + 1);
	if (strcmp(c, "zero") == 0 || strcmp(c, "old") == 0)
		return c[0] == 'z' ? 0 : 1;
	return pc_check_fill(child_map->addr, child_map->len, SEED) ? 2 : 3;
}

/* The child: must read zero, then writes data of its own, so that only a wipe the grandchild inherits
 * makes the grandchild read zero. Status: the grandchild's, or 4 the child did not read zero, 5 no fork. */
static int child_writes_then_forks(void *arg)
{
	(void)arg;
	if (!pc_all_bytes(child_map->addr, child_map->len, 0))
		return 4;
	pc_fill(child_map->addr, child_map->len, SEED + 1);
	int st = pc_in_child(grandchild_look, NULL);
	return st >= 0 && st <= 3 ? st : 5;
}

/* madvise(2): "Within the child created by fork(2), the MADV_WIPEONFORK setting remains in place." */
PC_PROBE_NEEDS(wipe_grandchild, "madvise.wipeonfork.grandchild_sees_zero", WIPE | FORK,
	       "MADV_WIPEONFORK stays set in the child: a grandchild reads zero, not what the child wrote")
{
	static const char *const names[] = {"zero", "child's data", "parent's data", "other"};
	struct pc_map m;
	map_advised(ctx, &m, MADV_WIPEONFORK, -1, "MADV_WIPEONFORK", NULL);
	child_map = &m;
	int st = pc_in_child(child_writes_then_forks, NULL);
	if (st < 0 || st == 5)
		pc_error(ctx, "fork: %s", st < 0 ? pc_strerror(errno) : "the child could not fork");
	if (st > 5)
		pc_error(ctx, "the child ended with status %d", st);
	PC_CHECK(ctx, st != 4, "the child of a MADV_WIPEONFORK range does not read zero");
	pc_observe(ctx, "grandchild_sees", "%s", names[st]);
	PC_CHECK(ctx, st == 0, "a grandchild of a MADV_WIPEONFORK range reads %s: the child's range was not wiped "
		 "on its own fork", names[st]);
	PC_CHECK(ctx, pc_check_fill(m.addr, m.len, SEED), "the parent lost its data");
	pc_pass(ctx);
}

PC_PROBE_KINDS_NEEDS(dontfork_faults, "madvise.dontfork.child_faults", PC_ALL_KINDS, DONTFORK | FORK,
	       "after MADV_DONTFORK the range is absent in a fork child: access raises SIGSEGV")
{
	struct pc_map m;
	map_advised(ctx, &m, MADV_DONTFORK, -1, "MADV_DONTFORK", NULL);
	expect_child(ctx, &m, "SIGSEGV", "MADV_DONTFORK");
}

PC_PROBE_KINDS_NEEDS(dofork_data, "madvise.dofork.child_sees_data", PC_ALL_KINDS, DONTFORK | FORK,
	       "MADV_DOFORK after MADV_DONTFORK: a fork child inherits the range and its data")
{
	struct pc_map m;
	map_advised(ctx, &m, MADV_DONTFORK, MADV_DOFORK, "MADV_DONTFORK", "MADV_DOFORK");
	expect_child(ctx, &m, "old", "MADV_DOFORK");
}
