/* VirtualAlloc: reservations start on the 64 KiB allocation granularity and
 * fault until committed; committed pages read zero; MEM_RESET leaves each
 * page old or zero and is refused on views of files; MEM_RESET_UNDO says
 * whether the data survived; a commit far beyond the commit limit is
 * refused, because Windows charges every commit (no overcommit). The oracles
 * are the VirtualAlloc documentation's. */
#include "config.h"
#include "probe_win32.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PAGES 16
#define SEED 31
#define GRANULARITY_64K ((size_t)64 << 10)

PC_PROBE(granularity, "virtualalloc.reserve.granularity_64k",
	 "reservations start on the allocation granularity, 64 KiB, while pages are smaller; no partial release")
{
	SYSTEM_INFO si;
	GetSystemInfo(&si);
	pc_observe(ctx, "allocation_granularity", "%lu", (unsigned long)si.dwAllocationGranularity);
	pc_measure(ctx, "page_size", "%lu", (unsigned long)si.dwPageSize);
	pc_observe(ctx, "page_layer_partial_unmap", "%s", pl_caps()->partial_unmap ? "yes" : "no");
	PC_CHECK(ctx, si.dwAllocationGranularity == GRANULARITY_64K, "allocation granularity %lu, expected 65536",
		 (unsigned long)si.dwAllocationGranularity);
	PC_CHECK(ctx, pl_caps()->granularity == si.dwAllocationGranularity, "the page layer says %zu",
		 pl_caps()->granularity);
	for (int i = 0; i < 8; i++) {
		char *p = VirtualAlloc(NULL, si.dwPageSize, MEM_RESERVE, PAGE_NOACCESS);
		PC_SETUP(ctx, p ? 0 : pl_win_last_errno());
		bool aligned = (uintptr_t)p % GRANULARITY_64K == 0;
		PC_CHECK(ctx, aligned, "a one-page reservation starts at %p, not on a 64 KiB boundary", (void *)p);
		pw_release(ctx, p);
	}
	pc_pass(ctx);
}

PC_PROBE(reserved_faults, "virtualalloc.reserve.faults_until_committed",
	 "reading or writing reserved memory faults; after MEM_COMMIT it reads zero")
{
	size_t len = PAGES * pl_page_size();
	char *p = VirtualAlloc(NULL, len, MEM_RESERVE, PAGE_NOACCESS);
	PC_SETUP(ctx, p ? 0 : pl_win_last_errno());
	pc_expect_fault(ctx, "read_reserved", p, false, PL_FAULT_ACCESS);
	pc_expect_fault(ctx, "write_reserved", p + len - 1, true, PL_FAULT_ACCESS);
	PC_CHECK(ctx, VirtualAlloc(p, len, MEM_COMMIT, PAGE_READWRITE) == p, "MEM_COMMIT of reserved pages failed: %s",
		 pc_strerror(pl_win_last_errno()));
	PC_CHECK(ctx, pc_all_bytes(p, len, 0), "committed memory does not read zero");
	pc_expect_access(ctx, "write_committed", p, true, 1);
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(recommit, "virtualalloc.commit.recommit_accepted",
	 "MEM_COMMIT of pages already committed does not fail; what they hold afterwards is observed")
{
	size_t len = PAGES * pl_page_size();
	char *p = pw_commit(ctx, len);
	pc_fill(p, len, SEED);
	DWORD err = VirtualAlloc(p, len, MEM_COMMIT, PAGE_READWRITE) == p ? ERROR_SUCCESS : GetLastError();
	pc_observe(ctx, "answer", "%s", pw_answer(err));
	PC_CHECK(ctx, err == ERROR_SUCCESS, "committing committed pages failed: %s", pl_win_error_name(err));
	pc_observe(ctx, "contents_after", "%s", pc_contents(p, len, SEED));
	pw_release(ctx, p);
	pc_pass(ctx);
}

/* MEM_RESET, or skip when the system refuses it as it refuses an unknown allocation type. */
static void mem_reset(struct pc_ctx *ctx, void *p, size_t len)
{
	DWORD err = pw_alloc_type(p, len, MEM_RESET);
	if (err)
		pw_refusal(ctx, "VirtualAlloc(MEM_RESET)", err, pw_unknown_type_error(p, len));
}

PC_PROBE_KINDS(reset_contents, "virtualalloc.mem_reset.contents_after", PC_PRIVATE_ANON | PC_SHARED_ANON,
	       "after MEM_RESET each page reads old or zero, also after a working-set trim; access stays legal")
{
	struct pc_map m;
	pc_map_or_skip(ctx, PAGES * pl_page_size(), &m);
	char *old = malloc(m.len);
	if (!old)
		pc_error(ctx, "malloc of %zu bytes failed", m.len);
	pc_fill(m.addr, m.len, SEED);
	memcpy(old, m.addr, m.len);
	mem_reset(ctx, m.addr, m.len);
	pc_expect_access(ctx, "access_after", m.addr, false, 0);
	pc_observe(ctx, "contents_after", "%s", pc_contents(m.addr, m.len, SEED));
	PC_CHECK(ctx, pc_pages_old_or_zero(m.addr, old, m.len), "a page reads neither old bytes nor zero");
	pw_trim(m.addr, m.len);
	pc_observe(ctx, "contents_after_trim", "%s", pc_contents(m.addr, m.len, SEED));
	PC_CHECK(ctx, pc_pages_old_or_zero(m.addr, old, m.len), "after a trim a page reads neither old bytes nor zero");
	free(old);
	pc_unmap(&m);
	pc_pass(ctx);
}

PC_PROBE_KINDS(reset_file, "virtualalloc.mem_reset.file_view_refused", PC_PRIVATE_FILE | PC_SHARED_FILE,
	       "MEM_RESET on a view of a file fails (only views of the page file accept it); the view keeps its bytes")
{
	struct pc_map m;
	pc_map_or_skip(ctx, PAGES * pl_page_size(), &m);
	pc_fill(m.addr, m.len, SEED);
	DWORD err = pw_alloc_type(m.addr, m.len, MEM_RESET);
	const char *after = pc_contents(m.addr, m.len, SEED);
	pc_observe(ctx, "answer", "%s", pw_answer(err));
	pc_observe(ctx, "contents_after", "%s", after);
	PC_CHECK(ctx, err != ERROR_SUCCESS, "MEM_RESET of a %s view was accepted (contents afterwards: %s)", pc_kind_name(m.kind), after);
	PC_CHECK(ctx, strcmp(after, "old") == 0, "the refused MEM_RESET changed the view: %s", after);
	pc_unmap(&m);
	pc_pass(ctx);
}

/* Skip unless MEM_RESET_UNDO (Windows 8) is known: a page just reset and undone must not be
 * refused as an unknown allocation type is. */
static void need_reset_undo(struct pc_ctx *ctx)
{
	size_t ps = pl_page_size();
	char *p = pw_commit(ctx, ps);
	p[0] = 1;
	mem_reset(ctx, p, ps);
	DWORD err = pw_alloc_type(p, ps, MEM_RESET_UNDO), unknown = pw_unknown_type_error(p, ps);
	pw_release(ctx, p);
	if (err && (err == unknown || err == ERROR_NOT_SUPPORTED || err == ERROR_CALL_NOT_IMPLEMENTED))
		pw_refusal(ctx, "VirtualAlloc(MEM_RESET_UNDO) of a page just reset", err, unknown);
}

/* MEM_RESET then MEM_RESET_UNDO (trimmed in between or not): success means every byte survived;
 * failure means some pages were replaced with zeros. */
static void reset_undo(struct pc_ctx *ctx, bool trim)
{
	size_t len = PAGES * pl_page_size();
	need_reset_undo(ctx);
	char *p = pw_commit(ctx, len), *old = malloc(len);
	if (!old)
		pc_error(ctx, "malloc of %zu bytes failed", len);
	pc_fill(p, len, SEED);
	memcpy(old, p, len);
	mem_reset(ctx, p, len);
	if (trim)
		pw_trim(p, len);
	DWORD err = pw_alloc_type(p, len, MEM_RESET_UNDO);
	const char *got = pc_contents(p, len, SEED);
	pc_observe(ctx, "answer", "%s", err ? "failed: data replaced" : "succeeded: data intact");
	pc_measure(ctx, "windows_error", "%s", pl_win_error_name(err));
	pc_observe(ctx, "contents_after", "%s", got);
	if (!err)
		PC_CHECK(ctx, strcmp(got, "old") == 0, "MEM_RESET_UNDO succeeded and the memory reads %s", got);
	PC_CHECK(ctx, pc_pages_old_or_zero(p, old, len), "a page reads neither its old bytes nor zero");
	free(old);
	pw_release(ctx, p);
	pc_pass(ctx);
}

PC_PROBE(reset_undo_now, "virtualalloc.mem_reset_undo.reports_survival",
	 "MEM_RESET_UNDO right after MEM_RESET: success means the data is intact, failure that pages read zero")
{
	reset_undo(ctx, false);
}

PC_PROBE(reset_undo_trimmed, "virtualalloc.mem_reset_undo.after_trim",
	 "MEM_RESET, a working-set trim, then MEM_RESET_UNDO: success means intact, failure that pages read zero")
{
	reset_undo(ctx, true);
}

PC_PROBE(commit_limit, "virtualalloc.commit.beyond_commit_limit_refused",
	 "committing eight times the commit limit (RAM plus page files) is refused: every commit is charged")
{
	MEMORYSTATUSEX ms = {.dwLength = sizeof(ms)};
	PC_SETUP(ctx, GlobalMemoryStatusEx(&ms) ? 0 : pl_win_last_errno());
	/* A system-managed page file can grow, to three times RAM at most: eight times the limit never fits. */
	SIZE_T len = (SIZE_T)(ms.ullTotalPageFile * 8);
	pc_measure(ctx, "commit_limit_bytes", "%llu", (unsigned long long)ms.ullTotalPageFile);
	char *p = VirtualAlloc(NULL, len, MEM_RESERVE, PAGE_NOACCESS);
	if (!p)
		pc_skip_prerequisite(ctx, "cannot reserve %llu bytes of address space to commit: %s",
				     (unsigned long long)len, pl_win_error_name(GetLastError()));
	DWORD err = VirtualAlloc(p, len, MEM_COMMIT, PAGE_READWRITE) == p ? ERROR_SUCCESS : GetLastError();
	pc_observe(ctx, "answer", "%s", pw_answer(err));
	pw_release(ctx, p);
	PC_CHECK(ctx, err != ERROR_SUCCESS, "a commit of %llu bytes, eight times the commit limit, was accepted",
		 (unsigned long long)len);
	PC_CHECK(ctx, err == ERROR_COMMITMENT_LIMIT || err == ERROR_NOT_ENOUGH_MEMORY,
		 "refused with %s, not ERROR_COMMITMENT_LIMIT or ERROR_NOT_ENOUGH_MEMORY", pl_win_error_name(err));
	pc_pass(ctx);
}
