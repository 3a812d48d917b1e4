/* What the Windows files of the OS layer and the page layer share (not a
 * public header): Windows error codes as errno values, and UTF-8 <-> UTF-16
 * for paths and command lines. */
#ifndef PAGELAB_WIN32_H
#define PAGELAB_WIN32_H

#include <stddef.h>
#include <windows.h>

/* The errno value closest to a Windows error code (GetLastError, or a DWORD an API returned). */
int pl_win_errno(DWORD err);
/* GetLastError() as an errno value. */
int pl_win_last_errno(void);
/* UTF-8 to UTF-16 into out (size in wide characters); 0 or errno. */
int pl_win_widen(const char *s, wchar_t *out, size_t size);
/* UTF-16 to UTF-8 into out (size in bytes); 0 or errno. */
int pl_win_narrow(const wchar_t *s, char *out, size_t size);
/* An export of kernelbase.dll or kernel32.dll (where newer Windows moved it first), or NULL. */
FARPROC pl_win_export(const char *name);

#endif
