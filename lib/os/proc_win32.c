/* Child processes on Windows: CreateProcess of a program (Windows has no
 * fork), started suspended and put in a job object of its own before it
 * runs, so a kill reaches everything it started and a memory limit applies
 * to it; anonymous pipes for the result and output channels, the child's
 * ends inherited through an explicit handle list. Pipes cannot be waited
 * on: the channels are polled. */
#include "config.h"
#include "pagelab/os.h"
#include "pl_win32.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIPE_BUFFER 65536
#define CMDLINE_MAX 32768
#define POLL_MS 2
/* The exit status of a process the runner killed: no program or exception uses it. */
#define KILLED_STATUS 0xE0DEAD01u

static HANDLE as_handle(intptr_t h)
{
	return (HANDLE)h;
}

static void close_handle(intptr_t *h)
{
	if (*h != -1 && *h != 0)
		(void)CloseHandle(as_handle(*h));
	*h = -1;
}

/* A pipe whose read end stays with the parent and whose write end the child inherits. */
static int make_pipe(intptr_t *rd, intptr_t *wr)
{
	SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
	HANDLE r, w;
	if (!CreatePipe(&r, &w, &sa, PIPE_BUFFER))
		return pl_win_last_errno();
	if (!SetHandleInformation(r, HANDLE_FLAG_INHERIT, 0)) {
		int e = pl_win_last_errno();
		CloseHandle(r);
		CloseHandle(w);
		return e;
	}
	*rd = (intptr_t)r;
	*wr = (intptr_t)w;
	return 0;
}

int pl_child_open(struct pl_child *c)
{
	memset(c, 0, sizeof(*c));
	c->id = c->group = -1;
	c->result_rd = c->output_rd = c->result_wr = c->output_wr = -1;
	int e = make_pipe(&c->result_rd, &c->result_wr);
	if (!e && (e = make_pipe(&c->output_rd, &c->output_wr)) != 0) {
		close_handle(&c->result_rd);
		close_handle(&c->result_wr);
	}
	/* The handle's value is the same in the child that inherits it. */
	snprintf(c->result_arg, sizeof(c->result_arg), "%llu", (unsigned long long)(uintptr_t)c->result_wr);
	return e;
}

/* Append one argument quoted as CommandLineToArgvW and the C runtime read it back. */
static int append_arg(wchar_t *cmd, size_t *n, const wchar_t *a)
{
	bool plain = a[0] && !wcspbrk(a, L" \t\n\v\"");
	size_t need = wcslen(a) * 2 + 4;
	if (*n + need >= CMDLINE_MAX)
		return E2BIG;
	if (*n)
		cmd[(*n)++] = L' ';
	if (plain) {
		wcscpy(cmd + *n, a);
		*n += wcslen(a);
		return 0;
	}
	cmd[(*n)++] = L'"';
	for (const wchar_t *s = a;; s++) {
		size_t slashes = 0;
		while (*s == L'\\') {
			s++;
			slashes++;
		}
		/* Backslashes are literal unless a quote (or the closing quote) follows them. */
		size_t copies = *s == L'"' || *s == 0 ? slashes * 2 : slashes;
		for (size_t i = 0; i < copies; i++)
			cmd[(*n)++] = L'\\';
		if (*s == 0)
			break;
		if (*s == L'"')
			cmd[(*n)++] = L'\\';
		cmd[(*n)++] = *s;
	}
	cmd[(*n)++] = L'"';
	cmd[*n] = 0;
	return 0;
}

static int command_line(char *const argv[], wchar_t *cmd)
{
	static wchar_t arg[CMDLINE_MAX];
	size_t n = 0;
	cmd[0] = 0;
	for (int i = 0; argv[i]; i++) {
		int e = pl_win_widen(argv[i], arg, CMDLINE_MAX);
		if (!e)
			e = append_arg(cmd, &n, arg);
		if (e)
			return e;
	}
	return 0;
}

/* A job that kills its processes when its last handle closes, with a commit limit per process. */
static int make_job(long mem_limit_mib, HANDLE *job)
{
	JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
	memset(&li, 0, sizeof(li));
	li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
	if (mem_limit_mib > 0) {
		li.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY;
		li.ProcessMemoryLimit = (SIZE_T)mem_limit_mib << 20;
	}
	*job = CreateJobObjectW(NULL, NULL);
	if (!*job)
		return pl_win_last_errno();
	if (!SetInformationJobObject(*job, JobObjectExtendedLimitInformation, &li, sizeof(li))) {
		int e = pl_win_last_errno();
		CloseHandle(*job);
		return e;
	}
	return 0;
}

/* The parent no longer needs the child's ends: end of file comes when the child's close. */
static int started(struct pl_child *c)
{
	close_handle(&c->result_wr);
	close_handle(&c->output_wr);
	c->running = true;
	return 0;
}

/* Only the three handles the child needs are inherited, whatever else is inheritable. */
static int handle_list(HANDLE *h, size_t n, LPPROC_THREAD_ATTRIBUTE_LIST *out)
{
	SIZE_T size = 0;
	(void)InitializeProcThreadAttributeList(NULL, 1, 0, &size);
	LPPROC_THREAD_ATTRIBUTE_LIST list = malloc(size);
	if (!list)
		return ENOMEM;
	if (!InitializeProcThreadAttributeList(list, 1, 0, &size)) {
		free(list);
		return pl_win_last_errno();
	}
	if (!UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, h, n * sizeof(*h), NULL, NULL)) {
		int e = pl_win_last_errno();
		DeleteProcThreadAttributeList(list);
		free(list);
		return e;
	}
	*out = list;
	return 0;
}

static int create(struct pl_child *c, const wchar_t *path, wchar_t *cmd, HANDLE nul, PROCESS_INFORMATION *pi)
{
	STARTUPINFOEXW si;
	HANDLE inherit[] = {nul, as_handle(c->output_wr), as_handle(c->result_wr)};
	memset(&si, 0, sizeof(si));
	si.StartupInfo.cb = sizeof(si);
	si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
	si.StartupInfo.hStdInput = nul;
	si.StartupInfo.hStdOutput = si.StartupInfo.hStdError = as_handle(c->output_wr);
	int e = handle_list(inherit, 3, &si.lpAttributeList);
	if (e)
		return e;
	BOOL ok = CreateProcessW(path, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED | CREATE_NO_WINDOW | EXTENDED_STARTUPINFO_PRESENT,
				 NULL, NULL, &si.StartupInfo, pi);
	e = ok ? 0 : pl_win_last_errno();
	DeleteProcThreadAttributeList(si.lpAttributeList);
	free(si.lpAttributeList);
	return e;
}

int pl_child_exec(struct pl_child *c, const char *path, char *const argv[], long mem_limit_mib)
{
	static wchar_t wpath[CMDLINE_MAX], cmd[CMDLINE_MAX];
	SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
	PROCESS_INFORMATION pi;
	HANDLE job, nul;
	/* Inherited by the child: a crash ends it at once, with no error dialog or debugger waiting. */
	SetErrorMode(SetErrorMode(0) | SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
	int e = pl_win_widen(path, wpath, CMDLINE_MAX);
	if (!e)
		e = command_line(argv, cmd);
	if (!e)
		e = make_job(mem_limit_mib, &job);
	if (e)
		return e;
	nul = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING, 0, NULL);
	e = nul == INVALID_HANDLE_VALUE ? pl_win_last_errno() : create(c, wpath, cmd, nul, &pi);
	/* A failure that is not about the program itself may pass (seen once under Wine): one more try. */
	for (int attempt = 0; e && e != ENOENT && e != ENOEXEC && e != EACCES && attempt < 2; attempt++) {
		fprintf(stderr, "pagelab: CreateProcess: %s (%s): trying again\n", pl_win_error_name(GetLastError()), strerror(e));
		Sleep(100);
		e = create(c, wpath, cmd, nul, &pi);
	}
	if (nul != INVALID_HANDLE_VALUE)
		CloseHandle(nul);
	if (e) {
		CloseHandle(job);
		return e;
	}
	/* Into the job before its first instruction: nothing it starts can escape the kill. */
	if (!AssignProcessToJobObject(job, pi.hProcess)) {
		e = pl_win_last_errno();
		TerminateProcess(pi.hProcess, KILLED_STATUS);
		CloseHandle(pi.hThread);
		CloseHandle(pi.hProcess);
		CloseHandle(job);
		return e;
	}
	c->id = (intptr_t)pi.hProcess;
	c->group = (intptr_t)job;
	(void)ResumeThread(pi.hThread);
	CloseHandle(pi.hThread);
	return started(c);
}

int pl_child_fork(struct pl_child *c, void (*fn)(void *arg, intptr_t result), void *arg, long mem_limit_mib)
{
	(void)c; (void)fn; (void)arg; (void)mem_limit_mib;
	return ENOTSUP; /* Windows starts programs, it does not copy processes */
}

/* Bytes waiting in a pipe; -1 at end of file (every write end closed). */
static long long waiting(intptr_t h)
{
	DWORD avail = 0;
	if (h == -1 || !PeekNamedPipe(as_handle(h), NULL, 0, NULL, &avail, NULL))
		return -1;
	return avail;
}

int pl_child_read(struct pl_child *c, bool result_channel, char *buf, size_t size, size_t *got, bool *eof)
{
	intptr_t *h = result_channel ? &c->result_rd : &c->output_rd;
	*got = 0;
	*eof = *h == -1;
	if (*eof)
		return 0;
	long long avail = waiting(*h);
	DWORD n = 0;
	if (avail == 0)
		return 0;
	if (avail > 0 && ReadFile(as_handle(*h), buf, (DWORD)((size_t)avail < size ? (size_t)avail : size), &n, NULL)) {
		*got = n;
		return 0;
	}
	int e = GetLastError() == ERROR_BROKEN_PIPE || avail < 0 ? 0 : pl_win_last_errno();
	close_handle(h);
	*eof = true;
	return e;
}

void pl_children_wait(struct pl_child *const *cs, size_t n, int timeout_ms)
{
	for (int waited = 0;; waited += POLL_MS) {
		for (size_t i = 0; i < n; i++)
			if (waiting(cs[i]->result_rd) != 0 || waiting(cs[i]->output_rd) != 0)
				return;
		if (waited >= timeout_ms)
			return;
		Sleep(POLL_MS);
	}
}

static const char *exception_name(DWORD code)
{
	switch (code) {
	case EXCEPTION_ACCESS_VIOLATION: return "access violation";
	case EXCEPTION_IN_PAGE_ERROR: return "in-page error";
	case EXCEPTION_STACK_OVERFLOW: return "stack overflow";
	case EXCEPTION_ILLEGAL_INSTRUCTION: return "illegal instruction";
	case EXCEPTION_INT_DIVIDE_BY_ZERO: return "integer division by zero";
	case 0xC0000409: return "fast fail";
	case 0xC0000017: return "no memory";
	default: return "exception";
	}
}

static void describe_exit(DWORD code, struct pl_exit *x)
{
	x->code = (int)code;
	if (code == KILLED_STATUS) {
		x->how = PL_KILLED;
		snprintf(x->desc, sizeof(x->desc), "TerminateJobObject");
	} else if (code >= 0xC0000000u) { /* an NTSTATUS error: the process died of an exception */
		x->how = PL_CRASHED;
		snprintf(x->desc, sizeof(x->desc), "exception 0x%08lX (%s)", (unsigned long)code, exception_name(code));
	} else {
		x->how = PL_EXITED;
		snprintf(x->desc, sizeof(x->desc), "status %lu", (unsigned long)code);
	}
}

bool pl_child_ended(struct pl_child *c, struct pl_exit *x)
{
	DWORD code;
	if (!c->running)
		return true;
	if (WaitForSingleObject(as_handle(c->id), 0) != WAIT_OBJECT_0 || !GetExitCodeProcess(as_handle(c->id), &code))
		return false;
	describe_exit(code, x);
	c->running = false;
	return true;
}

void pl_child_kill(struct pl_child *c, struct pl_exit *x)
{
	DWORD code;
	if (c->group != -1 && !TerminateJobObject(as_handle(c->group), KILLED_STATUS))
		fprintf(stderr, "pagelab: TerminateJobObject: error %lu\n", (unsigned long)GetLastError());
	if (!c->running)
		return;
	if (c->group == -1)
		(void)TerminateProcess(as_handle(c->id), KILLED_STATUS);
	if (WaitForSingleObject(as_handle(c->id), INFINITE) == WAIT_OBJECT_0 && GetExitCodeProcess(as_handle(c->id), &code))
		describe_exit(code, x);
	c->running = false;
}

void pl_child_close(struct pl_child *c)
{
	close_handle(&c->result_rd);
	close_handle(&c->output_rd);
	close_handle(&c->result_wr);
	close_handle(&c->output_wr);
	close_handle(&c->group); /* the job: kills whatever is left in it */
	close_handle(&c->id);
}

int pl_result_channel(const char *arg, intptr_t *channel)
{
	char *end;
	DWORD flags;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (errno || *end || end == arg || v == 0)
		return EINVAL;
	if (!GetHandleInformation((HANDLE)(uintptr_t)v, &flags))
		return EBADF;
	*channel = (intptr_t)(uintptr_t)v;
	return 0;
}

int pl_channel_write(intptr_t channel, const char *buf, size_t len)
{
	while (len > 0) {
		DWORD n = 0;
		if (!WriteFile(as_handle(channel), buf, (DWORD)(len < 0x10000000 ? len : 0x10000000), &n, NULL))
			return pl_win_last_errno();
		if (n == 0)
			return EIO;
		buf += n;
		len -= n;
	}
	return 0;
}

long pl_pid(void)
{
	return (long)GetCurrentProcessId();
}

double pl_now(void)
{
	static LARGE_INTEGER freq;
	LARGE_INTEGER t;
	if (!freq.QuadPart && !QueryPerformanceFrequency(&freq))
		return 0;
	QueryPerformanceCounter(&t);
	return (double)t.QuadPart / (double)freq.QuadPart;
}

static void (*stop_fn)(int sig);

/* Console events arrive on a thread of their own: only the runner's flag is set there. */
static BOOL WINAPI on_console_event(DWORD type)
{
	stop_fn(type == CTRL_C_EVENT ? SIGINT : SIGTERM);
	return TRUE;
}

int pl_on_stop(void (*fn)(int sig))
{
	stop_fn = fn;
	return SetConsoleCtrlHandler(on_console_event, TRUE) ? 0 : pl_win_last_errno();
}

/* A job of its own with a commit limit (jobs nest since Windows 8), checked
 * by committing more than the limit: ENOTSUP where that still succeeds. */
int pl_limit_memory(long mib)
{
	HANDLE job;
	if (mib <= 0)
		return 0;
	int e = make_job(mib, &job);
	if (e)
		return e;
	if (!AssignProcessToJobObject(job, GetCurrentProcess())) {
		e = pl_win_last_errno();
		CloseHandle(job);
		return e;
	}
	/* The job handle stays open for the life of the process: closing it would kill us. */
	void *over = VirtualAlloc(NULL, ((SIZE_T)mib << 20) + (1 << 20), MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	if (!over)
		return 0;
	VirtualFree(over, 0, MEM_RELEASE);
	return ENOTSUP;
}
