/* What the Windows files of the OS layer, the page layer and the Windows
 * probes share: Windows error codes as errno values, UTF-8 <-> UTF-16 for
 * paths and command lines, and exports looked up at run time
 * (lib/os/util_win32.c). On the include path of Windows builds only. */
#ifndef PAGELAB_PL_WIN32_H
#define PAGELAB_PL_WIN32_H

#include <stddef.h>
#include <windows.h>

/* The errno value closest to a Windows error code (GetLastError, or a DWORD an API returned). */
int pl_win_errno(DWORD err);
/* "ERROR_INVALID_PARAMETER": the name of a Windows error code ("error 1234" for others). */
const char *pl_win_error_name(DWORD err);
/* GetLastError() as an errno value. */
int pl_win_last_errno(void);
/* UTF-8 to UTF-16 into out (size in wide characters); 0 or errno. */
int pl_win_widen(const char *s, wchar_t *out, size_t size);
/* UTF-16 to UTF-8 into out (size in bytes); 0 or errno. */
int pl_win_narrow(const wchar_t *s, char *out, size_t size);
/* An export of kernelbase.dll or kernel32.dll (where newer Windows moved it first), or NULL. */
FARPROC pl_win_export(const char *name);

#endif
