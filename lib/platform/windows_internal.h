/* Shared by the Windows page-layer files (windows*.c); not public. */
#ifndef PAGELAB_WINDOWS_INTERNAL_H
#define PAGELAB_WINDOWS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "pl_abi.h"
#include "pl_internal.h"
#include "pl_win32.h"

/* Less than this between the commit limit and physical memory is rounding, not a page file. */
#define PL_WIN_MIN_PAGE_FILE ((uint64_t)1 << 20)

/* Exports newer than Windows 7 (and the working-set query, whose name moved
 * between kernel32 and psapi), resolved once; NULL where this system lacks one. */
struct pl_win_exports {
	pl_offer_fn offer;
	pl_reclaim_fn reclaim;
	pl_discard_fn discard;
	pl_prefetch_fn prefetch;
	pl_virtual_alloc2_fn virtual_alloc2;
	BOOL(WINAPI *query_working_set_ex)(HANDLE process, PVOID info, DWORD size);
	BOOL(WINAPI *process_memory_info)(HANDLE process, void *counters, DWORD size);
};
const struct pl_win_exports *pl_win_exports(void);

/* The start-up checks (windows_check.c). Each names what it exercised. */
enum pl_win_check {
	PL_WCHK_MEM_RESET,      /* VirtualAlloc(MEM_RESET): old or zero */
	PL_WCHK_DECOMMIT,       /* VirtualFree(MEM_DECOMMIT) faults; MEM_COMMIT reads zero again */
	PL_WCHK_OFFER,          /* OfferVirtualMemory + ReclaimVirtualMemory: intact on ERROR_SUCCESS */
	PL_WCHK_RESET_UNDO,     /* VirtualAlloc(MEM_RESET_UNDO) accepted after MEM_RESET */
	PL_WCHK_ALIGNED_RESERVE,/* VirtualAlloc2 with MEM_ADDRESS_REQUIREMENTS aligns a reservation */
	PL_WCHK_PREFETCH,       /* PrefetchVirtualMemory accepts a committed range */
	PL_WCHK_WORKING_SET,    /* QueryWorkingSetEx answers for a written page */
	PL_WCHK_COUNT
};

/* What a check found: the export is missing, it works, it returned success
 * without doing what it promises, it refused, or it crashed the checking copy. */
enum pl_win_outcome { PL_WOUT_NOT_RUN = 0, PL_WOUT_MISSING, PL_WOUT_WORKS, PL_WOUT_NOT_HONOURED, PL_WOUT_REFUSED,
		      PL_WOUT_CRASHED };

struct pl_win_check_result {
	enum pl_win_outcome outcome;
	char detail[160];
};

/* Run every check in a re-executed copy of this program (once per process
 * tree: copies started by this program inherit the results). */
void pl_win_checks(struct pl_win_check_result out[PL_WCHK_COUNT]);
/* The native calls the checks exercise (windows.c). */
int pl_win_mem_reset(void *p, size_t len);
int pl_win_decommit_commit(void *p, size_t len);
int pl_win_offer(void *p, size_t len);
/* ReclaimVirtualMemory: 0 intact, EAGAIN discarded (ERROR_BUSY), else errno. */
int pl_win_reclaim(void *p, size_t len);
int pl_win_aligned_reserve2(size_t len, size_t align, void **out);

#endif
