/* The Windows side of the probe helpers: mappings of each kind through
 * VirtualAlloc and CreateFileMapping (a FILE_MAP_COPY view is a private file
 * mapping), VirtualLock, ReadFile into memory, and a working-set trim as the
 * way to ask for reclaim. Windows has no madvise and no fork: probes that
 * need them skip as unsupported, with the reason. */
#include "conform_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "pagelab/env.h"
#include "pl_win32.h"

#define NO_FORK "Windows has no fork: CreateProcess starts a new program, and no process inherits another's " \
		"memory or copies it on write"
#define NO_MADVISE "Windows has no madvise: its counterparts (MEM_RESET, DiscardVirtualMemory, " \
		   "OfferVirtualMemory) are probed by the win32 areas"

int pc_madvise(void *p, size_t len, int advice)
{
	(void)p; (void)len; (void)advice;
	return ENOSYS;
}

int pc_unknown_advice_errno(void *p, size_t len)
{
	return pc_madvise(p, len, 0);
}

int pc_unknown_map_type_errno(void)
{
	return ENOSYS; /* no mmap */
}

void pc_need_advice(struct pc_ctx *ctx, int advice, const char *name)
{
	(void)advice;
	pc_skip_unsupported(ctx, "%s: %s", name, NO_MADVISE);
}

void pc_advise(struct pc_ctx *ctx, void *p, size_t len, int advice, const char *name)
{
	(void)p; (void)len;
	pc_need_advice(ctx, advice, name);
}

/* VirtualUnlock of pages that are not locked takes them out of the working set: Windows may then drop them. */
bool pc_force_reclaim(void *p, size_t len)
{
	return VirtualUnlock(p, len) || GetLastError() == ERROR_NOT_LOCKED;
}

const char *pc_reclaim_name(void)
{
	return "VirtualUnlock";
}

int pc_in_child(int (*fn)(void *arg), void *arg)
{
	(void)fn; (void)arg;
	pc_skip_unsupported(pc_current, NO_FORK);
}

void pc_fork_with_pipes(struct pc_ctx *ctx, int (*fn)(void *arg, int in, int out), void *arg, struct pc_fork *f)
{
	(void)fn; (void)arg; (void)f;
	pc_skip_unsupported(ctx, NO_FORK);
}

/* Never reached: without fork there is no peer (pc_fork_with_pipes skipped the probe). */
int pc_token_send(int fd)
{
	(void)fd;
	return ENOTSUP;
}

int pc_token_await(int fd)
{
	(void)fd;
	return ENOTSUP;
}

int pc_fork_wait(struct pc_ctx *ctx, struct pc_fork *f)
{
	(void)f;
	pc_skip_unsupported(ctx, NO_FORK);
}

/* VirtualLock keeps pages in the working set; it is refused beyond the process's minimum working set. */
void pc_lock_or_skip(struct pc_ctx *ctx, void *p, size_t len)
{
	if (!VirtualLock(p, len))
		pc_skip_prerequisite(ctx, "VirtualLock refused (%s; the minimum working set?)", pl_win_error_name(GetLastError()));
}

int pc_unlock(void *p, size_t len)
{
	return VirtualUnlock(p, len) ? 0 : pl_win_last_errno();
}

int pc_system_write(void *p, const void *src, size_t len)
{
	HANDLE rd, wr;
	DWORD n = 0;
	int e = 0;
	if (!CreatePipe(&rd, &wr, NULL, (DWORD)len))
		return pl_win_last_errno();
	if (!WriteFile(wr, src, (DWORD)len, &n, NULL) || n != len)
		e = pl_win_last_errno();
	if (!e && (!ReadFile(rd, p, (DWORD)len, &n, NULL) || n != len))
		e = n != len && GetLastError() == ERROR_SUCCESS ? EIO : pl_win_last_errno();
	CloseHandle(rd);
	CloseHandle(wr);
	return e;
}

/* A file of len zero bytes in the probe's directory, and a mapping of it. */
static int file_mapping(struct pc_ctx *ctx, size_t len, DWORD protect, HANDLE *mapping)
{
	char path[1024];
	wchar_t w[1024];
	LARGE_INTEGER size = {.QuadPart = (LONGLONG)len};
	snprintf(path, sizeof(path), "%s\\backing.%lu", ctx->tmpdir, (unsigned long)GetTickCount());
	int e = pl_win_widen(path, w, 1024);
	if (e)
		return e;
	HANDLE f = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
			       CREATE_NEW, FILE_ATTRIBUTE_TEMPORARY, NULL);
	if (f == INVALID_HANDLE_VALUE)
		return pl_win_last_errno();
	if (!SetFilePointerEx(f, size, NULL, FILE_BEGIN) || !SetEndOfFile(f))
		e = pl_win_last_errno();
	*mapping = e ? NULL : CreateFileMappingW(f, NULL, protect, 0, 0, NULL);
	if (!e && !*mapping)
		e = pl_win_last_errno();
	CloseHandle(f); /* the mapping keeps the file; the probe's directory goes when the probe ends */
	return e;
}

/* A view of a section: backed by the page file (shared anonymous) or by a file on disk. */
static int map_view(struct pc_ctx *ctx, enum pc_kind kind, struct pc_map *m)
{
	HANDLE mapping;
	int e = 0;
	if (kind == PC_SHARED_ANON) {
		ULARGE_INTEGER size = {.QuadPart = m->len};
		mapping = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, size.HighPart, size.LowPart, NULL);
		if (!mapping)
			return pl_win_last_errno();
	} else if ((e = file_mapping(ctx, m->len, PAGE_READWRITE, &mapping)) != 0) {
		return e;
	}
	/* FILE_MAP_COPY: writes go to private copies and never reach the file. */
	m->addr = MapViewOfFile(mapping, kind == PC_PRIVATE_FILE ? FILE_MAP_COPY : FILE_MAP_WRITE, 0, 0, m->len);
	e = m->addr ? 0 : pl_win_last_errno();
	CloseHandle(mapping); /* the view keeps the section */
	return e;
}

int pc_map(struct pc_ctx *ctx, enum pc_kind kind, size_t len, struct pc_map *m, const char **why)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->kind = kind;
	m->len = len;
	switch (kind) {
	case PC_PRIVATE_ANON:
		return pl_map_anon(len, &m->addr);
	case PC_SHARED_ANON:
	case PC_PRIVATE_FILE:
	case PC_SHARED_FILE: /* no memory-backed file system on Windows: a file on disk, as shared_disk */
	case PC_SHARED_DISK:
		return map_view(ctx, kind, m);
	case PC_HUGETLB_PMD:
	case PC_HUGETLB_PUD:
		*why = "Windows has no pools of huge pages: large pages (MEM_LARGE_PAGES) need SeLockMemoryPrivilege";
		return ENOTSUP;
	default:
		*why = pl_huge_unavailable();
		return ENOTSUP;
	}
}

size_t pc_kind_granule(enum pc_kind kind)
{
	(void)kind;
	return pl_page_size();
}

void pc_unmap(struct pc_map *m)
{
	if (m->addr && m->kind == PC_PRIVATE_ANON)
		(void)VirtualFree(m->addr, 0, MEM_RELEASE);
	else if (m->addr)
		(void)UnmapViewOfFile(m->addr);
	m->addr = NULL;
}

/* ---- the system's own calls: Windows has none of these POSIX/Linux calls ---- */

int pc_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr, void **out)
{
	(void)old; (void)old_len; (void)new_len; (void)flags; (void)new_addr;
	*out = NULL;
	return ENOSYS;
}

int pc_mseal(void *p, size_t len, unsigned long flags)
{
	(void)p; (void)len; (void)flags;
	return ENOSYS;
}

int pc_mlock2(const void *p, size_t len, unsigned flags)
{
	(void)p; (void)len; (void)flags;
	return ENOSYS;
}

int pc_mlockall(int flags)
{
	(void)flags;
	return ENOSYS;
}

int pc_munlockall(void)
{
	return ENOSYS;
}

int pc_process_madvise_self(const struct pc_iovec *v, size_t n, int advice, size_t *advised)
{
	(void)v; (void)n; (void)advice;
	*advised = 0;
	return ENOSYS;
}

int pc_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5, int *ret)
{
	(void)option; (void)a2; (void)a3; (void)a4; (void)a5;
	*ret = 0;
	return ENOSYS;
}

int pc_sbrk(intptr_t increment, void **old)
{
	(void)increment;
	*old = NULL;
	return ENOSYS;
}

int pc_memfd(const char *name, unsigned flags, int *fd)
{
	(void)name; (void)flags;
	*fd = -1;
	return ENOSYS;
}

int pc_munlock(const void *p, size_t len)
{
	(void)p; (void)len;
	return ENOSYS;
}

int pc_mprotect_raw(void *p, size_t len, int prot)
{
	(void)p; (void)len; (void)prot;
	return ENOSYS;
}

int pc_brk(void *addr)
{
	(void)addr;
	return ENOSYS;
}
