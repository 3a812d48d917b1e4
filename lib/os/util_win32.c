/* Windows error codes as errno values, text encodings, and exports looked up
 * at run time (functions newer than the oldest Windows the suite runs on). */
#include "config.h"
#include "pl_win32.h"

#include <errno.h>
#include <stdio.h>

int pl_win_errno(DWORD err)
{
	switch (err) {
	case ERROR_SUCCESS: return 0;
	case ERROR_INVALID_PARAMETER: case ERROR_INVALID_FLAGS: case ERROR_INVALID_HANDLE: return EINVAL;
	/* What POSIX calls answer for a range with unmapped pages. */
	case ERROR_INVALID_ADDRESS: return ENOMEM;
	case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: case ERROR_COMMITMENT_LIMIT: return ENOMEM;
	case ERROR_ACCESS_DENIED: case ERROR_PRIVILEGE_NOT_HELD: return EACCES;
	case ERROR_NOT_SUPPORTED: return ENOTSUP;
	case ERROR_CALL_NOT_IMPLEMENTED: case ERROR_PROC_NOT_FOUND: return ENOSYS;
	case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: return ENOENT;
	case ERROR_BAD_EXE_FORMAT: case ERROR_EXE_MACHINE_TYPE_MISMATCH: return ENOEXEC;
	case ERROR_NOT_ENOUGH_QUOTA: case ERROR_NO_SYSTEM_RESOURCES: return ENOMEM;
	case ERROR_SEM_TIMEOUT: case WAIT_TIMEOUT: return ETIMEDOUT;
	case ERROR_ALREADY_EXISTS: case ERROR_FILE_EXISTS: return EEXIST;
	case ERROR_DIR_NOT_EMPTY: return ENOTEMPTY;
	case ERROR_BROKEN_PIPE: case ERROR_NO_DATA: return EPIPE;
	case ERROR_WORKING_SET_QUOTA: case ERROR_BUSY: return EAGAIN;
	case ERROR_FILENAME_EXCED_RANGE: case ERROR_INSUFFICIENT_BUFFER: return ENAMETOOLONG;
	case ERROR_DISK_FULL: case ERROR_HANDLE_DISK_FULL: return ENOSPC;
	case ERROR_SHARING_VIOLATION: case ERROR_LOCK_VIOLATION: return EBUSY;
	default: return EIO;
	}
}

const char *pl_win_error_name(DWORD err)
{
#define NAME(x) case x: return #x
	switch (err) {
	NAME(ERROR_SUCCESS); NAME(ERROR_INVALID_PARAMETER); NAME(ERROR_INVALID_ADDRESS); NAME(ERROR_NOT_ENOUGH_MEMORY);
	NAME(ERROR_OUTOFMEMORY); NAME(ERROR_COMMITMENT_LIMIT); NAME(ERROR_ACCESS_DENIED); NAME(ERROR_NOT_SUPPORTED);
	NAME(ERROR_CALL_NOT_IMPLEMENTED); NAME(ERROR_NOT_LOCKED); NAME(ERROR_BUSY); NAME(ERROR_WORKING_SET_QUOTA);
	NAME(ERROR_INVALID_HANDLE); NAME(ERROR_PRIVILEGE_NOT_HELD); NAME(ERROR_INVALID_FLAGS);
	NAME(ERROR_FILE_NOT_FOUND); NAME(ERROR_PATH_NOT_FOUND); NAME(ERROR_BAD_EXE_FORMAT); NAME(ERROR_NOT_ENOUGH_QUOTA);
	NAME(ERROR_NO_SYSTEM_RESOURCES); NAME(ERROR_BROKEN_PIPE);
	default: {
		static __thread char buf[24];
		snprintf(buf, sizeof(buf), "error %lu", (unsigned long)err);
		return buf;
	}
	}
#undef NAME
}

int pl_win_last_errno(void)
{
	int e = pl_win_errno(GetLastError());
	return e ? e : EIO; /* called after a failure: never report success */
}

int pl_win_widen(const char *s, wchar_t *out, size_t size)
{
	if (size > INT_MAX || MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, out, (int)size) == 0)
		return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? ENAMETOOLONG : EILSEQ;
	return 0;
}

int pl_win_narrow(const wchar_t *s, char *out, size_t size)
{
	if (size > INT_MAX || WideCharToMultiByte(CP_UTF8, 0, s, -1, out, (int)size, NULL, NULL) == 0)
		return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? ENAMETOOLONG : EILSEQ;
	return 0;
}

FARPROC pl_win_export(const char *name)
{
	static const char *const dlls[] = {"kernelbase.dll", "kernel32.dll"};
	for (size_t i = 0; i < sizeof(dlls) / sizeof(dlls[0]); i++) {
		HMODULE m = GetModuleHandleA(dlls[i]); /* both are loaded into every process: no LoadLibrary */
		FARPROC f = m ? GetProcAddress(m, name) : NULL;
		if (f)
			return f;
	}
	return NULL;
}
