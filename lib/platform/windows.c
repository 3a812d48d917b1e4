/* The page layer on Windows. Address space is reserved and committed with
 * VirtualAlloc and given back with VirtualFree, whole reservations only
 * (granularity 64 KiB, no partial release). Exports newer than Windows 7
 * (OfferVirtualMemory, VirtualAlloc2, PrefetchVirtualMemory) are resolved
 * with GetProcAddress and used only after a re-executed copy of this program
 * saw them keep their promise (windows_check.c): one that is missing, does
 * nothing or crashes falls back to the Windows 7 calls. Observation calls
 * are in windows_observe.c. */
#include "windows_internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static SYSTEM_INFO sysinfo;
static INIT_ONCE sysinfo_once = INIT_ONCE_STATIC_INIT;
static struct pl_win_exports exports;
static INIT_ONCE exports_once = INIT_ONCE_STATIC_INIT;
static struct pl_caps caps;
static INIT_ONCE caps_once = INIT_ONCE_STATIC_INIT;

/* What the verbs use: decided by the start-up checks. */
static bool use_mem_reset = true, use_offer, use_reset_undo, use_aligned_reserve2, use_prefetch;

static BOOL CALLBACK read_sysinfo(PINIT_ONCE once, PVOID arg, PVOID *ctx)
{
	(void)once; (void)arg; (void)ctx;
	GetSystemInfo(&sysinfo);
	return TRUE;
}

size_t pl_page_size(void)
{
	(void)InitOnceExecuteOnce(&sysinfo_once, read_sysinfo, NULL, NULL);
	return sysinfo.dwPageSize ? sysinfo.dwPageSize : 4096;
}

static size_t granularity(void)
{
	(void)pl_page_size();
	return sysinfo.dwAllocationGranularity ? sysinfo.dwAllocationGranularity : 65536;
}

static BOOL CALLBACK resolve_exports(PINIT_ONCE once, PVOID arg, PVOID *ctx)
{
	(void)once; (void)arg; (void)ctx;
	exports.offer = (pl_offer_fn)(void *)pl_win_export("OfferVirtualMemory");
	exports.reclaim = (pl_reclaim_fn)(void *)pl_win_export("ReclaimVirtualMemory");
	exports.discard = (pl_discard_fn)(void *)pl_win_export("DiscardVirtualMemory");
	exports.prefetch = (pl_prefetch_fn)(void *)pl_win_export("PrefetchVirtualMemory");
	exports.virtual_alloc2 = (pl_virtual_alloc2_fn)(void *)pl_win_export("VirtualAlloc2");
	/* psapi's functions live in kernel32 as K32* since Windows 7. */
	exports.query_working_set_ex = (BOOL(WINAPI *)(HANDLE, PVOID, DWORD))(void *)pl_win_export("K32QueryWorkingSetEx");
	exports.process_memory_info =
		(BOOL(WINAPI *)(HANDLE, void *, DWORD))(void *)pl_win_export("K32GetProcessMemoryInfo");
	return TRUE;
}

const struct pl_win_exports *pl_win_exports(void)
{
	(void)InitOnceExecuteOnce(&exports_once, resolve_exports, NULL, NULL);
	return &exports;
}

/* ---- capabilities ---- */

static const char *outcome_note(const struct pl_win_check_result *r)
{
	return r->detail[0] ? r->detail : "no detail";
}

/* A native claim's verdict from its check; true when the call may be used. */
static bool claim(struct pl_caps *c, enum pl_op op, const struct pl_win_check_result *r)
{
	enum pl_verdict v = r->outcome == PL_WOUT_WORKS ? PL_HONOURED
			  : r->outcome == PL_WOUT_NOT_HONOURED || r->outcome == PL_WOUT_CRASHED ? PL_NOT_HONOURED
			  : PL_NOT_CHECKED;
	pl_cap_verdict(c, op, v, outcome_note(r));
	return r->outcome == PL_WOUT_WORKS;
}

static void fill_lifetime_caps(struct pl_caps *c, const struct pl_win_check_result *r)
{
	use_aligned_reserve2 = claim(c, PL_OP_RESERVE, &r[PL_WCHK_ALIGNED_RESERVE]);
	pl_cap_set(c, PL_OP_RESERVE, PL_NATIVE, use_aligned_reserve2
		   ? "VirtualAlloc(MEM_RESERVE); VirtualAlloc2(MEM_ADDRESS_REQUIREMENTS) above 64 KiB alignment"
		   : "VirtualAlloc(MEM_RESERVE), at a rounded address above 64 KiB alignment", NULL);
	pl_cap_set(c, PL_OP_COMMIT, PL_NATIVE, "VirtualAlloc(MEM_COMMIT)", NULL);
	pl_cap_set(c, PL_OP_DECOMMIT, PL_NATIVE, "VirtualFree(MEM_DECOMMIT)", NULL);
	(void)claim(c, PL_OP_DECOMMIT, &r[PL_WCHK_DECOMMIT]);
	c->op[PL_OP_COMMIT].verified = c->op[PL_OP_DECOMMIT].verified;
	pl_cap_set(c, PL_OP_PROTECT, PL_NATIVE, "VirtualProtect", NULL);
	pl_cap_set(c, PL_OP_UNMAP, PL_NATIVE, "VirtualFree(MEM_RELEASE)", "whole reservations only");
}

static void fill_release_caps(struct pl_caps *c, const struct pl_win_check_result *r)
{
	use_mem_reset = r[PL_WCHK_MEM_RESET].outcome != PL_WOUT_NOT_HONOURED && r[PL_WCHK_MEM_RESET].outcome != PL_WOUT_CRASHED;
	(void)claim(c, PL_OP_RELEASE, &r[PL_WCHK_MEM_RESET]);
	if (use_mem_reset)
		pl_cap_set(c, PL_OP_RELEASE, PL_NATIVE, "VirtualAlloc(MEM_RESET)", NULL);
	else
		pl_cap_set(c, PL_OP_RELEASE, PL_EMULATED, "VirtualFree(MEM_DECOMMIT) + VirtualAlloc(MEM_COMMIT)",
			   "MEM_RESET not honoured: decommit and commit again (reads zero)");
	pl_cap_set(c, PL_OP_RELEASE_ZERO, PL_EMULATED, "VirtualFree(MEM_DECOMMIT) + VirtualAlloc(MEM_COMMIT)",
		   "no call keeps pages committed and zeroes them (DiscardVirtualMemory leaves them undefined)");
	use_offer = claim(c, PL_OP_REUSABLE, &r[PL_WCHK_OFFER]);
	c->op[PL_OP_REUSE].verified = c->op[PL_OP_REUSABLE].verified;
	use_reset_undo = r[PL_WCHK_RESET_UNDO].outcome == PL_WOUT_WORKS;
	if (use_offer) {
		pl_cap_set(c, PL_OP_REUSABLE, PL_NATIVE, "OfferVirtualMemory(VmOfferPriorityVeryLow)",
			   "offered pages are inaccessible until reclaimed");
		pl_cap_set(c, PL_OP_REUSE, PL_NATIVE, "ReclaimVirtualMemory",
			   "ERROR_BUSY (discarded): decommitted and committed again, so every page reads zero");
	} else {
		pl_cap_set(c, PL_OP_REUSABLE, PL_EMULATED, use_mem_reset ? "VirtualAlloc(MEM_RESET)" : c->op[PL_OP_RELEASE].via,
			   pl_win_exports()->offer ? "OfferVirtualMemory not honoured" : "no OfferVirtualMemory (Windows 8.1)");
		pl_cap_set(c, PL_OP_REUSE, PL_EMULATED, use_reset_undo ? "VirtualAlloc(MEM_RESET_UNDO)" : "none",
			   use_reset_undo ? "contents old, or zero where MEM_RESET_UNDO fails"
					  : "no MEM_RESET_UNDO (Windows 8): reset pages read old or zero as they are");
	}
}

static void fill_other_caps(struct pl_caps *c, const struct pl_win_check_result *r)
{
	use_prefetch = r[PL_WCHK_PREFETCH].outcome == PL_WOUT_WORKS;
	pl_cap_set(c, PL_OP_GUARD, PL_EMULATED, "VirtualProtect(PAGE_NOACCESS)",
		   "no persistent guard marker (PAGE_GUARD faults once, then the page is plain)");
	pl_cap_set(c, PL_OP_UNGUARD, PL_EMULATED, "VirtualFree(MEM_DECOMMIT) + VirtualAlloc(MEM_COMMIT)", NULL);
	pl_cap_set(c, PL_OP_POPULATE, PL_EMULATED, use_prefetch ? "PrefetchVirtualMemory + touch each page" : "touch each page",
		   use_prefetch ? "PrefetchVirtualMemory is a hint: each page is touched as well"
				: "PrefetchVirtualMemory missing or not working here");
	pl_cap_set(c, PL_OP_MAP_PATTERN, PL_EMULATED, "memset", "no reference-page mapping on Windows: the pattern is written up front");
	if (r[PL_WCHK_WORKING_SET].outcome == PL_WOUT_WORKS)
		pl_cap_set(c, PL_OP_RESIDENCY, PL_NATIVE, "QueryWorkingSetEx", NULL);
	else
		pl_cap_set(c, PL_OP_RESIDENCY, PL_UNAVAILABLE, NULL, "QueryWorkingSetEx missing or not working here");
	pl_cap_set(c, PL_OP_ZERO_PAGE, PL_UNAVAILABLE, NULL, "Windows shows no shared zero page to a process");
	if (pl_win_exports()->process_memory_info)
		pl_cap_set(c, PL_OP_RSS, PL_NATIVE, "GetProcessMemoryInfo(WorkingSetSize)", NULL);
	else
		pl_cap_set(c, PL_OP_RSS, PL_UNAVAILABLE, NULL, "no GetProcessMemoryInfo");
}

static BOOL CALLBACK fill_caps(PINIT_ONCE once, PVOID arg, PVOID *ctx)
{
	(void)once; (void)arg; (void)ctx;
	static struct pl_win_check_result r[PL_WCHK_COUNT]; /* the capability set points into its details */
	caps.platform = "windows";
	caps.page_size = pl_page_size();
	caps.granularity = granularity();
	caps.partial_unmap = false;
	caps.huge_page_size = 0; /* large pages are never transparent: they need SeLockMemoryPrivilege */
	pl_win_checks(r);
	fill_lifetime_caps(&caps, r);
	fill_release_caps(&caps, r);
	fill_other_caps(&caps, r);
	return TRUE;
}

const struct pl_caps *pl_caps(void)
{
	(void)InitOnceExecuteOnce(&caps_once, fill_caps, NULL, NULL);
	return &caps;
}

/* ---- mapping lifetime ---- */

static bool page_aligned(const void *p, size_t len)
{
	size_t ps = pl_page_size();
	return (uintptr_t)p % ps == 0 && len % ps == 0;
}

static DWORD win_prot(int prot)
{
	bool r = prot & PL_PROT_READ, w = prot & PL_PROT_WRITE, x = prot & PL_PROT_EXEC;
	if (x)
		return w ? PAGE_EXECUTE_READWRITE : r ? PAGE_EXECUTE_READ : PAGE_EXECUTE;
	return w ? PAGE_READWRITE : r ? PAGE_READONLY : PAGE_NOACCESS;
}

int pl_win_aligned_reserve2(size_t len, size_t align, void **out)
{
	pl_virtual_alloc2_fn va2 = pl_win_exports()->virtual_alloc2;
	if (!va2)
		return ENOSYS;
	MEM_ADDRESS_REQUIREMENTS req = {.Alignment = align};
	MEM_EXTENDED_PARAMETER param = {0};
	param.Type = MemExtendedParameterAddressRequirements;
	param.Pointer = &req;
	void *p = va2(GetCurrentProcess(), NULL, len, MEM_RESERVE, PAGE_NOACCESS, &param, 1);
	if (!p)
		return pl_win_last_errno();
	*out = p;
	return 0;
}

/* Reserve more than asked, free it, and reserve again at the aligned address
 * inside; another thread may take the hole in between, hence a few tries. */
static int aligned_reserve_by_retry(size_t len, size_t align, void **out)
{
	size_t span = len + align;
	if (span < len)
		return ENOMEM;
	for (int attempt = 0; attempt < 8; attempt++) {
		char *base = VirtualAlloc(NULL, span, MEM_RESERVE, PAGE_NOACCESS);
		if (!base)
			return pl_win_last_errno();
		char *start = (char *)(((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1));
		if (!VirtualFree(base, 0, MEM_RELEASE))
			return pl_win_last_errno();
		void *p = VirtualAlloc(start, len, MEM_RESERVE, PAGE_NOACCESS);
		if (p == start) {
			*out = p;
			return 0;
		}
	}
	return ENOMEM;
}

/* MEM_RESERVE: address space only, no access and no commit charge (VirtualAlloc). */
int pl_reserve(size_t len, size_t align, void **out)
{
	int e = pl_reserve_args(len, &align);
	if (e)
		return e;
	if (align > granularity()) {
		(void)pl_caps();
		return use_aligned_reserve2 ? pl_win_aligned_reserve2(len, align, out)
					    : aligned_reserve_by_retry(len, align, out);
	}
	/* Every reservation starts on an allocation-granularity boundary (64 KiB). */
	void *p = VirtualAlloc(NULL, len, MEM_RESERVE, PAGE_NOACCESS);
	if (!p)
		return pl_win_last_errno();
	*out = p;
	return 0;
}

/* MEM_RESERVE|MEM_COMMIT, PAGE_READWRITE: charged at once, each page zero when first touched. */
int pl_map_anon(size_t len, void **out)
{
	if (len == 0)
		return EINVAL;
	void *p = VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	if (!p)
		return pl_win_last_errno();
	*out = p;
	return 0;
}

/* The size of the reservation (or view) that starts at p; 0 when none starts there. */
static size_t allocation_size(void *p, DWORD *type)
{
	MEMORY_BASIC_INFORMATION mbi;
	size_t total = 0;
	char *at = p;
	while (VirtualQuery(at, &mbi, sizeof(mbi)) == sizeof(mbi) && mbi.AllocationBase == p && mbi.State != MEM_FREE) {
		*type = mbi.Type;
		total += mbi.RegionSize;
		at += mbi.RegionSize;
	}
	return total;
}

/* MEM_RELEASE frees the whole reservation or nothing (VirtualFree: size must be 0, base the allocation's). */
int pl_unmap(void *p, size_t len)
{
	DWORD type = 0;
	size_t ps = pl_page_size(), whole = allocation_size(p, &type);
	/* VirtualFree releases whole reservations only: a part of one is refused, as the caps say. */
	if (whole == 0 || (len + ps - 1) / ps * ps != whole)
		return EINVAL;
	BOOL ok = type == MEM_MAPPED ? UnmapViewOfFile(p) : VirtualFree(p, 0, MEM_RELEASE);
	return ok ? 0 : pl_win_last_errno();
}

/* Committed pages read zero when first touched (VirtualAlloc: "initialized to zero"). */
int pl_commit(void *p, size_t len)
{
	if (!page_aligned(p, len) || len == 0)
		return EINVAL;
	return VirtualAlloc(p, len, MEM_COMMIT, PAGE_READWRITE) == p ? 0 : pl_win_last_errno();
}

/* Decommitted pages are given back and fault until committed again. */
int pl_decommit(void *p, size_t len)
{
	if (!page_aligned(p, len) || len == 0) /* length 0 would decommit the whole region */
		return EINVAL;
	return VirtualFree(p, len, MEM_DECOMMIT) ? 0 : pl_win_last_errno();
}

/* VirtualProtect: the new access applies to every page of the range, within one reservation. */
int pl_protect(void *p, size_t len, int prot)
{
	DWORD old, want = win_prot(prot);
	if (VirtualProtect(p, len, want, &old))
		return 0;
	int e = pl_win_last_errno();
	/* A copy-on-write view (FILE_MAP_COPY) is writable only as PAGE_WRITECOPY. */
	DWORD copy = want == PAGE_READWRITE ? PAGE_WRITECOPY : want == PAGE_EXECUTE_READWRITE ? PAGE_EXECUTE_WRITECOPY : 0;
	if (copy && VirtualProtect(p, len, copy, &old))
		return 0;
	return e;
}

/* ---- giving memory back ---- */

/* MEM_RESET: the pages' contents are no longer of interest; they read old or zero. */
int pl_win_mem_reset(void *p, size_t len)
{
	/* The protection is ignored for MEM_RESET but must be a valid one. */
	return VirtualAlloc(p, len, MEM_RESET, PAGE_NOACCESS) == p ? 0 : pl_win_last_errno();
}

/* Decommit then commit: the memory goes back and the pages read zero, still read-write. */
int pl_win_decommit_commit(void *p, size_t len)
{
	int e = pl_decommit(p, len);
	return e ? e : pl_commit(p, len);
}

/* Views of files cannot be reset or decommitted: trimming them from the
 * working set lets Windows write them back and drop them; contents stay. */
static int trim_view(void *p, size_t len)
{
	/* VirtualUnlock of unlocked pages removes them from the working set and says ERROR_NOT_LOCKED. */
	if (!VirtualUnlock(p, len) && GetLastError() != ERROR_NOT_LOCKED)
		return pl_win_last_errno();
	return 0;
}

static bool is_view(const void *p)
{
	MEMORY_BASIC_INFORMATION mbi;
	return VirtualQuery(p, &mbi, sizeof(mbi)) == sizeof(mbi) && mbi.Type == MEM_MAPPED;
}

/* MEM_RESET (or, where it is not honoured, decommit and commit): each page reads old or zero, still accessible. */
int pl_release(void *p, size_t len)
{
	size_t ps = pl_page_size();
	if ((uintptr_t)p % ps)
		return EINVAL;
	(void)pl_caps();
	int e = use_mem_reset ? pl_win_mem_reset(p, len) : pl_win_decommit_commit(p, (len + ps - 1) / ps * ps);
	/* Views of files refuse both (pagefile-backed ones accept MEM_RESET). */
	return e && is_view(p) ? trim_view(p, len) : e;
}

/* Decommit and commit: the memory goes back and every page reads zero (zeros written where that is refused). */
int pl_release_zero(void *p, size_t len)
{
	if (!page_aligned(p, len))
		return EINVAL; /* checked first: the memset below must not paper over a bad range */
	int e = len ? pl_win_decommit_commit(p, len) : 0;
	/* Views of files (and pages others lock) cannot be decommitted: keep the promise by hand. */
	if (e == EINVAL || e == EACCES) {
		memset(p, 0, len);
		e = 0;
	}
	return e;
}

/* OfferVirtualMemory: the pages may be discarded, are inaccessible, and are not written to the page file. */
int pl_win_offer(void *p, size_t len)
{
	pl_offer_fn offer = pl_win_exports()->offer;
	if (!offer)
		return ENOSYS;
	return pl_win_errno(offer(p, len, PL_VM_OFFER_PRIORITY_VERY_LOW));
}

/* ReclaimVirtualMemory: ERROR_SUCCESS when every page is intact, ERROR_BUSY when some were discarded. */
int pl_win_reclaim(void *p, size_t len)
{
	pl_reclaim_fn reclaim = pl_win_exports()->reclaim;
	if (!reclaim)
		return ENOSYS;
	DWORD r = reclaim(p, len);
	return r == ERROR_BUSY ? EAGAIN : pl_win_errno(r);
}

/* Only private memory can be offered: views (shared or file-backed) are released instead. */
int pl_reusable(void *p, size_t len)
{
	(void)pl_caps();
	if (use_offer && !is_view(p))
		return pl_win_offer(p, len);
	return pl_release(p, len);
}

/* Reclaim (or MEM_RESET_UNDO): in use again, every page reading its old bytes or zero. */
int pl_reuse(void *p, size_t len)
{
	(void)pl_caps();
	if (is_view(p))
		return 0; /* released, not offered: the pages read old or zero as they are */
	if (use_offer) {
		int e = pl_win_reclaim(p, len);
		/* ERROR_BUSY: some pages were discarded and their contents are undefined. */
		return e == EAGAIN ? pl_release_zero(p, len) : e;
	}
	/* MEM_RESET_UNDO fails when some data was replaced with zeros: old or zero either way. */
	if (use_reset_undo)
		(void)VirtualAlloc(p, len, MEM_RESET_UNDO, PAGE_NOACCESS);
	return 0;
}

/* ---- guards and population ---- */

/* PAGE_NOACCESS: every access faults until the protection changes (the contents stay). */
int pl_guard(void *p, size_t len)
{
	return pl_protect(p, len, PL_PROT_NONE);
}

/* Accessible again and reading zero: the guard's contents are not kept, as the contract says. */
int pl_unguard(void *p, size_t len)
{
	int e = pl_protect(p, len, PL_PROT_RW);
	return e ? e : pl_release_zero(p, len);
}

/* Each page touched (read, or read and written back): resident when this returns. */
/* Windows has no fork: nothing is inherited by a child's address space. */
int pl_inherit(void *p, size_t len, enum pl_inherit how)
{
	(void)p; (void)len; (void)how;
	return ENOTSUP;
}

int pl_populate(void *p, size_t len, bool write)
{
	(void)pl_caps();
	if (use_prefetch && !write) {
		WIN32_MEMORY_RANGE_ENTRY r = {p, len};
		(void)pl_win_exports()->prefetch(GetCurrentProcess(), 1, &r, 0); /* a hint: the touch below decides */
	}
	pl_touch_pages(p, len, write);
	return 0;
}

/* ---- pattern-initialised memory ---- */

int pl_map_pattern(size_t len, unsigned char byte, enum pl_pattern_mode mode, void **out,
		   enum pl_pattern_mode *used)
{
	return pl_map_pattern_memset_only(len, byte, mode, out, used);
}

/* Pattern memory is ordinary committed memory: unmapped whole. */
int pl_unmap_pattern(void *p, size_t len)
{
	return pl_unmap(p, len);
}
