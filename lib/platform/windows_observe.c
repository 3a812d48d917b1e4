/* The page layer's observation calls on Windows: QueryWorkingSetEx for
 * residency and per-page flags, GetProcessMemoryInfo for the working set and
 * page faults, VirtualQuery for the mapping list, GlobalMemoryStatusEx for
 * the page files. Windows shows no zero page, no program break and no locked
 * total to a process, and charges every commit without a call that says so:
 * those answer ENOTSUP (lib/platform/none.c). */
#include "windows_internal.h"

#include <errno.h>
#include <psapi.h>
#include <stdint.h>

#define QUERY_BATCH 512

/* The working-set attributes of n pages from `first`, into out[0..n). */
static int query_pages(uintptr_t first, size_t n, PSAPI_WORKING_SET_EX_INFORMATION *out)
{
	BOOL(WINAPI *query)(HANDLE, PVOID, DWORD) = pl_win_exports()->query_working_set_ex;
	if (!query)
		return ENOTSUP;
	for (size_t i = 0; i < n; i++)
		out[i].VirtualAddress = (void *)(first + i * pl_page_size());
	return query(GetCurrentProcess(), out, (DWORD)(n * sizeof(*out))) ? 0 : pl_win_last_errno();
}

/* Call fn(attributes, arg) for every page of [p, p+len). */
static int each_page(const void *p, size_t len, void (*fn)(PSAPI_WORKING_SET_EX_BLOCK a, size_t i, void *arg), void *arg)
{
	PSAPI_WORKING_SET_EX_INFORMATION batch[QUERY_BATCH];
	size_t ps = pl_page_size();
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)(ps - 1);
	size_t pages = ((uintptr_t)p + len - start + ps - 1) / ps;
	for (size_t done = 0; done < pages; done += QUERY_BATCH) {
		size_t n = pages - done < QUERY_BATCH ? pages - done : QUERY_BATCH;
		int e = query_pages(start + done * ps, n, batch);
		if (e)
			return e;
		for (size_t i = 0; i < n; i++)
			fn(batch[i].VirtualAttributes, done + i, arg);
	}
	return 0;
}

static void valid_into(PSAPI_WORKING_SET_EX_BLOCK a, size_t i, void *vec)
{
	((unsigned char *)vec)[i] = a.Valid;
}

int pl_residency(const void *p, size_t len, unsigned char *vec)
{
	return each_page(p, len, valid_into, vec);
}

static void count_large(PSAPI_WORKING_SET_EX_BLOCK a, size_t i, void *count)
{
	(void)i;
	*(size_t *)count += a.Valid && a.LargePage;
}

int pl_huge_bytes(const void *p, size_t len, size_t *bytes)
{
	size_t pages = 0;
	int e = each_page(p, len, count_large, &pages);
	if (e == 0)
		*bytes = pages * pl_page_size();
	return e;
}

static void flags_of(PSAPI_WORKING_SET_EX_BLOCK a, size_t i, void *flags)
{
	(void)i;
	*(unsigned *)flags = (a.Valid ? PL_PF_PRESENT : 0) | (a.Valid && a.LargePage ? PL_PF_HUGE : 0);
}

int pl_page_flags(const void *p, unsigned *flags, unsigned *known)
{
	*flags = 0;
	int e = each_page(p, 1, flags_of, flags);
	if (e == 0)
		*known = PL_PF_PRESENT | PL_PF_HUGE;
	return e;
}

static int memory_counters(PROCESS_MEMORY_COUNTERS *pmc)
{
	BOOL(WINAPI *get)(HANDLE, void *, DWORD) = pl_win_exports()->process_memory_info;
	if (!get)
		return ENOTSUP;
	pmc->cb = sizeof(*pmc);
	return get(GetCurrentProcess(), pmc, sizeof(*pmc)) ? 0 : pl_win_last_errno();
}

int pl_footprint(size_t *bytes)
{
	(void)bytes;
	return ENOTSUP; /* Windows charges commit (PrivateUsage), which counts pages never touched */
}

int pl_rss(size_t *bytes)
{
	PROCESS_MEMORY_COUNTERS pmc;
	int e = memory_counters(&pmc);
	if (e == 0)
		*bytes = pmc.WorkingSetSize;
	return e;
}

/* Windows counts soft and hard faults together: all of them are reported as minor. */
int pl_fault_counts(uint64_t *minor, uint64_t *major)
{
	PROCESS_MEMORY_COUNTERS pmc;
	int e = memory_counters(&pmc);
	if (e == 0) {
		*minor = pmc.PageFaultCount;
		*major = 0;
	}
	return e;
}

/* Allocations (VirtualAlloc reservations, views) with pages in [p, p+len). */
int pl_mapping_count(const void *p, size_t len, size_t *count)
{
	MEMORY_BASIC_INFORMATION mbi;
	const char *at = p, *end = (const char *)p + len;
	void *last = NULL;
	size_t n = 0;
	while (at < end) {
		if (VirtualQuery(at, &mbi, sizeof(mbi)) != sizeof(mbi))
			return pl_win_last_errno();
		if (mbi.State != MEM_FREE && mbi.AllocationBase != last) {
			last = mbi.AllocationBase;
			n++;
		}
		at = (const char *)mbi.BaseAddress + mbi.RegionSize;
	}
	*count = n;
	return 0;
}

/* The page files: the commit limit beyond physical memory (a few pages of rounding are not a page file). */
int pl_swap_total(uint64_t *bytes)
{
	MEMORYSTATUSEX ms = {.dwLength = sizeof(ms)};
	if (!GlobalMemoryStatusEx(&ms))
		return pl_win_last_errno();
	uint64_t beyond = ms.ullTotalPageFile > ms.ullTotalPhys ? ms.ullTotalPageFile - ms.ullTotalPhys : 0;
	*bytes = beyond >= PL_WIN_MIN_PAGE_FILE ? beyond : 0;
	return 0;
}

const char *pl_huge_unavailable(void)
{
	return "Windows has no transparent huge pages: large pages (MEM_LARGE_PAGES) need SeLockMemoryPrivilege "
	       "and stay locked";
}

/* ---- deeper observations, and acting like the kernel's other users ----
 * Windows has no per-process written-since tracking (write watches cover only
 * MEM_WRITE_WATCH regions), no transparent or pooled huge pages (large pages
 * need SeLockMemoryPrivilege), no page merging a program can start or read
 * (memory combining is the system's own), no migration or pinning call, no
 * page supplier and no reclaiming memory group (a job's memory limit refuses
 * commits instead): those answer ENOTSUP. */

static void folio_of(PSAPI_WORKING_SET_EX_BLOCK a, size_t i, void *bytes)
{
	(void)i;
	*(size_t *)bytes = a.Valid && a.LargePage ? GetLargePageMinimum() : a.Valid ? pl_page_size() : 0;
}

int pl_folio_bytes(const void *p, size_t *bytes)
{
	size_t b = 0;
	int e = each_page(p, 1, folio_of, &b);
	if (e)
		return e;
	if (b == 0)
		return ENOENT; /* no page there to hold */
	*bytes = b;
	return 0;
}

/* WriteProcessMemory writes through a page's protection, as a debugger's breakpoint does. */
int pl_force_write(void *p, unsigned char byte)
{
	SIZE_T n = 0;
	if (!WriteProcessMemory(GetCurrentProcess(), p, &byte, 1, &n))
		return pl_win_last_errno();
	return n == 1 ? 0 : EIO;
}

int pl_memlimit_create(size_t bytes, struct pl_memlimit **out, const char **why)
{
	(void)bytes; (void)out;
	*why = "Windows has no memory group that reclaims under its limit (a job object's limit refuses commits)";
	return ENOTSUP;
}
