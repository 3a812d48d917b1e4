/* What the Windows probes (suites/conformance/win32/) share: committed
 * memory that errors the probe when Windows cannot give it, the answer to an
 * allocation type no Windows defines, a working-set trim, and the state and
 * protection VirtualQuery reports. */
#ifndef PAGELAB_PROBE_WIN32_H
#define PAGELAB_PROBE_WIN32_H

#include <windows.h>

#include "pagelab/check.h"
#include "pagelab/env.h"
#include "pl_abi.h"
#include "pl_win32.h"

/* A VirtualAlloc allocation type bit no Windows defines (the low bits belong to VirtualFree). */
#define PW_UNKNOWN_ALLOCATION_TYPE 0x10

/* len bytes reserved and committed read-write, or the probe errors. */
static inline char *pw_commit(struct pc_ctx *ctx, size_t len)
{
	char *p = VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	if (!p)
		pc_error(ctx, "VirtualAlloc(MEM_RESERVE|MEM_COMMIT, %zu): %s", len, pc_strerror(pl_win_last_errno()));
	return p;
}

/* Release a whole reservation, or error the probe. */
static inline void pw_release(struct pc_ctx *ctx, void *p)
{
	if (!VirtualFree(p, 0, MEM_RELEASE))
		pc_error(ctx, "VirtualFree(MEM_RELEASE): %s", pc_strerror(pl_win_last_errno()));
}

/* What VirtualAlloc answers on [p, p+len) for an allocation type it cannot know (ERROR_SUCCESS: accepted). */
static inline DWORD pw_unknown_type_error(void *p, size_t len)
{
	return VirtualAlloc(p, len, PW_UNKNOWN_ALLOCATION_TYPE, PAGE_READWRITE) ? ERROR_SUCCESS : GetLastError();
}

/* VirtualAlloc on an existing range with one allocation type: ERROR_SUCCESS or the error. */
static inline DWORD pw_alloc_type(void *p, size_t len, DWORD type)
{
	return VirtualAlloc(p, len, type, PAGE_NOACCESS) == p ? ERROR_SUCCESS : GetLastError();
}

/* The answer of a call for observations: "accepted" or the Windows error's name. */
static inline const char *pw_answer(DWORD err)
{
	return err == ERROR_SUCCESS ? "accepted" : pl_win_error_name(err);
}

/* A refusal of `what` (a Windows error) against the answer to an unknown allocation type. */
static inline PC_NORETURN void pw_refusal(struct pc_ctx *ctx, const char *what, DWORD err, DWORD unknown)
{
	pc_observe(ctx, "windows_error", "%s", pl_win_error_name(err));
	pc_refusal(ctx, what, pl_win_errno(err), pl_win_errno(unknown));
}

/* VirtualUnlock of pages that are not locked takes them out of the working set. */
static inline void pw_trim(void *p, size_t len)
{
	(void)VirtualUnlock(p, len);
}

static inline MEMORY_BASIC_INFORMATION pw_query(struct pc_ctx *ctx, const void *p)
{
	MEMORY_BASIC_INFORMATION mbi;
	if (VirtualQuery(p, &mbi, sizeof(mbi)) != sizeof(mbi))
		pc_error(ctx, "VirtualQuery: %s", pc_strerror(pl_win_last_errno()));
	return mbi;
}

/* "free", "reserved" or "committed": the state of the page at p. */
static inline const char *pw_state_name(DWORD state)
{
	return state == MEM_FREE ? "free" : state == MEM_RESERVE ? "reserved" : state == MEM_COMMIT ? "committed" : "other";
}

/* An export this Windows may lack (newer than Windows 7), or skip the probe as unsupported. */
static inline FARPROC pw_export_or_skip(struct pc_ctx *ctx, const char *name, const char *since)
{
	FARPROC f = pl_win_export(name);
	if (!f)
		pc_skip_unsupported(ctx, "%s is not exported here (%s)", name, since);
	return f;
}

#endif
