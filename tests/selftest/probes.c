/* Probes that misbehave on purpose, to prove the conformance runner's
 * isolation: each must be reported as its own outcome while the others run.
 * Built into build/pagelab-selftest with the family's own (posix/, win32/:
 * a hang and a child left behind); driven by tests/py/test_conform_harness.py
 * and, under Wine, tests/py/test_windows.py. */
#include "pagelab/check.h"

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
