/* VirtualAlloc2 (Windows 10 1803): a reservation aligned as MEM_ADDRESS_REQUIREMENTS
 * asks, and placeholders, the way to carve a reservation without a window in
 * which another thread can take the address: split one with
 * MEM_PRESERVE_PLACEHOLDER, replace a part with a real reservation
 * (MEM_REPLACE_PLACEHOLDER), and coalesce the placeholders again. The oracles
 * are the VirtualAlloc2 and VirtualFree documentation's. */
#include "config.h"
#include "probe_win32.h"

#include <stdint.h>

#define CHUNK ((size_t)64 << 10)
#define SINCE "Windows 10 1803"

static pl_virtual_alloc2_fn virtual_alloc2(struct pc_ctx *ctx)
{
	return (pl_virtual_alloc2_fn)(void *)pw_export_or_skip(ctx, "VirtualAlloc2", SINCE);
}

PC_PROBE(aligned, "virtualalloc2.address_requirements.alignment",
	 "MEM_ADDRESS_REQUIREMENTS gives reservations aligned to 1 MiB, 4 MiB and 1 GiB")
{
	pl_virtual_alloc2_fn va2 = virtual_alloc2(ctx);
	static const size_t aligns[] = {(size_t)1 << 20, (size_t)4 << 20, (size_t)1 << 30};
	for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		MEM_ADDRESS_REQUIREMENTS req = {.Alignment = aligns[i]};
		MEM_EXTENDED_PARAMETER param = {0};
		param.Type = MemExtendedParameterAddressRequirements;
		param.Pointer = &req;
		char *p = va2(GetCurrentProcess(), NULL, CHUNK, MEM_RESERVE, PAGE_NOACCESS, &param, 1);
		DWORD err = p ? ERROR_SUCCESS : GetLastError();
		if (!p)
			pc_observe(ctx, "answer", "%s", pl_win_error_name(err));
		PC_CHECK(ctx, p != NULL, "VirtualAlloc2 with alignment %zu failed: %s", aligns[i], pl_win_error_name(err));
		bool aligned = (uintptr_t)p % aligns[i] == 0;
		PC_CHECK(ctx, aligned, "VirtualAlloc2 with alignment %zu returned %p", aligns[i], (void *)p);
		pw_release(ctx, p);
	}
	pc_observe(ctx, "alignments", "1M 4M 1G");
	pc_pass(ctx);
}

/* Split the first CHUNK off a placeholder, replace it with a committed reservation, write it. */
static char *split_and_replace(struct pc_ctx *ctx, pl_virtual_alloc2_fn va2, char *ph)
{
	if (!VirtualFree(ph, CHUNK, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER))
		pc_fail_refused(ctx, "splitting a placeholder (MEM_PRESERVE_PLACEHOLDER): %s", pc_strerror(pl_win_last_errno()));
	char *p = va2(GetCurrentProcess(), ph, CHUNK, MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE, NULL, 0);
	if (p != ph)
		pc_fail_refused(ctx, "replacing a placeholder (MEM_REPLACE_PLACEHOLDER): %s", pc_strerror(pl_win_last_errno()));
	return p;
}

PC_PROBE(placeholders, "virtualalloc2.placeholder.split_replace_coalesce",
	 "a placeholder splits, a part becomes a committed reservation reading zero, and placeholders coalesce again")
{
	pl_virtual_alloc2_fn va2 = virtual_alloc2(ctx);
	size_t len = 4 * CHUNK;
	char *ph = va2(GetCurrentProcess(), NULL, len, MEM_RESERVE | MEM_RESERVE_PLACEHOLDER, PAGE_NOACCESS, NULL, 0);
	if (!ph) {
		DWORD err = GetLastError();
		pw_refusal(ctx, "VirtualAlloc2(MEM_RESERVE_PLACEHOLDER)", err, pw_unknown_type_error(NULL, len));
	}
	pc_expect_fault(ctx, "placeholder_access", ph + CHUNK, false, PL_FAULT_OTHER);
	char *p = split_and_replace(ctx, va2, ph);
	PC_CHECK(ctx, pc_all_bytes(p, CHUNK, 0), "the replaced part does not read zero");
	pc_expect_access(ctx, "replaced_write", p, true, 1);
	pc_observe(ctx, "rest_state", "%s", pw_state_name(pw_query(ctx, ph + CHUNK).State));
	PC_CHECK(ctx, VirtualFree(p, 0, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER), "turning the part back into a placeholder: %s",
		 pc_strerror(pl_win_last_errno()));
	BOOL merged = VirtualFree(ph, len, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS);
	pc_observe(ctx, "coalesce", "%s", pw_answer(merged ? ERROR_SUCCESS : GetLastError()));
	PC_CHECK(ctx, merged, "coalescing the placeholders failed");
	PC_CHECK(ctx, VirtualFree(ph, 0, MEM_RELEASE), "releasing the coalesced placeholder failed: %s",
		 pc_strerror(pl_win_last_errno()));
	pc_pass(ctx);
}

PC_PROBE(prefetch, "prefetchvirtualmemory.contents_kept",
	 "PrefetchVirtualMemory accepts a committed, trimmed range and leaves its bytes; residency afterwards is measured")
{
	pl_prefetch_fn prefetch_fn = (pl_prefetch_fn)(void *)pw_export_or_skip(ctx, "PrefetchVirtualMemory", "Windows 8");
	size_t len = 64 * pl_page_size();
	char *p = pw_commit(ctx, len);
	pc_fill(p, len, 59);
	pw_trim(p, len);
	WIN32_MEMORY_RANGE_ENTRY r = {p, len};
	BOOL ok = prefetch_fn(GetCurrentProcess(), 1, &r, 0);
	pc_observe(ctx, "answer", "%s", pw_answer(ok ? ERROR_SUCCESS : GetLastError()));
	size_t n;
	if (pl_resident_pages(p, len, &n) == 0)
		pc_measure(ctx, "valid_pages_after", "%zu of %zu", n, len / pl_page_size());
	PC_CHECK(ctx, ok, "PrefetchVirtualMemory of committed memory failed");
	PC_CHECK(ctx, pc_check_fill(p, len, 59), "the prefetched range changed");
	pw_release(ctx, p);
	pc_pass(ctx);
}
