/* This program's path and the world it runs in, on Windows: the version
 * Windows reports (RtlGetVersion, which no compatibility shim rewrites),
 * Wine and the system under it when it is Wine, a debugger, and the modules
 * loaded into the process (an instrumentation tool injects its own). */
#include "config.h"
#include "pagelab/os.h"
#include "pl_win32.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_MODULES 256

int pl_self_path(const char *argv0, char *out, size_t size)
{
	wchar_t w[32768];
	(void)argv0;
	DWORD n = GetModuleFileNameW(NULL, w, sizeof(w) / sizeof(w[0]));
	if (n == 0 || n >= sizeof(w) / sizeof(w[0]))
		return n ? ENAMETOOLONG : pl_win_last_errno();
	return pl_win_narrow(w, out, size);
}

/* Base names of the loaded modules, in load order. */
static void module_names(char *out, size_t size)
{
	BOOL(WINAPI *enum_modules)(HANDLE, HMODULE *, DWORD, LPDWORD) =
		(BOOL(WINAPI *)(HANDLE, HMODULE *, DWORD, LPDWORD))(void *)pl_win_export("K32EnumProcessModules");
	HMODULE mods[MAX_MODULES];
	DWORD bytes = 0;
	size_t len = 0;
	out[0] = 0;
	if (!enum_modules || !enum_modules(GetCurrentProcess(), mods, sizeof(mods), &bytes))
		return;
	for (DWORD i = 0; i < bytes / sizeof(HMODULE) && i < MAX_MODULES; i++) {
		wchar_t path[MAX_PATH];
		char name[MAX_PATH * 3];
		if (!GetModuleFileNameW(mods[i], path, MAX_PATH) || pl_win_narrow(path, name, sizeof(name)) != 0)
			continue;
		const char *base = strrchr(name, '\\') ? strrchr(name, '\\') + 1 : name;
		int n = snprintf(out + len, size - len, "%s%s", len ? " " : "", base);
		if (n < 0 || (size_t)n >= size - len)
			return;
		len += (size_t)n;
	}
}

int pl_world(char *out, size_t size)
{
	OSVERSIONINFOW v = {.dwOSVersionInfoSize = sizeof(v)};
	LONG(WINAPI *get_version)(OSVERSIONINFOW *) =
		(LONG(WINAPI *)(OSVERSIONINFOW *))(void *)GetProcAddress(GetModuleHandleA("ntdll.dll"), "RtlGetVersion");
	const char *(*wine_version)(void) =
		(const char *(*)(void))(void *)GetProcAddress(GetModuleHandleA("ntdll.dll"), "wine_get_version");
	if (!get_version || get_version(&v) != 0)
		return ENOSYS;
	char modules[768];
	module_names(modules, sizeof(modules));
	int n = snprintf(out, size, "Windows %lu.%lu.%lu; wine %s; debugger %s; modules %s", v.dwMajorVersion,
			 v.dwMinorVersion, v.dwBuildNumber, wine_version ? wine_version() : "no",
			 IsDebuggerPresent() ? "yes" : "no", modules);
	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}
