/* refalloc beyond the release policies: a forked child allocates and its
 * writes stay private; pattern initialisation is visible on fresh memory and
 * never leaks into calloc (through memset, and through the page layer's
 * pattern mapping with its residency cost); guard pages fault. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/refalloc.h"

#include <errno.h>
#include <string.h>

#define PATTERN 0xA7
#define LARGE ((size_t)16 << 20)

static void setup(struct pc_ctx *ctx, enum ra_init i, enum ra_pattern_via v)
{
	struct ra_config c;
	ra_config_default(&c);
	c.init = i;
	c.via = v;
	c.pattern = PATTERN;
	int e = ra_configure(&c);
	const struct pl_cap *pat = &pl_caps()->op[PL_OP_MAP_PATTERN];
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "pattern mapping is %s (%s)", pat->via ? pat->via : "?", pat->how ? pat->how : "?");
	PC_SETUP(ctx, e);
}

static int child_allocates(void *arg)
{
	char *parent_block = arg;
	memset(parent_block, 2, 4096);
	for (size_t i = 0; i < 3000; i++) {
		char *p = ra_malloc(1 + i * 97 % 300000);
		if (!p)
			return 1;
		memset(p, 3, 1 + i * 97 % 300000);
		if (i % 3)
			ra_free(p);
	}
	return 0;
}

PC_PROBE_NEEDS(fork_child, "refalloc.fork_child_allocates", PC_FB(PC_F_FORK),
	       "a forked child allocates and frees, and its writes to inherited blocks stay private")
{
	setup(ctx, RA_INIT_NONE, RA_PATTERN_AUTO);
	char *p = ra_malloc(4096);
	PC_SETUP(ctx, p ? 0 : ENOMEM);
	memset(p, 1, 4096);
	int st = pc_in_child(child_allocates, p);
	PC_SETUP(ctx, st < 0 ? errno : 0);
	PC_CHECK(ctx, st == 0, "the child failed (status %d)", st);
	PC_CHECK(ctx, pc_all_bytes(p, 4096, 1), "the child's writes reached the parent");
	char *q = ra_malloc(100000);
	PC_CHECK(ctx, q != NULL, "the parent cannot allocate after fork");
	pc_pass(ctx);
}

static void probe_pattern(struct pc_ctx *ctx, enum ra_pattern_via via)
{
	setup(ctx, RA_INIT_PATTERN, via);
	pc_observe(ctx, "pattern_mode", "%s", ra_pattern_mode());
	if (ra_pattern_note())
		pc_observe(ctx, "pattern_note", "%s", ra_pattern_note());
	static const size_t sizes[] = {40, 5000, 300000, LARGE};
	for (size_t i = 0; i < 4; i++) {
		char *p = ra_malloc(sizes[i]);
		char *z = ra_calloc(1, sizes[i]);
		PC_SETUP(ctx, p && z ? 0 : ENOMEM);
		size_t n;
		if (sizes[i] == LARGE && pl_resident_pages(p, LARGE, &n) == 0)
			pc_measure(ctx, "resident_pages_of_fresh_16MiB", "%zu of %zu before it is read", n,
				   LARGE / pl_page_size());
		PC_CHECK(ctx, pc_all_bytes(p, sizes[i], PATTERN), "a fresh %zu-byte object does not read the pattern", sizes[i]);
		PC_CHECK(ctx, pc_all_bytes(z, sizes[i], 0), "calloc(%zu) does not read zero under pattern init", sizes[i]);
		memset(p, 0x11, sizes[i]);
		ra_free(p);
		ra_free(z);
		p = ra_malloc(sizes[i]);
		PC_CHECK(ctx, p && pc_all_bytes(p, sizes[i], PATTERN), "a reused %zu-byte object does not read the pattern",
			 sizes[i]);
		ra_free(p);
	}
	pc_pass(ctx);
}

PC_PROBE(pattern_memset, "refalloc.pattern_init/memset",
	 "pattern init written by memset: fresh and reused objects read the pattern, calloc reads zero")
{
	probe_pattern(ctx, RA_PATTERN_MEMSET);
}

PC_PROBE(pattern_refpage, "refalloc.pattern_init/refpage",
	 "pattern init from the page layer's pattern mapping: objects read the pattern, calloc reads zero")
{
	probe_pattern(ctx, RA_PATTERN_REFPAGE);
}

PC_PROBE(guard_large, "refalloc.guard_after_large_object",
	 "the page after a large object is a guard: reads and writes fault")
{
	setup(ctx, RA_INIT_NONE, RA_PATTERN_AUTO);
	char *p = ra_malloc(LARGE);
	PC_SETUP(ctx, p ? 0 : ENOMEM);
	size_t cap = ra_usable_size(p);
	pc_observe(ctx, "guard", "%s", pl_caps()->op[PL_OP_GUARD].via ? pl_caps()->op[PL_OP_GUARD].via : "?");
	PC_CHECK(ctx, pc_access_faults(p + cap - 1, true, 1) == 0, "the last byte of the object faults");
	int sig = pc_access_faults(p + cap, false, 0);
	PC_CHECK(ctx, sig != 0, "reading the byte after the object does not fault");
	pc_observe(ctx, "signal", "%d", sig);
	pc_pass(ctx);
}
