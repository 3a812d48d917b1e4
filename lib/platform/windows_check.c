/* Start-up checks of the Windows page layer: every call it would trust is
 * exercised in a copy of this program, started with CHECK_FLAG on its
 * command line. A constructor sees the flag, runs the checks, writes
 * "begin NAME" and then "NAME OUTCOME DETAIL" for each on standard output,
 * and exits before main. A check that began and never reported crashed the
 * copy (an export that faults inside, as unimplemented stubs may): its
 * export is reported and never used. The results go into this process's
 * environment, so copies of the program that it starts (probe processes)
 * take them from there instead of checking again. */
#include "windows_internal.h"
#include "pagelab/os.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define CHECK_FLAG "--pagelab-page-layer-check"
#define CHECK_FLAG_W L"--pagelab-page-layer-check"
#define RESULTS_VAR "PAGELAB_PAGE_LAYER_CHECKS"
#define COPY_DEADLINE_S 60
#define PAGES 4
#define FILL 0xa5
#define OUT_MAX 4096

static const char *const check_names[PL_WCHK_COUNT] = {
	[PL_WCHK_MEM_RESET] = "mem_reset", [PL_WCHK_DECOMMIT] = "decommit", [PL_WCHK_OFFER] = "offer",
	[PL_WCHK_RESET_UNDO] = "reset_undo", [PL_WCHK_ALIGNED_RESERVE] = "aligned_reserve",
	[PL_WCHK_PREFETCH] = "prefetch", [PL_WCHK_WORKING_SET] = "working_set",
};
static const char *const outcome_names[] = {"not_run", "missing", "works", "not_honoured", "refused", "crashed"};

/* ---- in the checking copy ---- */

static void say(const char *fmt, ...) __attribute__((format(gnu_printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	DWORD done;
	if (n > 0)
		(void)WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), line, (DWORD)((size_t)n < sizeof(line) ? n : (int)sizeof(line) - 1), &done, NULL);
}

static void report(enum pl_win_check c, enum pl_win_outcome o, const char *detail)
{
	say("%s %s %s\n", check_names[c], outcome_names[o], detail);
}

enum pl_verdict pl_os_check_faults(void *p, size_t len, pl_range_op op, pl_range_op undo)
{
	/* Called only inside the checking copy, where the OS layer catches the fault. */
	struct pl_fault f;
	if (op(p, len) != 0 || pl_try_access(p, false, 0, &f) != 0)
		return PL_NOT_CHECKED;
	if (f.kind == PL_FAULT_NONE)
		return PL_NOT_HONOURED;
	if (!undo)
		return PL_HONOURED;
	if (undo(p, len) != 0)
		return PL_NOT_CHECKED;
	for (size_t off = 0; off < len; off += pl_page_size())
		if (pl_try_access((char *)p + off, false, 0, &f) != 0 || f.kind != PL_FAULT_NONE)
			return PL_NOT_HONOURED;
	for (size_t i = 0; i < len; i++)
		if (((volatile unsigned char *)p)[i] != 0)
			return PL_NOT_HONOURED;
	return PL_HONOURED;
}

static void report_verdict(enum pl_win_check c, enum pl_verdict v, const char *call)
{
	if (v == PL_HONOURED)
		report(c, PL_WOUT_WORKS, call);
	else if (v == PL_NOT_HONOURED)
		report(c, PL_WOUT_NOT_HONOURED, call);
	else
		report(c, PL_WOUT_REFUSED, call);
}

static void check_offer(void)
{
	const struct pl_win_exports *x = pl_win_exports();
	size_t ps = pl_page_size(), len = PAGES * ps;
	unsigned char *p;
	if (!x->offer || !x->reclaim) {
		report(PL_WCHK_OFFER, PL_WOUT_MISSING, "OfferVirtualMemory or ReclaimVirtualMemory is not exported");
		return;
	}
	if (pl_map_anon(len, (void **)&p) != 0) {
		report(PL_WCHK_OFFER, PL_WOUT_NOT_RUN, "cannot map memory");
		return;
	}
	memset(p, FILL, len);
	int e = pl_win_offer(p, len), r = e ? e : pl_win_reclaim(p, len);
	bool intact = true, old_or_zero = true;
	for (size_t i = 0; i < len; i++) {
		intact = intact && p[i] == FILL;
		old_or_zero = old_or_zero && (p[i] == FILL || p[i] == 0);
	}
	if (e || (r && r != EAGAIN))
		report(PL_WCHK_OFFER, PL_WOUT_REFUSED, e ? "OfferVirtualMemory failed" : "ReclaimVirtualMemory failed");
	else if (r == 0 && !intact)
		report(PL_WCHK_OFFER, PL_WOUT_NOT_HONOURED, "ReclaimVirtualMemory returned ERROR_SUCCESS and the pages changed");
	else if (!old_or_zero)
		report(PL_WCHK_OFFER, PL_WOUT_NOT_HONOURED, "after ERROR_BUSY a page read neither its old bytes nor zero");
	else
		report(PL_WCHK_OFFER, PL_WOUT_WORKS, r ? "reclaimed: ERROR_BUSY (discarded)" : "reclaimed intact");
	(void)pl_unmap(p, len);
}

static void check_reset_undo(void)
{
	size_t len = PAGES * pl_page_size();
	void *p;
	if (pl_map_anon(len, &p) != 0) {
		report(PL_WCHK_RESET_UNDO, PL_WOUT_NOT_RUN, "cannot map memory");
		return;
	}
	memset(p, FILL, len);
	bool ok = pl_win_mem_reset(p, len) == 0 && VirtualAlloc(p, len, MEM_RESET_UNDO, PAGE_NOACCESS) == p;
	report(PL_WCHK_RESET_UNDO, ok ? PL_WOUT_WORKS : PL_WOUT_REFUSED, ok ? "accepted" : "refused");
	(void)pl_unmap(p, len);
}

static void check_aligned_reserve(void)
{
	size_t align = (size_t)4 << 20, len = (size_t)1 << 20;
	void *p;
	MEMORY_BASIC_INFORMATION mbi;
	if (!pl_win_exports()->virtual_alloc2) {
		report(PL_WCHK_ALIGNED_RESERVE, PL_WOUT_MISSING, "VirtualAlloc2 is not exported (Windows 10 1803)");
		return;
	}
	int e = pl_win_aligned_reserve2(len, align, &p);
	if (e) {
		report(PL_WCHK_ALIGNED_RESERVE, PL_WOUT_REFUSED, "VirtualAlloc2(MEM_ADDRESS_REQUIREMENTS, 4 MiB) failed");
		return;
	}
	bool reserved = VirtualQuery(p, &mbi, sizeof(mbi)) == sizeof(mbi) && mbi.State == MEM_RESERVE;
	if ((uintptr_t)p % align || !reserved)
		report(PL_WCHK_ALIGNED_RESERVE, PL_WOUT_NOT_HONOURED,
		       "VirtualAlloc2(MEM_ADDRESS_REQUIREMENTS, 4 MiB) returned a reservation not aligned to 4 MiB");
	else
		report(PL_WCHK_ALIGNED_RESERVE, PL_WOUT_WORKS, "aligned to 4 MiB");
	(void)VirtualFree(p, 0, MEM_RELEASE);
}

static void check_prefetch(void)
{
	size_t len = PAGES * pl_page_size();
	void *p;
	pl_prefetch_fn prefetch = pl_win_exports()->prefetch;
	if (!prefetch) {
		report(PL_WCHK_PREFETCH, PL_WOUT_MISSING, "PrefetchVirtualMemory is not exported (Windows 8)");
		return;
	}
	if (pl_map_anon(len, &p) != 0) {
		report(PL_WCHK_PREFETCH, PL_WOUT_NOT_RUN, "cannot map memory");
		return;
	}
	memset(p, FILL, len);
	WIN32_MEMORY_RANGE_ENTRY r = {p, len};
	bool ok = prefetch(GetCurrentProcess(), 1, &r, 0);
	report(PL_WCHK_PREFETCH, ok ? PL_WOUT_WORKS : PL_WOUT_REFUSED, ok ? "accepted" : "refused");
	(void)pl_unmap(p, len);
}

static void check_working_set(void)
{
	size_t ps = pl_page_size();
	unsigned char vec[2] = {0, 1};
	char *p;
	if (!pl_win_exports()->query_working_set_ex) {
		report(PL_WCHK_WORKING_SET, PL_WOUT_MISSING, "K32QueryWorkingSetEx is not exported");
		return;
	}
	if (pl_map_anon(2 * ps, (void **)&p) != 0) {
		report(PL_WCHK_WORKING_SET, PL_WOUT_NOT_RUN, "cannot map memory");
		return;
	}
	p[0] = 1;
	if (pl_residency(p, 2 * ps, vec) != 0)
		report(PL_WCHK_WORKING_SET, PL_WOUT_REFUSED, "QueryWorkingSetEx failed");
	else if (vec[0] != 1 || vec[1] != 0)
		report(PL_WCHK_WORKING_SET, PL_WOUT_NOT_HONOURED, "a written page is not valid, or an untouched one is");
	else
		report(PL_WCHK_WORKING_SET, PL_WOUT_WORKS, "a written page is valid, an untouched one is not");
	(void)pl_unmap(p, 2 * ps);
}

static void run_check(enum pl_win_check c)
{
	say("begin %s\n", check_names[c]);
	switch (c) {
	case PL_WCHK_MEM_RESET:
		report_verdict(c, pl_check_old_or_zero(pl_win_mem_reset), "VirtualAlloc(MEM_RESET): pages read old or zero");
		break;
	case PL_WCHK_DECOMMIT:
		report_verdict(c, pl_check_faults(pl_decommit, pl_commit),
			       "VirtualFree(MEM_DECOMMIT) then VirtualAlloc(MEM_COMMIT): faults, then reads zero");
		break;
	case PL_WCHK_OFFER: check_offer(); break;
	case PL_WCHK_RESET_UNDO: check_reset_undo(); break;
	case PL_WCHK_ALIGNED_RESERVE: check_aligned_reserve(); break;
	case PL_WCHK_PREFETCH: check_prefetch(); break;
	case PL_WCHK_WORKING_SET: check_working_set(); break;
	default: break;
	}
}

/* True when this process is the checking copy: CHECK_FLAG is its last argument. */
static bool asked_to_check(void)
{
	const wchar_t *cmd = GetCommandLineW(), *flag = L" " CHECK_FLAG_W;
	size_t n = wcslen(cmd), k = wcslen(flag);
	while (n > 0 && cmd[n - 1] == L' ')
		n--;
	return n >= k && wcsncmp(cmd + n - k, flag, k) == 0;
}

__attribute__((constructor)) static void check_if_asked(void)
{
	if (!asked_to_check())
		return;
	for (int c = 0; c < PL_WCHK_COUNT; c++)
		run_check((enum pl_win_check)c);
	ExitProcess(0);
}

/* ---- in the process that fills its capabilities ---- */

/* What identifies this program: its path, size and time, so only copies of it take the results. */
static int program_key(char *out, size_t size)
{
	wchar_t path[MAX_PATH * 2];
	WIN32_FILE_ATTRIBUTE_DATA a;
	DWORD n = GetModuleFileNameW(NULL, path, MAX_PATH * 2);
	if (n == 0 || n >= MAX_PATH * 2 || !GetFileAttributesExW(path, GetFileExInfoStandard, &a))
		return pl_win_last_errno();
	char narrow[MAX_PATH * 6];
	int e = pl_win_narrow(path, narrow, sizeof(narrow));
	if (e)
		return e;
	snprintf(out, size, "%s|%lu|%lu|%lu", narrow, (unsigned long)a.nFileSizeLow,
		 (unsigned long)a.ftLastWriteTime.dwLowDateTime, (unsigned long)a.ftLastWriteTime.dwHighDateTime);
	return 0;
}

/* Start the checking copy and collect what it says; *how says how it ended. */
static int run_copy(const char *self, char *out, size_t size, struct pl_exit *how)
{
	struct pl_child c;
	char *argv[] = {(char *)self, CHECK_FLAG, NULL};
	size_t len = 0;
	int e = pl_child_open(&c);
	if (!e && (e = pl_child_exec(&c, self, argv, 0)) != 0)
		pl_child_close(&c);
	if (e)
		return e;
	struct pl_child *cs[1] = {&c};
	double deadline = pl_now() + COPY_DEADLINE_S;
	bool eof = false, ended = false;
	while (!(eof && ended) && pl_now() < deadline) {
		size_t got = 0;
		pl_children_wait(cs, 1, 100);
		if (pl_child_read(&c, false, out + len, size - 1 - len, &got, &eof) != 0)
			eof = true;
		len += got;
		ended = ended || pl_child_ended(&c, how);
	}
	out[len] = 0;
	pl_child_kill(&c, how);
	pl_child_close(&c);
	return 0;
}

/* The line of text that starts with prefix, up to its newline, into out ("" when none). */
static void line_after(const char *text, const char *prefix, char *out, size_t size)
{
	size_t n = strlen(prefix);
	out[0] = 0;
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, prefix, n) == 0) {
			snprintf(out, size, "%.*s", (int)strcspn(l + n, "\n"), l + n);
			return;
		}
}

/* "NAME OUTCOME DETAIL" lines into results; a check that began and never reported crashed the
 * copy, which ended as the "ended" line says. */
static void parse(const char *text, struct pl_win_check_result out[PL_WCHK_COUNT])
{
	char ended[128], prefix[64], line[200];
	line_after(text, "ended ", ended, sizeof(ended));
	for (int c = 0; c < PL_WCHK_COUNT; c++) {
		for (int o = 0; o < (int)(sizeof(outcome_names) / sizeof(outcome_names[0])); o++) {
			snprintf(prefix, sizeof(prefix), "%s %s ", check_names[c], outcome_names[o]);
			line_after(text, prefix, line, sizeof(line));
			if (line[0]) {
				out[c].outcome = (enum pl_win_outcome)o;
				snprintf(out[c].detail, sizeof(out[c].detail), "%s", line);
			}
		}
		snprintf(prefix, sizeof(prefix), "begin %s", check_names[c]);
		if (out[c].outcome == PL_WOUT_NOT_RUN && strstr(text, prefix)) {
			out[c].outcome = PL_WOUT_CRASHED;
			snprintf(out[c].detail, sizeof(out[c].detail), "crashed the checking copy of this program (%s)",
				 ended[0] ? ended : "how it ended is unknown");
		}
	}
}

static void not_run(struct pl_win_check_result out[PL_WCHK_COUNT], const char *why)
{
	for (int c = 0; c < PL_WCHK_COUNT; c++)
		if (out[c].outcome == PL_WOUT_NOT_RUN)
			snprintf(out[c].detail, sizeof(out[c].detail), "%s", why);
}

void pl_win_checks(struct pl_win_check_result out[PL_WCHK_COUNT])
{
	static char buf[OUT_MAX + 1024];
	char key[1024], self[MAX_PATH * 6];
	struct pl_exit how = {PL_EXITED, 0, "not started"};
	memset(out, 0, sizeof(*out) * PL_WCHK_COUNT);
	if (program_key(key, sizeof(key)) != 0) {
		not_run(out, "this program's path is unknown: no copy of it can run the checks");
		return;
	}
	DWORD n = GetEnvironmentVariableA(RESULTS_VAR, buf, sizeof(buf));
	size_t klen = strlen(key);
	char *text = buf + klen + 1;
	/* A copy of this program that started this process checked already: its results stand. */
	if (n <= klen || n >= sizeof(buf) || strncmp(buf, key, klen) != 0 || buf[klen] != '\n') {
		snprintf(self, sizeof(self), "%.*s", (int)strcspn(key, "|"), key);
		int e = run_copy(self, text, OUT_MAX, &how);
		if (e) {
			char why[160];
			snprintf(why, sizeof(why), "the checking copy could not start: %s", strerror(e));
			not_run(out, why);
			return;
		}
		size_t len = strlen(text);
		snprintf(text + len, sizeof(buf) - klen - 1 - len, "ended %s\n", how.desc);
		memcpy(buf, key, klen);
		buf[klen] = '\n';
		(void)SetEnvironmentVariableA(RESULTS_VAR, buf);
	}
	parse(text, out);
	not_run(out, "the checking copy ended before this check");
}
