/* madvise(MADV_GUARD_INSTALL / MADV_GUARD_REMOVE), Linux 6.13: lightweight
 * guard pages inside a mapping. Any access faults with SIGSEGV; removing
 * the guard gives back demand-zero (or the shared object's) contents. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pl_abi.h"

#define LEN_PAGES 8
#define GUARD_AT 2 /* first guarded page */
#define GUARD_PAGES 2
#define SEED 13
#define GUARD PC_FB(PC_F_MADV_GUARD)

struct guarded {
	struct pc_map m;
	char *guard; /* first guarded byte */
	size_t glen;
};

/* Map LEN_PAGES of the probe's kind, fill them, guard the middle pages. */
static void map_guarded(struct pc_ctx *ctx, struct guarded *g)
{
	size_t ps = pl_page_size();
	pc_need_advice(ctx, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL"); /* Linux 6.13 */
	pc_map_or_skip(ctx, LEN_PAGES * ps, &g->m);
	pc_fill(g->m.addr, g->m.len, SEED);
	g->guard = (char *)g->m.addr + GUARD_AT * ps;
	g->glen = GUARD_PAGES * ps;
	/* File-backed mappings take guards since 6.15; before, EINVAL as for unknown advice. */
	pc_advise(ctx, g->guard, g->glen, MADV_GUARD_INSTALL, "MADV_GUARD_INSTALL");
}

/* The signal a read and a write of each guarded page raise; 0 if any access worked. */
static int guard_signal(const struct guarded *g)
{
	int sig = -1;
	for (size_t off = 0; off < g->glen; off += pl_page_size()) {
		int r = pc_access_faults(g->guard + off, false, 0);
		int w = pc_access_faults(g->guard + off + 1, true, 1);
		if (r == 0 || w == 0)
			return 0;
		sig = r;
	}
	return sig;
}

/* The pages around the guard still hold their data. */
static bool neighbours_kept(const struct guarded *g, const unsigned char *copy)
{
	size_t before = (size_t)(g->guard - (char *)g->m.addr);
	size_t after = before + g->glen;
	return memcmp(g->m.addr, copy, before) == 0 &&
	       memcmp((char *)g->m.addr + after, copy + after, g->m.len - after) == 0;
}

static const char *sig_label(int sig)
{
	return sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig ? "other signal" : "none";
}

PC_PROBE_KINDS_NEEDS(guard_faults, "madvise.guard_install.access_faults", PC_ALL_KINDS, GUARD,
	       "reads and writes of guard pages raise SIGSEGV; neighbouring pages keep their data")
{
	struct guarded g;
	map_guarded(ctx, &g);
	unsigned char *copy = malloc(g.m.len);
	if (!copy)
		pc_error(ctx, "malloc of %zu bytes failed", g.m.len);
	pc_fill(copy, g.m.len, SEED);
	int sig = guard_signal(&g);
	pc_observe(ctx, "signal", "%s", sig_label(sig));
	PC_CHECK(ctx, sig == SIGSEGV, "access to a guard page: expected SIGSEGV, observed %s", sig_label(sig));
	PC_CHECK(ctx, neighbours_kept(&g, copy), "pages around the guard lost data");
	free(copy);
	pc_unmap(&g.m);
	pc_pass(ctx);
}

/* After GUARD_REMOVE: private memory is demand-zero again; shared objects keep their data. */
PC_PROBE_KINDS_NEEDS(guard_remove, "madvise.guard_remove.contents_after", PC_ALL_KINDS, GUARD,
	       "MADV_GUARD_REMOVE makes the pages accessible: private anonymous reads zero, a private file view "
	       "re-reads the file (its private copy is gone), shared reads the object")
{
	struct guarded g;
	map_guarded(ctx, &g);
	bool shared = pc_kind_shared(g.m.kind), private_file = !shared && g.m.fd >= 0;
	unsigned char *buf = NULL;
	if (private_file) {
		/* The file gets data of its own, unlike both zero and the private copy written through the view. */
		if ((buf = malloc(g.m.len)) == NULL)
			pc_error(ctx, "malloc of %zu bytes failed", g.m.len);
		pc_fill(buf, g.m.len, SEED + 1);
		PC_SETUP(ctx, pwrite(g.m.fd, buf, g.m.len, 0) == (ssize_t)g.m.len ? 0 : errno);
	}
	pc_advise(ctx, g.guard, g.glen, MADV_GUARD_REMOVE, "MADV_GUARD_REMOVE");
	int sig = pc_access_faults(g.guard, false, 0);
	PC_CHECK(ctx, sig == 0, "guard page still faults (%s) after MADV_GUARD_REMOVE", sig_label(sig));
	bool zero = pc_all_bytes(g.guard, g.glen, 0);
	bool old = pc_check_fill(g.m.addr, g.m.len, SEED); /* the whole mapping as written */
	/* The guarded pages show the file; the others keep their private copies. */
	bool file = private_file && memcmp(g.guard, buf + (g.guard - (char *)g.m.addr), g.glen) == 0;
	free(buf);
	pc_observe(ctx, "contents_after", "%s", zero ? "zero" : old ? "old" : file ? "the file" : "other");
	if (private_file)
		PC_CHECK(ctx, file, "a private file view after MADV_GUARD_REMOVE: expected the file's data");
	else
		PC_CHECK(ctx, shared ? old : zero, "contents after MADV_GUARD_REMOVE: expected %s",
			 shared ? "old (the shared object)" : "zero");
	pc_unmap(&g.m);
	pc_pass(ctx);
}

static const struct guarded *child_guard;

static int child_touches_guard(void *arg)
{
	(void)arg;
	return guard_signal(child_guard);
}

PC_PROBE_KINDS_NEEDS(guard_fork, "madvise.guard_install.fork_inherited", PC_ALL_KINDS,
		     GUARD | PC_FB(PC_F_FORK),
	       "a fork child inherits guard pages: its accesses raise SIGSEGV too")
{
	struct guarded g;
	map_guarded(ctx, &g);
	child_guard = &g;
	int st = pc_in_child(child_touches_guard, NULL);
	if (st < 0)
		pc_error(ctx, "fork: %s", pc_strerror(errno));
	pc_observe(ctx, "child_signal", "%s", sig_label(st));
	/* A child that reads through the guard gets memory its parent fenced off. */
	PC_CHECK(ctx, st == SIGSEGV, "child access to the guard: expected SIGSEGV, observed %s", sig_label(st));
	PC_CHECK(ctx, guard_signal(&g) == SIGSEGV, "the parent's guard is gone after fork");
	pc_unmap(&g.m);
	pc_pass(ctx);
}

/* Zapping and protection changes must not drop guard markers, as MADV_GUARD_INSTALL documents. */
PC_PROBE_NEEDS(guard_survives, "madvise.guard_install.survives_dontneed_mprotect",
	       GUARD | PC_FB(PC_F_MADV_DONTNEED),
	 "MADV_DONTNEED and mprotect over a guarded range leave the guard in place")
{
	struct guarded g;
	map_guarded(ctx, &g);
	PC_SETUP(ctx, pc_madvise(g.m.addr, g.m.len, MADV_DONTNEED));
	int after_dontneed = guard_signal(&g);
	pc_observe(ctx, "after_dontneed", "%s", sig_label(after_dontneed));
	PC_SETUP(ctx, pl_protect(g.m.addr, g.m.len, PL_PROT_READ));
	PC_SETUP(ctx, pl_protect(g.m.addr, g.m.len, PL_PROT_RW));
	int after_mprotect = guard_signal(&g);
	pc_observe(ctx, "after_mprotect", "%s", sig_label(after_mprotect));
	PC_CHECK(ctx, after_dontneed == SIGSEGV, "guard lost after MADV_DONTNEED (%s)", sig_label(after_dontneed));
	PC_CHECK(ctx, after_mprotect == SIGSEGV, "guard lost after mprotect (%s)", sig_label(after_mprotect));
	pc_unmap(&g.m);
	pc_pass(ctx);
}

PC_PROBE_NEEDS(guard_category, "madvise.guard_install.page_flag", GUARD,
	 "the page flags report guard pages as guards (PAGEMAP_SCAN PAGE_IS_GUARD) and not their neighbours")
{
	struct guarded g;
	map_guarded(ctx, &g);
	unsigned at_guard = pc_obs_page_flags(ctx, g.guard, PL_PF_GUARD);
	unsigned after = pc_obs_page_flags(ctx, g.guard + g.glen, PL_PF_GUARD);
	pc_observe(ctx, "guard_page_flagged", "%s", at_guard & PL_PF_GUARD ? "yes" : "no");
	pc_observe(ctx, "next_page_flagged", "%s", after & PL_PF_GUARD ? "yes" : "no");
	PC_CHECK(ctx, at_guard & PL_PF_GUARD, "guard page not flagged as a guard");
	PC_CHECK(ctx, !(after & PL_PF_GUARD), "the page after the guard is flagged as a guard");
	pc_unmap(&g.m);
	pc_pass(ctx);
}
