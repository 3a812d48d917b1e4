/* Files on Windows: UTF-8 paths widened for the wide-character calls,
 * private temporary directories under GetTempPath, removal that never
 * follows a reparse point, and replacement by MoveFileEx. */
#include "config.h"
#include "pagelab/os.h"
#include "pl_win32.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#define PATH_MAX_W 4096

/* Every system writes the same bytes: result files and TAP in binary mode, never \r\n. */
__attribute__((constructor)) static void binary_stdio(void)
{
	(void)_setmode(_fileno(stdout), _O_BINARY);
	(void)_setmode(_fileno(stderr), _O_BINARY);
	_fmode = _O_BINARY;
}

int pl_read_file(const char *path, char *buf, size_t size)
{
	wchar_t w[PATH_MAX_W];
	int e = pl_win_widen(path, w, PATH_MAX_W);
	if (e)
		return e;
	HANDLE h = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
	if (h == INVALID_HANDLE_VALUE)
		return pl_win_last_errno();
	size_t n = 0;
	DWORD got = 1;
	while (n < size - 1 && got > 0) {
		if (!ReadFile(h, buf + n, (DWORD)(size - 1 - n), &got, NULL)) {
			e = pl_win_last_errno();
			break;
		}
		n += got;
	}
	CloseHandle(h);
	if (e)
		return e;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

int pl_make_tmpdir(const char *prefix, char *out, size_t size)
{
	wchar_t base[MAX_PATH + 1], dir[PATH_MAX_W];
	DWORD n = GetTempPathW(MAX_PATH + 1, base);
	if (n == 0 || n > MAX_PATH)
		return n ? ENAMETOOLONG : pl_win_last_errno();
	static unsigned counter;
	for (int attempt = 0; attempt < 100; attempt++) {
		swprintf(dir, PATH_MAX_W, L"%ls%hs.%lu.%lu.%u", base, prefix, (unsigned long)GetCurrentProcessId(),
			 (unsigned long)GetTickCount(), counter++);
		if (CreateDirectoryW(dir, NULL))
			return pl_win_narrow(dir, out, size);
		if (GetLastError() != ERROR_ALREADY_EXISTS)
			return pl_win_last_errno();
	}
	return EEXIST;
}

static int remove_wide(const wchar_t *path);

/* Everything inside a directory (not the directory itself). */
static int remove_contents(const wchar_t *dir)
{
	wchar_t pattern[PATH_MAX_W], child[PATH_MAX_W];
	WIN32_FIND_DATAW fd;
	swprintf(pattern, PATH_MAX_W, L"%ls\\*", dir);
	HANDLE f = FindFirstFileW(pattern, &fd);
	if (f == INVALID_HANDLE_VALUE)
		return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : pl_win_last_errno();
	int first_error = 0;
	do {
		if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L".."))
			continue;
		swprintf(child, PATH_MAX_W, L"%ls\\%ls", dir, fd.cFileName);
		int e = remove_wide(child);
		first_error = first_error ? first_error : e;
	} while (FindNextFileW(f, &fd));
	FindClose(f);
	return first_error;
}

static int remove_wide(const wchar_t *path)
{
	DWORD a = GetFileAttributesW(path);
	if (a == INVALID_FILE_ATTRIBUTES)
		return pl_win_last_errno();
	if (a & FILE_ATTRIBUTE_READONLY)
		(void)SetFileAttributesW(path, a & ~FILE_ATTRIBUTE_READONLY);
	int e = 0;
	/* A reparse point (junction, symbolic link) is removed itself, never entered. */
	if ((a & FILE_ATTRIBUTE_DIRECTORY) && !(a & FILE_ATTRIBUTE_REPARSE_POINT))
		e = remove_contents(path);
	BOOL ok = (a & FILE_ATTRIBUTE_DIRECTORY) ? RemoveDirectoryW(path) : DeleteFileW(path);
	return e ? e : ok ? 0 : pl_win_last_errno();
}

int pl_remove_tree(const char *path)
{
	wchar_t w[PATH_MAX_W];
	int e = pl_win_widen(path, w, PATH_MAX_W);
	return e ? e : remove_wide(w);
}

int pl_replace_file(const char *from, const char *to)
{
	wchar_t a[PATH_MAX_W], b[PATH_MAX_W];
	int e = pl_win_widen(from, a, PATH_MAX_W);
	if (!e)
		e = pl_win_widen(to, b, PATH_MAX_W);
	if (e)
		return e;
	return MoveFileExW(a, b, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) ? 0 : pl_win_last_errno();
}

int pl_sync_file(void *stdio_file)
{
	HANDLE h = (HANDLE)_get_osfhandle(_fileno((FILE *)stdio_file));
	if (h == INVALID_HANDLE_VALUE)
		return EBADF;
	/* Pipes and consoles cannot be flushed to storage: that is not a failure to write. */
	if (!FlushFileBuffers(h) && GetLastError() != ERROR_INVALID_HANDLE && GetLastError() != ERROR_INVALID_FUNCTION)
		return pl_win_last_errno();
	return 0;
}
