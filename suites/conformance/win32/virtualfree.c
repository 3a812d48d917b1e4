/* VirtualFree: MEM_DECOMMIT gives pages back and makes them fault until they
 * are committed again, reading zero; size 0 at the base decommits the whole
 * reservation; MEM_RELEASE frees only whole reservations (a part of one, or
 * a size other than 0, is refused and the reservation stays); a released
 * address is free and faults. The oracles are the VirtualFree documentation's. */
#include "config.h"
#include "probe_win32.h"

#include <string.h>

#define PAGES 16
#define SEED 37
#define CHUNK ((size_t)64 << 10)

PC_PROBE(decommit, "virtualfree.decommit.faults_then_commit_zero",
	 "decommitted pages fault and leave the working set; committed again they read zero")
{
	size_t len = PAGES * pl_page_size(), resident = 0;
	char *p = pw_commit(ctx, len);
	pc_fill(p, len, SEED);
	PC_CHECK(ctx, VirtualFree(p, len, MEM_DECOMMIT), "MEM_DECOMMIT failed: %s", pc_strerror(pl_win_last_errno()));
	pc_observe(ctx, "state_after", "%s", pw_state_name(pw_query(ctx, p).State));
	pc_expect_fault(ctx, "read_after_decommit", p, false, PL_FAULT_ACCESS);
	resident = pc_obs_resident_pages(ctx, p, len);
	pc_observe(ctx, "resident_after_decommit", "%s", resident ? "some" : "none");
	PC_CHECK(ctx, resident == 0, "%zu decommitted pages are still in the working set", resident);
	PC_CHECK(ctx, VirtualAlloc(p, len, MEM_COMMIT, PAGE_READWRITE) == p, "MEM_COMMIT after decommit failed: %s",
		 pc_strerror(pl_win_last_errno()));
	const char *got = pc_contents(p, len, SEED);
	pc_observe(ctx, "contents_after_commit", "%s", got);
	PC_CHECK(ctx, strcmp(got, "zero") == 0, "recommitted pages read %s, not zero", got);
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(decommit_all, "virtualfree.decommit.size_zero_whole_region",
	 "MEM_DECOMMIT with size 0 at the reservation's base decommits the whole reservation")
{
	size_t len = 4 * CHUNK;
	char *p = pw_commit(ctx, len);
	memset(p, 1, len);
	PC_CHECK(ctx, VirtualFree(p, 0, MEM_DECOMMIT), "MEM_DECOMMIT of size 0 failed: %s", pc_strerror(pl_win_last_errno()));
	MEMORY_BASIC_INFORMATION mbi = pw_query(ctx, p);
	pc_observe(ctx, "state_after", "%s", pw_state_name(mbi.State));
	pc_measure(ctx, "region_bytes", "%zu", (size_t)mbi.RegionSize);
	PC_CHECK(ctx, mbi.State == MEM_RESERVE && mbi.RegionSize >= len, "after decommit: %s, %zu bytes",
		 pw_state_name(mbi.State), (size_t)mbi.RegionSize);
	pc_expect_fault(ctx, "read_last_page", p + len - 1, false, PL_FAULT_ACCESS);
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(partial_release, "virtualfree.release.partial_refused",
	 "MEM_RELEASE of part of a reservation (an inner base, or a size other than 0) is refused; the reservation stays")
{
	size_t len = 4 * CHUNK;
	char *p = pw_commit(ctx, len);
	memset(p, 7, len);
	BOOL inner = VirtualFree(p + CHUNK, 0, MEM_RELEASE);
	DWORD e_inner = inner ? ERROR_SUCCESS : GetLastError();
	BOOL sized = VirtualFree(p, CHUNK, MEM_RELEASE);
	DWORD e_sized = sized ? ERROR_SUCCESS : GetLastError();
	pc_observe(ctx, "inner_base", "%s", pw_answer(e_inner));
	pc_observe(ctx, "nonzero_size", "%s", pw_answer(e_sized));
	PC_CHECK(ctx, !inner && !sized, "part of a reservation was released (inner base: %s, size %zu: %s)",
		 inner ? "yes" : "no", CHUNK, sized ? "yes" : "no");
	PC_CHECK(ctx, pc_all_bytes(p, len, 7), "a refused release changed the reservation");
	pc_observe(ctx, "page_layer_unmap_of_part", "%s", pl_errno_name(pl_unmap(p + CHUNK, CHUNK)));
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(release_whole, "virtualfree.release.whole_then_free",
	 "MEM_RELEASE with size 0 at the base frees the whole reservation: its address is free and faults")
{
	size_t len = 4 * CHUNK;
	char *p = pw_commit(ctx, len);
	memset(p, 1, len);
	pw_release(ctx, p);
	pc_observe(ctx, "state_after", "%s", pw_state_name(pw_query(ctx, p + len - 1).State));
	pc_expect_fault(ctx, "read_after_release", p + len - 1, false, PL_FAULT_UNMAPPED);
	pc_pass(ctx);
}
