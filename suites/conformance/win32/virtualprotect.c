/* VirtualProtect: PAGE_GUARD raises one EXCEPTION_GUARD_PAGE and then the
 * page is plain (the one-shot guard Windows' stacks grow by); PAGE_NOACCESS
 * faults every time and keeps the contents; PAGE_READONLY refuses writes; a
 * range over two reservations is refused. The oracles are the VirtualProtect
 * and memory-protection-constants documentation's. */
#include "config.h"
#include "probe_win32.h"

#include <string.h>

#define PAGES 4
#define SEED 43
#define CHUNK ((size_t)64 << 10)

static DWORD protect(struct pc_ctx *ctx, void *p, size_t len, DWORD prot)
{
	DWORD old;
	if (!VirtualProtect(p, len, prot, &old))
		pc_fail_refused(ctx, "VirtualProtect(0x%lx) of committed pages: %s", (unsigned long)prot,
				pc_strerror(pl_win_last_errno()));
	return old;
}

/* The first access of either kind raises EXCEPTION_GUARD_PAGE; the next one goes through. */
static void guard_once(struct pc_ctx *ctx, bool write)
{
	size_t len = PAGES * pl_page_size();
	char *p = pw_commit(ctx, len);
	memset(p, 5, len);
	protect(ctx, p, pl_page_size(), PAGE_READWRITE | PAGE_GUARD);
	pc_expect_fault(ctx, "first_access", p + 100, write, PL_FAULT_GUARD);
	DWORD after = pw_query(ctx, p).Protect;
	pc_observe(ctx, "guard_after_fault", "%s", after & PAGE_GUARD ? "still set" : "cleared");
	pc_expect_access(ctx, "second_access", p + 100, write, 9);
	PC_CHECK(ctx, !(after & PAGE_GUARD), "PAGE_GUARD is still set after its exception");
	PC_CHECK(ctx, p[100] == (write ? 9 : 5), "the second access did not see or store the right byte");
	pc_expect_access(ctx, "neighbour_access", p + pl_page_size(), write, 9);
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(guard_read, "virtualprotect.page_guard.faults_once",
	 "a read of a PAGE_GUARD page raises EXCEPTION_GUARD_PAGE once; the guard is then gone")
{
	guard_once(ctx, false);
}

PC_PROBE(guard_write, "virtualprotect.page_guard.write_faults_once",
	 "a write to a PAGE_GUARD page raises EXCEPTION_GUARD_PAGE once; the next write is stored")
{
	guard_once(ctx, true);
}

PC_PROBE(noaccess, "virtualprotect.page_noaccess.faults",
	 "PAGE_NOACCESS pages fault on every read and write; made read-write again they hold their old bytes")
{
	size_t len = PAGES * pl_page_size();
	char *p = pw_commit(ctx, len);
	pc_fill(p, len, SEED);
	protect(ctx, p, len, PAGE_NOACCESS);
	pc_expect_fault(ctx, "read", p, false, PL_FAULT_ACCESS);
	pc_expect_fault(ctx, "read_again", p, false, PL_FAULT_ACCESS);
	pc_expect_fault(ctx, "write", p + len - 1, true, PL_FAULT_ACCESS);
	protect(ctx, p, len, PAGE_READWRITE);
	const char *got = pc_contents(p, len, SEED);
	pc_observe(ctx, "contents_after_restore", "%s", got);
	PC_CHECK(ctx, strcmp(got, "old") == 0, "after PAGE_NOACCESS and back the pages read %s", got);
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(readonly, "virtualprotect.page_readonly.write_faults",
	 "PAGE_READONLY pages can be read and fault on write; the write is not stored")
{
	size_t len = PAGES * pl_page_size();
	char *p = pw_commit(ctx, len);
	memset(p, 3, len);
	DWORD old = protect(ctx, p, len, PAGE_READONLY);
	pc_observe(ctx, "previous_protection", "0x%lx", (unsigned long)old);
	pc_expect_access(ctx, "read", p, false, 0);
	pc_expect_fault(ctx, "write", p, true, PL_FAULT_ACCESS);
	PC_CHECK(ctx, p[0] == 3, "the faulting write was stored");
	pw_release(ctx, p);
	pc_pass(ctx);
}

/* Two reservations side by side: the second at the address right after the first. */
static char *adjacent_pair(struct pc_ctx *ctx)
{
	for (int attempt = 0; attempt < 16; attempt++) {
		char *a = VirtualAlloc(NULL, CHUNK, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
		PC_SETUP(ctx, a ? 0 : pl_win_last_errno());
		if (VirtualAlloc(a + CHUNK, CHUNK, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) == a + CHUNK)
			return a;
		pw_release(ctx, a);
	}
	pc_skip_prerequisite(ctx, "no two adjacent 64 KiB reservations could be made");
}

PC_PROBE(span, "virtualprotect.two_reservations_refused",
	 "VirtualProtect of a range spanning two reservations is refused and changes neither")
{
	char *a = adjacent_pair(ctx);
	DWORD old;
	BOOL ok = VirtualProtect(a + CHUNK - pl_page_size(), 2 * pl_page_size(), PAGE_READONLY, &old);
	pc_observe(ctx, "answer", "%s", pw_answer(ok ? ERROR_SUCCESS : GetLastError()));
	DWORD first = pw_query(ctx, a + CHUNK - pl_page_size()).Protect, second = pw_query(ctx, a + CHUNK).Protect;
	pc_observe(ctx, "protection_after", "%s", first == PAGE_READWRITE && second == PAGE_READWRITE ? "unchanged" : "changed");
	PC_CHECK(ctx, !ok, "a protection change across two reservations was accepted");
	PC_CHECK(ctx, first == PAGE_READWRITE && second == PAGE_READWRITE, "a refused change changed protection");
	pw_release(ctx, a + CHUNK);
	pw_release(ctx, a);
	pc_pass(ctx);
}
