/* Read-only stays read-only: paths that may mark a page-table entry dirty in
 * a read-only mapping (a debugger's forced write, page migration, splitting a
 * THP into page-table entries, a page placed by userfaultfd) must never make
 * it writable. Each probe ends with a write that must fault with SIGSEGV and
 * SEGV_ACCERR (a mapped page without write access) and leave the byte as it
 * was. */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "pl_abi.h"

/* The write that must fault; the page keeps its byte. */
static void expect_write_refused(struct pc_ctx *ctx, char *p)
{
	char before = *(volatile char *)p;
	pc_expect_fault(ctx, "write_fault", p, true, PL_FAULT_ACCESS);
	PC_CHECK(ctx, *(volatile char *)p == before, "the refused write changed the page");
	pc_pass(ctx);
}

/* A read-only range: one base page, or a THP range (huge=true) advised MADV_HUGEPAGE. */
static char *read_only_range(struct pc_ctx *ctx, bool huge, size_t *len)
{
	struct pc_map m;
	pc_map_kind_or_skip(ctx, huge ? PC_THP : PC_PRIVATE_ANON, pl_page_size(), &m);
	PC_SETUP(ctx, pl_protect(m.addr, m.len, PL_PROT_READ));
	*len = m.len;
	return m.addr;
}

/* A THP the probe filled and made read-only; skips when no huge page backs it now. */
static char *read_only_thp(struct pc_ctx *ctx, size_t *len)
{
	struct pc_map m;
	pc_map_kind_or_skip(ctx, PC_THP, pl_page_size(), &m);
	memset(m.addr, 1, pl_page_size());
	PC_SETUP(ctx, pl_protect(m.addr, m.len, PL_PROT_READ));
	size_t huge = pc_obs_huge_bytes(ctx, m.addr, m.len);
	if (huge < m.len)
		pc_skip_prerequisite(ctx, "no huge page backed the written range now (%zu of %zu bytes)", huge, m.len);
	*len = m.len;
	return m.addr;
}

static void forced_write(struct pc_ctx *ctx, char *p)
{
	/* feature.forced_write proved such writes reach a read-only private page here. */
	int e = pl_force_write(p, 1);
	if (e == ENOTSUP || e == ENOSYS)
		pc_skip_unsupported(ctx, "this system has no debugger-style forced write (/proc/self/mem): %s", pl_errno_name(e));
	if (e)
		pc_fail_refused(ctx, "a forced write into a read-only private page: %s", pc_strerror(e));
	pc_observe(ctx, "forced_write_lands", "%s", *p == 1 ? "yes" : "no");
	PC_CHECK(ctx, *p == 1, "the forced write through the read-only mapping did not land");
}

static void migrate_or_skip(struct pc_ctx *ctx, char *p, size_t len)
{
	int e = pl_migrate(p, len);
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "this system cannot move pages on request (no mbind migration)");
	if (e)
		pc_skip_prerequisite(ctx, "migrating the pages failed here (%s)", pl_errno_name(e));
}

PC_PROBE_NEEDS(forced_write_base, "mkdirty.forced_write.write_still_faults/base", PC_FB(PC_F_FORCED_WRITE),
	 "a debugger's write into a read-only page lands, and a normal write still faults (SEGV_ACCERR)")
{
	size_t len;
	char *p = read_only_range(ctx, false, &len);
	(void)*(volatile char *)p; /* the shared zero page first: the forced write must unshare it */
	forced_write(ctx, p);
	expect_write_refused(ctx, p);
}

PC_PROBE_NEEDS(forced_write_thp, "mkdirty.forced_write.write_still_faults/thp", PC_FB(PC_F_FORCED_WRITE),
	 "a debugger's write into a read-only THP range places a huge page; a normal write still faults")
{
	size_t len;
	char *p = read_only_range(ctx, true, &len);
	forced_write(ctx, p);
	size_t huge = pc_obs_huge_bytes(ctx, p, len);
	pc_measure(ctx, "huge_bytes", "%zu", huge);
	if (huge < len)
		pc_skip_prerequisite(ctx, "the forced write got no huge page now (%zu of %zu bytes)", huge, len);
	expect_write_refused(ctx, p);
}

PC_PROBE(migration_base, "mkdirty.migration.write_still_faults/base",
	 "a written page made read-only and then migrated still refuses writes")
{
	size_t len = pl_page_size();
	char *p;
	PC_SETUP(ctx, pl_map_anon(len, (void **)&p));
	memset(p, 1, len);
	PC_SETUP(ctx, pl_protect(p, len, PL_PROT_READ));
	migrate_or_skip(ctx, p, len);
	expect_write_refused(ctx, p);
}

PC_PROBE(migration_thp, "mkdirty.migration.write_still_faults/thp",
	 "a written THP made read-only and then migrated still refuses writes")
{
	size_t len;
	char *p = read_only_thp(ctx, &len);
	migrate_or_skip(ctx, p, len);
	expect_write_refused(ctx, p);
}

PC_PROBE(pte_mapped_thp, "mkdirty.pte_mapped_thp.write_still_faults",
	 "a written read-only THP split into page-table entries (last page made writable) still refuses writes elsewhere")
{
	size_t len, ps = pl_page_size();
	char *p = read_only_thp(ctx, &len);
	PC_SETUP(ctx, pl_protect(p + len - ps, ps, PL_PROT_RW));
	expect_write_refused(ctx, p);
}

PC_PROBE_NEEDS(supplied_page, "mkdirty.supplied_page.write_still_faults", PC_FB(PC_F_USERFAULTFD),
	 "a page placed by the process's page supplier (UFFDIO_COPY) into a read-only mapping still refuses writes")
{
	size_t len;
	char *p = read_only_range(ctx, false, &len);
	struct pl_supplier *s;
	int e = pl_supply_start(p, len, PL_SUPPLY_COPY, 0, &s);
	if (e == ENOTSUP || e == EPERM)
		pc_skip_unsupported(ctx, "this process cannot supply its own pages here (userfaultfd: %s)", pl_errno_name(e));
	/* feature.userfaultfd proved supplying works for private anonymous memory: a refusal is the subject's. */
	if (e)
		pc_fail_refused(ctx, "supplying a read-only private anonymous range: %s", pc_strerror(e));
	PC_SETUP(ctx, pl_supply_place(s, p, 1));
	pc_observe(ctx, "placed_page_reads", "%s", *p == 1 ? "its byte" : "something else");
	PC_CHECK(ctx, *p == 1, "the placed page does not read the byte placed");
	expect_write_refused(ctx, p);
}
