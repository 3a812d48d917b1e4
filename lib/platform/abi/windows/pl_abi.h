/* Windows ABI values that Debian 12's mingw-w64 headers (10.0) lack, and the
 * types of the exports the page layer resolves at run time. The values are
 * fixed by the Windows SDK's winnt.h; a Windows that does not know one
 * refuses it with ERROR_INVALID_PARAMETER, which the start-up checks record.
 * Windows has no madvise: pc_madvise answers ENOSYS, so the few MADV_* the
 * portable suites name are defined below only so that they build. */
#ifndef PAGELAB_PL_ABI_H
#define PAGELAB_PL_ABI_H

#include <windows.h>

/* VirtualAlloc2 placeholders, Windows 10 1803 (winnt.h, memoryapi.h). */
#ifndef MEM_RESERVE_PLACEHOLDER
#define MEM_RESERVE_PLACEHOLDER 0x00040000
#endif
#ifndef MEM_REPLACE_PLACEHOLDER
#define MEM_REPLACE_PLACEHOLDER 0x00004000
#endif
#ifndef MEM_PRESERVE_PLACEHOLDER
#define MEM_PRESERVE_PLACEHOLDER 0x00000002
#endif
#ifndef MEM_COALESCE_PLACEHOLDERS
#define MEM_COALESCE_PLACEHOLDERS 0x00000001
#endif
#ifndef MEM_RESET_UNDO
#define MEM_RESET_UNDO 0x01000000 /* Windows 8 */
#endif

/* Advice the portable suites name (pc_madvise answers ENOSYS: any number does). */
#define MADV_DONTNEED 0x7b18
#define MADV_NOHUGEPAGE 0x7b0e
#define MADV_FREE_REUSABLE 0x7b16
#define MADV_FREE_REUSE 0x7b17

/* Offer priorities, Windows 8.1 (memoryapi.h OFFER_PRIORITY). */
#define PL_VM_OFFER_PRIORITY_VERY_LOW 1

/* The exports newer than Windows 7, resolved with GetProcAddress. */
typedef DWORD(WINAPI *pl_discard_fn)(PVOID addr, SIZE_T size);
typedef DWORD(WINAPI *pl_offer_fn)(PVOID addr, SIZE_T size, int priority);
typedef DWORD(WINAPI *pl_reclaim_fn)(const void *addr, SIZE_T size);
typedef BOOL(WINAPI *pl_prefetch_fn)(HANDLE process, ULONG_PTR n, WIN32_MEMORY_RANGE_ENTRY *ranges, ULONG flags);
typedef PVOID(WINAPI *pl_virtual_alloc2_fn)(HANDLE process, PVOID base, SIZE_T size, ULONG type, ULONG protect,
					    MEM_EXTENDED_PARAMETER *params, ULONG nparams);
typedef PVOID(WINAPI *pl_map_view3_fn)(HANDLE mapping, HANDLE process, PVOID base, ULONG64 offset, SIZE_T size,
				       ULONG type, ULONG protect, MEM_EXTENDED_PARAMETER *params, ULONG nparams);
typedef BOOL(WINAPI *pl_unmap_view2_fn)(HANDLE process, PVOID base, ULONG flags);

#endif
