/* Probes that misbehave on purpose, to prove the conformance runner's
 * isolation: each must be reported as its own outcome while the others run.
 * Built into build/pagelab-selftest with the family's own (posix/, win32/:
 * a hang and a child left behind); driven by tests/py/test_conform_harness.py
 * and, under Wine, tests/py/test_windows.py. */
#include "pagelab/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

PC_PROBE(st_pass, "selftest.pass", "passes with two observations")
{
	pc_observe(ctx, "answer", "%d", 42);
	pc_observe(ctx, "escaped", "tab\there, newline\nthere, \"quoted\"");
	pc_pass(ctx);
}

PC_PROBE(st_segv, "selftest.segfault", "dereferences a null pointer")
{
	pc_observe(ctx, "before_crash", "yes");
	volatile int *p = NULL;
	*p = 1;
	pc_pass(ctx);
}

PC_PROBE(st_abort, "selftest.abort", "calls abort()")
{
	abort();
}

/* Allocates like a careless program until the address-space limit makes
 * malloc fail, then uses the null pointer: the way real programs die of OOM. */
PC_PROBE(st_oom, "selftest.oom", "exhausts memory under --mem-limit")
{
	size_t total = 0;
	for (;;) {
		char *p = malloc(1 << 20);
		memset(p, 1, 1 << 20);
		total += 1;
		if (total % 64 == 0)
			pc_observe(ctx, "allocated_mib", "%zu", total);
	}
}

PC_PROBE(st_exit, "selftest.exit_early", "calls exit(0) without an outcome")
{
	exit(0);
}

PC_PROBE(st_skip, "selftest.skip", "skips with a reason")
{
	pc_skip_unsupported(ctx, "feature absent: ENOSYS");
}

PC_PROBE(st_xfail, "selftest.xfail", "a documented deviation")
{
	pc_xfail(ctx, "known deviation");
}

PC_PROBE(st_fail, "selftest.fail", "fails a check")
{
	PC_CHECK(ctx, 1 + 1 == 3, "arithmetic is off by %d", 1);
	pc_pass(ctx);
}

PC_PROBE(st_noreturn, "selftest.no_outcome", "returns without an outcome")
{
	(void)ctx;
}

PC_PROBE_KINDS(st_kinds, "selftest.kinds", PC_ANON_KINDS | PC_FILE_KINDS, "maps each kind and writes it")
{
	struct pc_map m;
	pc_map_or_skip(ctx, 4 * pl_page_size(), &m);
	memset(m.addr, 0x11, m.len);
	pc_observe(ctx, "kind", "%s", pc_kind_name(pc_kind(ctx)));
	pc_unmap(&m);
	pc_pass(ctx);
}

/* Features: the runner proves them before the probes, and never starts a probe whose feature is missing. */
PC_FEATURE_PROBE(st_feature_absent, "feature.brk", PC_F_BRK, "a feature this self-test makes absent")
{
	pc_skip_unsupported(ctx, "absent on purpose: ENOSYS");
}

PC_FEATURE_PROBE(st_feature_present, "feature.fork", PC_F_FORK, "a feature this self-test makes present")
{
	pc_pass(ctx);
}

PC_PROBE_NEEDS(st_needs_absent, "selftest.needs_absent", PC_FB(PC_F_BRK), "needs the absent feature")
{
	pc_fail(ctx, "ran although its feature is absent");
}

PC_PROBE_NEEDS(st_needs_present, "selftest.needs_present", PC_FB(PC_F_FORK), "needs the present feature")
{
	pc_need_feature(ctx, PC_F_FORK);
	pc_pass(ctx);
}

PC_PROBE(st_need_inside, "selftest.need_feature_inside", "asks for the absent feature inside the probe")
{
	pc_need_feature(ctx, PC_F_BRK);
	pc_fail(ctx, "pc_need_feature returned for an absent feature");
}

PC_PROBE(st_differs, "selftest.differs", "meets its contract, not a behaviour")
{
	PC_BEHAVIOUR(ctx, 1 + 1 == 3, "expected %d, saw %d", 3, 2);
	pc_pass(ctx);
}

PC_PROBE(st_differs_then_fail, "selftest.differs_then_fail", "a behaviour differs, then a contract fails")
{
	PC_BEHAVIOUR(ctx, 0, "a behaviour differs first");
	PC_CHECK(ctx, 0, "then a contract breaks");
	pc_pass(ctx);
}

PC_PROBE(st_observed, "selftest.observed", "records a choice and asserts nothing")
{
	pc_observe(ctx, "choice", "%s", "any");
	pc_observed(ctx, "every answer is allowed");
}

PC_PROBE(st_setup_enosys, "selftest.setup_enosys", "a set-up call answers ENOSYS")
{
	PC_SETUP(ctx, ENOSYS);
	pc_pass(ctx);
}
