/* What fork hands a child, asked through the page layer (pl_inherit):
 * minherit(INHERIT_ZERO / INHERIT_NONE / INHERIT_SHARE / INHERIT_COPY) on the
 * BSDs and Darwin, madvise's fork advice on Linux. FreeBSD's own tests check
 * the share/copy chain across three processes, which Linux cannot express
 * (it shares private memory with no child): each mode the running system
 * refuses skips as unsupported, whatever system it is. */
#include "config.h"
#include "pagelab/check.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define LEN_PAGES 8
#define SEED 31
#define SEED_CHILD 32
#define SEED_GRANDCHILD 33

/* What a child saw, as its exit status. */
enum seen { SEEN_OLD, SEEN_ZERO, SEEN_MIXED, SEEN_OTHER, SEEN_SEGV, SEEN_BUS, SEEN_COUNT };
static const char *const seen_name[SEEN_COUNT] = {"old", "zero", "mixed", "other", "SIGSEGV", "SIGBUS"};

static const char *mode_name(enum pl_inherit how)
{
	static const char *const names[] = {"copy", "share", "none", "zero"};
	return (unsigned)how < sizeof(names) / sizeof(names[0]) ? names[how] : "?";
}

/* Map and fill the range, and ask for `how`; a refusal is a skip when it is the answer
 * to a request the system does not know (EINVAL from both madvise and minherit). */
static void *map_inherit(struct pc_ctx *ctx, enum pl_inherit how)
{
	void *p;
	size_t len = LEN_PAGES * pl_page_size();
	PC_SETUP(ctx, pl_map_anon(len, &p));
	pc_fill(p, len, SEED);
	int e = pl_inherit(p, len, how);
	if (e) {
		char what[48];
		snprintf(what, sizeof(what), "pl_inherit(%s)", mode_name(how));
		pc_refusal(ctx, what, e, EINVAL);
	}
	return p;
}

static void *child_range;

static int child_look(void *arg)
{
	(void)arg;
	int sig = pc_access_faults(child_range, false, 0);
	if (sig)
		return sig == SIGSEGV ? SEEN_SEGV : SEEN_BUS;
	const char *c = pc_contents(child_range, LEN_PAGES * pl_page_size(), SEED);
	for (int i = 0; i <= SEEN_OTHER; i++)
		if (strcmp(c, seen_name[i]) == 0)
			return i;
	return SEEN_OTHER;
}

/* Fork; the child says what it sees in the range; the parent's bytes must stay. */
static const char *child_sees(struct pc_ctx *ctx, void *p)
{
	child_range = p;
	int st = pc_in_child(child_look, NULL);
	if (st < 0)
		pc_error(ctx, "fork: %s", pc_strerror(errno));
	if (st >= SEEN_COUNT)
		pc_error(ctx, "child ended with status %d", st);
	PC_CHECK(ctx, pc_check_fill(p, LEN_PAGES * pl_page_size(), SEED), "the parent's data changed after fork");
	pc_observe(ctx, "child_sees", "%s", seen_name[st]);
	return seen_name[st];
}

static void expect_child(struct pc_ctx *ctx, enum pl_inherit how, const char *want)
{
	void *p = map_inherit(ctx, how);
	const char *got = child_sees(ctx, p);
	PC_CHECK(ctx, strcmp(got, want) == 0, "inherit %s: the child saw %s, expected %s", mode_name(how), got, want);
	(void)pl_unmap(p, LEN_PAGES * pl_page_size());
	pc_pass(ctx);
}

PC_PROBE(zero, "inherit.zero.child_reads_zero",
	 "inherit zero (MADV_WIPEONFORK, INHERIT_ZERO): the child reads zero, the parent keeps its bytes")
{
	expect_child(ctx, PL_INHERIT_ZERO, "zero");
}

PC_PROBE(none, "inherit.none.child_faults",
	 "inherit none (MADV_DONTFORK, INHERIT_NONE): nothing is mapped there in the child, so an access faults")
{
	expect_child(ctx, PL_INHERIT_NONE, "SIGSEGV");
}

PC_PROBE(copy_after_zero, "inherit.copy.undoes_zero",
	 "inherit copy after inherit zero: the child gets a copy of the bytes again")
{
	void *p = map_inherit(ctx, PL_INHERIT_ZERO);
	PC_SETUP(ctx, pl_inherit(p, LEN_PAGES * pl_page_size(), PL_INHERIT_COPY));
	const char *got = child_sees(ctx, p);
	PC_CHECK(ctx, strcmp(got, "old") == 0, "inherit copy after zero: the child saw %s, expected old", got);
	(void)pl_unmap(p, LEN_PAGES * pl_page_size());
	pc_pass(ctx);
}

static int child_writes(void *arg)
{
	(void)arg;
	pc_fill(child_range, LEN_PAGES * pl_page_size(), SEED_CHILD);
	return 0;
}

PC_PROBE(share, "inherit.share.parent_sees_child_writes",
	 "inherit share (INHERIT_SHARE): private memory the child writes reads the child's bytes in the parent")
{
	void *p = map_inherit(ctx, PL_INHERIT_SHARE);
	child_range = p;
	int st = pc_in_child(child_writes, NULL);
	if (st != 0)
		pc_error(ctx, "child ended with status %d", st);
	const char *got = pc_contents(p, LEN_PAGES * pl_page_size(), SEED_CHILD);
	pc_observe(ctx, "parent_sees", "%s", strcmp(got, "old") == 0 ? "child's bytes" : got);
	PC_CHECK(ctx, strcmp(got, "old") == 0, "the parent does not see the child's writes to shared-inherited memory");
	(void)pl_unmap(p, LEN_PAGES * pl_page_size());
	pc_pass(ctx);
}

/* Chain exit codes of the middle process. */
enum { CHAIN_OK, CHAIN_COPY_REFUSED, CHAIN_GRANDCHILD_FAILED, CHAIN_COPY_LEAKED };

static int grandchild_writes(void *arg)
{
	(void)arg;
	pc_fill(child_range, LEN_PAGES * pl_page_size(), SEED_GRANDCHILD);
	return 0;
}

/* The middle process: its range is shared with its parent; made copy, its own child's
 * writes must not reach it; then its own write must reach its parent. */
static int chain_middle(void *arg)
{
	(void)arg;
	size_t len = LEN_PAGES * pl_page_size();
	if (pl_inherit(child_range, len, PL_INHERIT_COPY) != 0)
		return CHAIN_COPY_REFUSED;
	if (pc_in_child(grandchild_writes, NULL) != 0)
		return CHAIN_GRANDCHILD_FAILED;
	if (!pc_check_fill(child_range, len, SEED))
		return CHAIN_COPY_LEAKED;
	pc_fill(child_range, len, SEED_CHILD);
	return CHAIN_OK;
}

PC_PROBE(copy_share_chain, "inherit.share.copy_chain",
	 "share to a child, which marks the range copy: its own child's writes stay in the grandchild, its own "
	 "writes reach the parent (minherit's share/copy chain across three processes)")
{
	void *p = map_inherit(ctx, PL_INHERIT_SHARE);
	child_range = p;
	int st = pc_in_child(chain_middle, NULL);
	if (st == CHAIN_COPY_REFUSED)
		pc_error(ctx, "pl_inherit(copy) in the child was refused where the parent's share was accepted");
	if (st == CHAIN_GRANDCHILD_FAILED || st < 0 || st > CHAIN_COPY_LEAKED)
		pc_error(ctx, "the chain's processes did not run (status %d)", st);
	pc_observe(ctx, "grandchild_write_reaches_child", "%s", st == CHAIN_COPY_LEAKED ? "yes" : "no");
	PC_CHECK(ctx, st != CHAIN_COPY_LEAKED, "a copy-inherited range took the grandchild's writes");
	bool shared = pc_check_fill(p, LEN_PAGES * pl_page_size(), SEED_CHILD);
	pc_observe(ctx, "child_write_reaches_parent", "%s", shared ? "yes" : "no");
	PC_CHECK(ctx, shared, "the child's writes to a share-inherited range did not reach the parent");
	(void)pl_unmap(p, LEN_PAGES * pl_page_size());
	pc_pass(ctx);
}
