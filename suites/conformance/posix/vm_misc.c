/* The rest of mprotect and munmap: ENOMEM for an unmapped address,
 * PROT_EXEC, a file mapping split three ways by mprotect and merged back,
 * EINVAL past the end of the address space, and ENOMEM when splitting a
 * mapping would pass the limit on mappings. (The break shrunk over a part
 * made read-only is in brk.c, with the other brk probes.) */
#include "config.h"
#include "pagelab/check.h"
#include "pagelab/env.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "pl_abi.h"

PC_PROBE(mprotect_unmapped, "mprotect.enomem.unmapped_address",
	 "mprotect of an address range with nothing mapped fails with ENOMEM")
{
	size_t ps = pl_page_size();
	void *p;
	PC_SETUP(ctx, pl_reserve(ps, 0, &p));
	PC_SETUP(ctx, pl_unmap(p, ps));
	int e = mprotect(p, ps, PROT_READ) == 0 ? 0 : errno;
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == ENOMEM, "expected ENOMEM, got %s", e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}

PC_PROBE(mprotect_exec, "mprotect.prot_exec.accepted",
	 "PROT_EXEC alone on anonymous memory is accepted and refuses writes; whether reads are allowed is observed")
{
	size_t ps = pl_page_size();
	char *p;
	PC_SETUP(ctx, pl_map_anon(ps, (void **)&p));
	int e = mprotect(p, ps, PROT_EXEC) == 0 ? 0 : errno;
	/* POSIX lets a system refuse a combination of accesses it does not support, with ENOTSUP. */
	if (e == ENOTSUP)
		pc_skip_unsupported(ctx, "mprotect(PROT_EXEC): ENOTSUP: execute-only is not a protection this system offers");
	if (e)
		pc_fail_refused(ctx, "mprotect(PROT_EXEC) of anonymous memory: %s", pc_strerror(e));
	/* Execute-only pages (x86 protection keys) refuse reads too, with their own code (SEGV_PKUERR). */
	struct pl_fault r = pc_access(p, false, 0), w = pc_access(p, true, 0);
	pc_observe(ctx, "read_with_prot_exec", "%s", r.kind == PL_FAULT_NONE ? "allowed" : r.name);
	pc_observe(ctx, "write_fault", "%s", w.name);
	PC_CHECK(ctx, w.sig == SIGSEGV, "a write to PROT_EXEC memory gave %s, not SIGSEGV", w.name);
	pc_pass(ctx);
}

PC_PROBE_KINDS(file_three_ways, "mprotect.file.split_three_ways_and_merge", PC_SHARED_FILE | PC_SHARED_DISK,
	       "a read-only shared file mapping made executable at one page and writable at another, then read-only over all")
{
	struct pc_map m;
	size_t ps = pl_page_size();
	pc_map_or_skip(ctx, 6 * ps, &m);
	char *p = mmap(NULL, 6 * ps, PROT_READ, MAP_SHARED, m.fd, 0);
	if (p == MAP_FAILED)
		pc_error(ctx, "read-only mapping: %s", pc_strerror(errno));
	int x = mprotect(p + ps, ps, PROT_EXEC) == 0 ? 0 : errno;
	int w = mprotect(p + 3 * ps, ps, PROT_WRITE) == 0 ? 0 : errno;
	int r = mprotect(p + ps, 4 * ps, PROT_READ) == 0 ? 0 : errno;
	if (x == EPERM || x == EACCES)
		pc_skip_prerequisite(ctx, "PROT_EXEC refused on this file (%s): a noexec file system?", pl_errno_name(x));
	pc_observe(ctx, "results", "%s %s %s", x ? pl_errno_name(x) : "0", w ? pl_errno_name(w) : "0", r ? pl_errno_name(r) : "0");
	PC_CHECK(ctx, x == 0 && w == 0 && r == 0, "mprotect steps: exec %s, write %s, read %s", pl_errno_name(x),
		 pl_errno_name(w), pl_errno_name(r));
	pc_expect_fault(ctx, "write_after_merge", p + 3 * ps, true, PL_FAULT_ACCESS);
	pc_pass(ctx);
}

PC_PROBE(munmap_outside, "munmap.einval.past_address_space",
	 "munmap of a range reaching past the end of the address space fails with EINVAL")
{
	uintptr_t top = (UINTPTR_MAX / pl_page_size()) * pl_page_size();
	int e = munmap((void *)(top - pl_page_size()), 2 * pl_page_size()) == 0 ? 0 : errno;
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == EINVAL, "expected EINVAL, got %s", e ? pc_strerror(e) : "success");
	pc_pass(ctx);
}

PC_PROBE(munmap_map_limit, "munmap.enomem.split_past_mapping_limit",
	 "with the process at its limit on mappings, unmapping the middle of one (a split) fails with ENOMEM; "
	 "unmapping a whole mapping still works")
{
	size_t limit, ps = pl_page_size(), made = 0;
	char *last = NULL;
	if (pl_mapping_limit(&limit) != 0)
		pc_skip_unobservable(ctx, PC_CH_MAPPINGS, "this system does not tell its limit on mappings");
	if (limit > 1 << 20)
		pc_skip_prerequisite(ctx, "the mapping limit (%zu) is too high to reach in a probe", limit);
	char *big, *p;
	PC_SETUP(ctx, pl_map_anon(3 * ps, (void **)&big));
	/* Single pages, each a separate mapping (alternating protection keeps neighbours apart). */
	for (int prot = PROT_READ; made < limit; made++, prot ^= PROT_WRITE) {
		p = mmap(NULL, ps, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		last = p;
	}
	pc_measure(ctx, "mappings_made", "%zu of a limit of %zu", made, limit);
	int e = munmap(big + ps, ps) == 0 ? 0 : errno;
	pc_observe(ctx, "errno", "%s", e ? pl_errno_name(e) : "none");
	PC_CHECK(ctx, e == ENOMEM, "splitting a mapping at the limit: expected ENOMEM, got %s", e ? pc_strerror(e) : "success");
	PC_CHECK(ctx, pc_access_faults(big + ps, false, 0) == 0, "the refused munmap removed the page");
	if (last != NULL) {
		e = munmap(last, ps) == 0 ? 0 : errno;
		PC_CHECK(ctx, e == 0, "unmapping a whole mapping at the limit failed: %s", pc_strerror(e));
		pc_expect_fault(ctx, "whole_mapping_unmapped", last, false, PL_FAULT_UNMAPPED);
	}
	pc_pass(ctx);
}
