/* The self-test probes on Windows: a hang in Sleep, and a child process that
 * outlives its probe, holding the output channel (the job object's kill must
 * reach it, and the runner must not wait for the channel to close). The
 * child is this program started with SLEEPER_FLAG: a constructor sleeps
 * before main. */
#include "pagelab/check.h"

#include <stdio.h>
#include <wchar.h>
#include <windows.h>

#define SLEEPER_FLAG L" --selftest-sleeper"

__attribute__((constructor)) static void sleep_if_asked(void)
{
	const wchar_t *cmd = GetCommandLineW();
	size_t n = wcslen(cmd), k = wcslen(SLEEPER_FLAG);
	if (n >= k && wcscmp(cmd + n - k, SLEEPER_FLAG) == 0)
		Sleep(INFINITE);
}

PC_PROBE(st_hang, "selftest.hang", "never reports an outcome")
{
	for (;;)
		Sleep(INFINITE);
}

PC_PROBE(st_child, "selftest.leave_child", "starts a child that outlives the probe")
{
	wchar_t self[MAX_PATH], cmd[MAX_PATH + 64];
	STARTUPINFOW si = {.cb = sizeof(si)};
	PROCESS_INFORMATION pi;
	DWORD n = GetModuleFileNameW(NULL, self, MAX_PATH);
	if (n == 0 || n >= MAX_PATH)
		pc_error(ctx, "GetModuleFileName failed");
	swprintf(cmd, MAX_PATH + 64, L"\"%ls\"%ls", self, SLEEPER_FLAG);
	/* Inherits the probe's standard output, which is the runner's output channel. */
	if (!CreateProcessW(self, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
		pc_error(ctx, "CreateProcess failed: error %lu", (unsigned long)GetLastError());
	pc_observe(ctx, "child_pid", "%lu", (unsigned long)pi.dwProcessId);
	pc_pass(ctx);
}
