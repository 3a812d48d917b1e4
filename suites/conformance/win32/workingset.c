/* The working set, seen through QueryWorkingSetEx: a written page is valid,
 * one never touched is not; what a read of a never-touched page does is
 * recorded; VirtualUnlock of pages that are not locked takes them out of the
 * working set (and says ERROR_NOT_LOCKED) while they keep their contents;
 * VirtualLock keeps pages in it. The oracles are the QueryWorkingSetEx,
 * VirtualUnlock and VirtualLock documentation's. */
#include "config.h"
#include "probe_win32.h"

#include <string.h>

#define PAGES 64
#define SEED 53

PC_PROBE(read_fault, "queryworkingsetex.read_fault_valid",
	 "written pages are valid and never-touched ones are not; whether a read makes a page valid is recorded")
{
	size_t ps = pl_page_size(), len = PAGES * ps;
	char *p = pw_commit(ctx, len);
	unsigned char v[3];
	p[0] = 1;
	(void)((volatile char *)p)[ps];
	pc_obs_residency(ctx, p, 3 * ps, v);
	pc_observe(ctx, "written_page", "%s", v[0] ? "valid" : "not valid");
	pc_observe(ctx, "read_page", "%s", v[1] ? "valid" : "not valid");
	pc_observe(ctx, "untouched_page", "%s", v[2] ? "valid" : "not valid");
	PC_CHECK(ctx, v[0] && !v[2], "written page %s, untouched page %s", v[0] ? "valid" : "not valid",
		 v[2] ? "valid" : "not valid");
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(unlock_trims, "virtualunlock.unlocked_pages_leave_working_set",
	 "VirtualUnlock of pages never locked fails with ERROR_NOT_LOCKED and takes them out of the working set; contents kept")
{
	size_t len = PAGES * pl_page_size();
	char *p = pw_commit(ctx, len);
	pc_fill(p, len, SEED);
	size_t before = pc_obs_resident_pages(ctx, p, len);
	BOOL ok = VirtualUnlock(p, len);
	DWORD err = ok ? 0 : GetLastError();
	size_t after = pc_obs_resident_pages(ctx, p, len);
	pc_observe(ctx, "answer", "%s", pw_answer(err));
	pc_observe(ctx, "working_set_after", "%s", after == 0 ? "left" : after < before ? "partly left" : "stayed");
	pc_measure(ctx, "valid_pages", "%zu before, %zu after", before, after);
	const char *got = pc_contents(p, len, SEED);
	pc_observe(ctx, "contents_after", "%s", got);
	PC_CHECK(ctx, !ok && err == ERROR_NOT_LOCKED, "VirtualUnlock of unlocked pages: %s, expected ERROR_NOT_LOCKED",
		 pw_answer(err));
	PC_CHECK(ctx, after == 0, "%zu of %zu pages stayed in the working set", after, before);
	PC_CHECK(ctx, strcmp(got, "old") == 0, "the pages read %s after leaving the working set", got);
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(lock_keeps, "virtuallock.pages_stay_valid",
	 "locked pages are valid (resident) and stay so when the rest of the working set is trimmed")
{
	size_t ps = pl_page_size(), len = 8 * ps;
	char *p = pw_commit(ctx, len);
	memset(p, 1, len);
	if (!VirtualLock(p, 4 * ps))
		pc_skip_prerequisite(ctx, "VirtualLock refused: %s (working-set minimum?)", pl_win_error_name(GetLastError()));
	pw_trim(p, len);
	size_t locked = pc_obs_resident_pages(ctx, p, 4 * ps), rest = pc_obs_resident_pages(ctx, p + 4 * ps, 4 * ps);
	pc_observe(ctx, "locked_pages", "%s", locked == 4 ? "valid" : "not all valid");
	pc_observe(ctx, "unlocked_pages_after_trim", "%s", rest == 0 ? "left" : "stayed");
	PC_CHECK(ctx, locked == 4, "only %zu of 4 locked pages are valid after a trim", locked);
	PC_SETUP(ctx, VirtualUnlock(p, 4 * ps) ? 0 : pl_win_last_errno());
	pw_release(ctx, p);
	pc_pass(ctx);
}
