/* The Windows counter back-end: GetProcessMemoryInfo's page faults (soft and
 * hard together), working set and commit charge, and the calling thread's
 * cycles (QueryThreadCycleTime, user and kernel together). The memory
 * counters are the process's; each is the change during the measured
 * intervals. Windows has no per-process minor/major split, context-switch
 * count or user/kernel cycle split a program can read: those are unavailable. */
#include "config.h"
#include "counters_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <psapi.h>

enum win_field { WF_FAULTS, WF_WORKING_SET, WF_COMMIT, WF_CYCLES, WF_NONE };

static const struct {
	const char *name;
	enum win_field field;
} fields[] = {
	{"page-faults", WF_FAULTS},
	{"working-set-bytes", WF_WORKING_SET},
	{"commit-bytes", WF_COMMIT},
	{"cycles", WF_CYCLES},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static enum win_field slot_field[PL_COUNTERS_MAX];

struct win_snapshot {
	double v[WF_NONE];
};

struct win_state {
	int n;
	bool cycles;
	enum win_field field[PL_COUNTERS_MAX];
	double acc[PL_COUNTERS_MAX];
	struct win_snapshot snap;
};

static enum win_field field_of(const char *name)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (strcmp(fields[i].name, name) == 0)
			return fields[i].field;
	return WF_NONE;
}

static BOOL(WINAPI *memory_info)(HANDLE, PPROCESS_MEMORY_COUNTERS, DWORD);

static int win_usable(void)
{
	HMODULE k = GetModuleHandleA("kernel32.dll");
	memory_info = k ? (BOOL(WINAPI *)(HANDLE, PPROCESS_MEMORY_COUNTERS, DWORD))(void *)GetProcAddress(k, "K32GetProcessMemoryInfo") : NULL;
	return memory_info ? 0 : ENOSYS;
}

static bool win_knows(const char *name)
{
	return field_of(name) != WF_NONE;
}

static int win_prepare(int i, const char *name, char *reason, size_t len)
{
	ULONG64 cycles;
	slot_field[i] = field_of(name);
	if (slot_field[i] == WF_CYCLES && !QueryThreadCycleTime(GetCurrentThread(), &cycles)) {
		snprintf(reason, len, "QueryThreadCycleTime fails here (error %lu)", (unsigned long)GetLastError());
		return ENOTSUP;
	}
	return 0;
}

static const char *win_describe(void)
{
	return "GetProcessMemoryInfo+QueryThreadCycleTime";
}

static int snapshot(struct win_snapshot *s, bool with_cycles)
{
	PROCESS_MEMORY_COUNTERS pmc = {.cb = sizeof(pmc)};
	ULONG64 cycles = 0;
	if (!memory_info(GetCurrentProcess(), &pmc, sizeof(pmc)) ||
	    (with_cycles && !QueryThreadCycleTime(GetCurrentThread(), &cycles)))
		return EIO;
	s->v[WF_FAULTS] = (double)pmc.PageFaultCount;
	s->v[WF_WORKING_SET] = (double)pmc.WorkingSetSize;
	s->v[WF_COMMIT] = (double)pmc.PagefileUsage;
	s->v[WF_CYCLES] = (double)cycles;
	return 0;
}

static int win_open(const int *active, int n, void **state)
{
	struct win_state *st = calloc(1, sizeof(*st));
	if (!st)
		return ENOMEM;
	st->n = n;
	for (int i = 0; i < n; i++) {
		st->field[i] = slot_field[active[i]];
		st->cycles = st->cycles || st->field[i] == WF_CYCLES;
	}
	*state = st;
	return 0;
}

static void win_close(void *state)
{
	free(state);
}

static int win_resume(void *state)
{
	struct win_state *st = state;
	return snapshot(&st->snap, st->cycles);
}

static int win_begin(void *state)
{
	struct win_state *st = state;
	memset(st->acc, 0, sizeof(st->acc));
	return win_resume(st);
}

static int win_pause(void *state)
{
	struct win_state *st = state;
	struct win_snapshot now;
	int e = snapshot(&now, st->cycles);
	if (e)
		return e;
	for (int i = 0; i < st->n; i++)
		st->acc[i] += now.v[st->field[i]] - st->snap.v[st->field[i]];
	return 0;
}

static int win_end(void *state, double *values)
{
	struct win_state *st = state;
	int e = win_pause(st);
	if (e)
		return e;
	memcpy(values, st->acc, (size_t)st->n * sizeof(*values));
	return 0;
}

static const struct pl_counter_backend win_backend = {
	.source = "windows", .priority = 1, .usable = win_usable, .knows = win_knows, .prepare = win_prepare,
	.describe = win_describe, .open = win_open, .close = win_close, .begin = win_begin, .pause = win_pause,
	.resume = win_resume, .end = win_end, .default_extra = "working-set-bytes,commit-bytes,cycles",
};

__attribute__((constructor)) static void register_windows(void)
{
	pl_counters_register(&win_backend);
}
