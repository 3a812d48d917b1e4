/* The working set, seen through QueryWorkingSetEx: a written page is valid,
 * one never touched is not; what a read of a never-touched page does is
 * recorded; VirtualUnlock of pages that are not locked takes them out of the
 * working set (and says ERROR_NOT_LOCKED) while they keep their contents;
 * VirtualLock keeps pages in it. The oracles are the QueryWorkingSetEx,
 * VirtualUnlock and VirtualLock documentation's. The commit charge
 * (GetProcessMemoryInfo's PagefileUsage) counts committed private memory,
 * touched or not, until it is decommitted. */
#include "config.h"
#include "probe_win32.h"

#include <psapi.h>
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

/* The process's commit charge (PROCESS_MEMORY_COUNTERS.PagefileUsage), or the probe skips. */
static size_t charge_now(struct pc_ctx *ctx)
{
	BOOL(WINAPI *get)(HANDLE, PPROCESS_MEMORY_COUNTERS, DWORD) =
		(BOOL(WINAPI *)(HANDLE, PPROCESS_MEMORY_COUNTERS, DWORD))(void *)pl_win_export("K32GetProcessMemoryInfo");
	PROCESS_MEMORY_COUNTERS pmc = {.cb = sizeof(pmc)};
	if (!get || !get(GetCurrentProcess(), &pmc, sizeof(pmc)))
		pc_skip_unobservable(ctx, PC_CH_RSS, "GetProcessMemoryInfo is missing or fails here");
	return pmc.PagefileUsage;
}

/* "charged" (by 3/4 of len or more), "uncharged" (by 3/4 or more the other way) or "unchanged". */
static const char *charge_change(size_t before, size_t after, size_t len)
{
	if (after >= before + len / 4 * 3)
		return "charged";
	return before >= after + len / 4 * 3 ? "uncharged" : after + len / 4 > before && before + len / 4 > after ? "unchanged" : "partly";
}

PC_PROBE(commit_charge, "getprocessmemoryinfo.commit_charge",
	 "the commit charge rises at MEM_COMMIT (before any touch), stays through MEM_RESET and falls at MEM_DECOMMIT")
{
	size_t len = (size_t)64 << 20;
	char *p = VirtualAlloc(NULL, len, MEM_RESERVE, PAGE_NOACCESS);
	PC_SETUP(ctx, p ? 0 : pl_win_last_errno());
	size_t reserved = charge_now(ctx);
	PC_SETUP(ctx, VirtualAlloc(p, len, MEM_COMMIT, PAGE_READWRITE) == p ? 0 : pl_win_last_errno());
	size_t committed = charge_now(ctx);
	memset(p, 1, len);
	size_t touched = charge_now(ctx);
	PC_SETUP(ctx, pl_win_errno(pw_alloc_type(p, len, MEM_RESET)));
	size_t reset = charge_now(ctx);
	PC_SETUP(ctx, VirtualFree(p, len, MEM_DECOMMIT) ? 0 : pl_win_last_errno());
	size_t decommitted = charge_now(ctx);
	const char *at_commit = charge_change(reserved, committed, len), *at_reset = charge_change(touched, reset, len),
		   *at_decommit = charge_change(touched, decommitted, len);
	pc_observe(ctx, "at_commit", "%s", at_commit);
	pc_observe(ctx, "at_first_touch", "%s", charge_change(committed, touched, len));
	pc_observe(ctx, "at_mem_reset", "%s", at_reset);
	pc_observe(ctx, "at_decommit", "%s", at_decommit);
	pw_release(ctx, p);
	PC_CHECK(ctx, strcmp(at_commit, "charged") == 0, "MEM_COMMIT of 64 MiB left the commit charge %s", at_commit);
	PC_CHECK(ctx, strcmp(at_reset, "unchanged") == 0, "MEM_RESET (pages stay committed) left the commit charge %s", at_reset);
	PC_CHECK(ctx, strcmp(at_decommit, "uncharged") == 0, "MEM_DECOMMIT left the commit charge %s", at_decommit);
	pc_pass(ctx);
}
