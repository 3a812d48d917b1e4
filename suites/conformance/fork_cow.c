/* Copy-on-write after fork(): on private mappings every write after the
 * fork stays in the process that made it, in both directions, whatever the
 * pages' state before the fork (written, never touched, read-faulted to the
 * zero page, write-protected and unprotected) and on THP. Shared mappings
 * must share the writes instead. One table row per case; the comment says
 * what leaks (or is lost) if copy-on-write breaks. */
#include "config.h"
#include "pagelab/check.h"

#include <string.h>

#define LEN_PAGES 16
#define SEED_OLD 1    /* written before the fork */
#define SEED_PARENT 2 /* written by the parent after the fork */
#define SEED_CHILD 3  /* written by the child after the fork */

enum prep { FILLED, UNTOUCHED, READ_FAULTED, RO_RW_BEFORE };
enum writer { CHILD, PARENT, BOTH, PARENT_AFTER_RO_RW };

struct cow_case {
	enum prep prep;
	enum writer writer;
};

/* What a process sees in the range; the index is also the child's exit status. */
enum view { V_OLD, V_ZERO, V_PARENT, V_CHILD, V_OTHER, V_COUNT };
static const char *const view_name[V_COUNT] = {"old", "zero", "parent's write", "child's write", "other"};

static enum view classify(const void *p, size_t len)
{
	if (pc_check_fill(p, len, SEED_OLD))
		return V_OLD;
	if (pc_all_bytes(p, len, 0))
		return V_ZERO;
	if (pc_check_fill(p, len, SEED_PARENT))
		return V_PARENT;
	return pc_check_fill(p, len, SEED_CHILD) ? V_CHILD : V_OTHER;
}

static void prepare(struct pc_ctx *ctx, const struct pc_map *m, enum prep prep)
{
	if (prep == FILLED || prep == RO_RW_BEFORE)
		pc_fill(m->addr, m->len, SEED_OLD);
	if (prep == READ_FAULTED)
		for (size_t off = 0; off < m->len; off += pl_page_size())
			(void)((volatile char *)m->addr)[off];
	if (prep == RO_RW_BEFORE) {
		PC_SETUP(ctx, pl_protect(m->addr, m->len, PL_PROT_READ));
		PC_SETUP(ctx, pl_protect(m->addr, m->len, PL_PROT_RW));
	}
}

struct child_part {
	const struct pc_map *m;
	enum writer w;
};

/* The child: writes when its role says so, reports its final view as exit status. */
/* A token that cannot be sent ends the child at once: the parent then reads end of file, not a hang. */
static int child(void *arg, int in, int out)
{
	const struct child_part *c = arg;
	if (c->w == CHILD || c->w == BOTH)
		pc_fill(c->m->addr, c->m->len, SEED_CHILD);
	if ((c->w == CHILD || c->w == BOTH) && pc_token_send(out) != 0)
		return V_COUNT;
	if (pc_token_await(in) != 0)
		return V_COUNT;
	return classify(c->m->addr, c->m->len);
}

/* The parent's part; returns its own view (CHILD and BOTH) or V_COUNT when not looked. */
static enum view parent(struct pc_ctx *ctx, const struct pc_map *m, enum writer w, const struct pc_fork *f)
{
	enum view seen = V_COUNT;
	if (w == CHILD || w == BOTH)
		PC_SETUP(ctx, pc_token_await(f->from_child));
	if (w == CHILD)
		seen = classify(m->addr, m->len); /* while the child is still alive */
	if (w == PARENT_AFTER_RO_RW) {
		PC_SETUP(ctx, pl_protect(m->addr, m->len, PL_PROT_READ));
		PC_SETUP(ctx, pl_protect(m->addr, m->len, PL_PROT_RW));
	}
	if (w != CHILD)
		pc_fill(m->addr, m->len, SEED_PARENT);
	if (w == BOTH)
		seen = classify(m->addr, m->len);
	PC_SETUP(ctx, pc_token_send(f->to_child));
	return seen;
}

/* Fork with two pipes; returns the child's view (its exit status). */
static enum view fork_and_run(struct pc_ctx *ctx, const struct pc_map *m, enum writer w, enum view *pview)
{
	struct child_part c = {m, w};
	struct pc_fork f;
	pc_fork_with_pipes(ctx, child, &c, &f);
	*pview = parent(ctx, m, w, &f);
	int st = pc_fork_wait(ctx, &f);
	if (st >= V_COUNT)
		pc_error(ctx, "child did not report (status %d)", st);
	return (enum view)st;
}

/* Private: each side sees the pre-fork data or its own write. Shared: the last write. */
static enum view expected_child(enum writer w, bool shared, enum view initial)
{
	if (w == CHILD)
		return V_CHILD;
	if (shared)
		return V_PARENT; /* the parent wrote last */
	return w == BOTH ? V_CHILD : initial;
}

static void run_case(struct pc_ctx *ctx, const struct cow_case *c)
{
	struct pc_map m;
	enum view pview;
	pc_map_or_skip(ctx, LEN_PAGES * pl_page_size(), &m);
	prepare(ctx, &m, c->prep);
	bool shared = pc_kind_shared(m.kind);
	enum view initial = c->prep == FILLED || c->prep == RO_RW_BEFORE ? V_OLD : V_ZERO;
	enum view cview = fork_and_run(ctx, &m, c->writer, &pview);
	enum view want_child = expected_child(c->writer, shared, initial);
	enum view want_parent = c->writer == CHILD ? (shared ? V_CHILD : initial) : V_PARENT;
	if (pview == V_COUNT)
		pview = classify(m.addr, m.len);
	pc_observe(ctx, "child_sees", "%s", view_name[cview]);
	pc_observe(ctx, "parent_sees", "%s", view_name[pview]);
	PC_CHECK(ctx, pview == want_parent, "parent expected %s, observed %s", view_name[want_parent], view_name[pview]);
	PC_CHECK(ctx, cview == want_child, "child expected %s, observed %s", view_name[want_child], view_name[cview]);
	pc_unmap(&m);
	pc_pass(ctx);
}

#define COW_CASE(fn, id, prep, writer, text)                                         \
	PC_PROBE_KINDS_NEEDS(fn, id, PC_ALL_KINDS, PC_FB(PC_F_FORK), text)           \
	{                                                                              \
		static const struct cow_case c = {prep, writer};                       \
		run_case(ctx, &c);                                                     \
	}

/* Broken CoW: the child's write shows in the parent's private memory. */
COW_CASE(child_touched, "fork_cow.child_write.touched", FILLED, CHILD,
	 "a child's write to written private memory stays in the child")
/* Broken CoW: the parent's write after fork leaks into the child's snapshot. */
COW_CASE(parent_touched, "fork_cow.parent_write.touched", FILLED, PARENT,
	 "a parent's write after fork stays out of the child")
/* Broken CoW: one side's write overwrites the other's private copy. */
COW_CASE(both_touched, "fork_cow.both_write.touched", FILLED, BOTH,
	 "parent and child both write: each keeps its own")
/* Broken CoW on never-touched pages: a fault in one process fills the other's. */
COW_CASE(child_untouched, "fork_cow.child_write.untouched", UNTOUCHED, CHILD,
	 "a child's write to memory never touched before fork stays in the child")
COW_CASE(parent_untouched, "fork_cow.parent_write.untouched", UNTOUCHED, PARENT,
	 "a parent's write to memory never touched before fork stays out of the child")
/* Broken CoW of the shared zero page: a write replaces the zero page for both. */
COW_CASE(child_zero_page, "fork_cow.child_write.zero_page", READ_FAULTED, CHILD,
	 "a child's write to read-faulted (zero-page) memory stays in the child")
COW_CASE(parent_zero_page, "fork_cow.parent_write.zero_page", READ_FAULTED, PARENT,
	 "a parent's write to read-faulted (zero-page) memory stays out of the child")
/* Broken CoW after mprotect: write permission restored without breaking sharing. */
COW_CASE(child_ro_rw, "fork_cow.child_write.mprotect_ro_rw", RO_RW_BEFORE, CHILD,
	 "mprotect read-only then read-write before fork: the child's write stays private")
COW_CASE(parent_ro_rw, "fork_cow.parent_write.mprotect_ro_rw", RO_RW_BEFORE, PARENT,
	 "mprotect read-only then read-write before fork: the parent's write stays private")
/* Broken CoW when the parent re-enables writing on pages shared with a child. */
COW_CASE(parent_ro_rw_after, "fork_cow.parent_write.mprotect_after_fork", FILLED, PARENT_AFTER_RO_RW,
	 "the parent mprotects read-only then read-write after fork: its write stays private")
