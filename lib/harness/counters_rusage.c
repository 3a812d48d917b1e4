/* The getrusage counter back-end: page faults and context switches of the
 * calling thread (RUSAGE_THREAD where the system has it, else the process),
 * on any POSIX system. The fallback when perf_event is missing. */
#include "config.h"
#include "counters_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>

enum ru_field { RU_FAULTS, RU_MINFLT, RU_MAJFLT, RU_CSW, RU_NONE };

static const struct {
	const char *name;
	enum ru_field field;
} fields[] = {
	{"page-faults", RU_FAULTS},
	{"minor-faults", RU_MINFLT},
	{"major-faults", RU_MAJFLT},
	{"context-switches", RU_CSW},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static enum ru_field slot_field[PL_COUNTERS_MAX];

struct ru_state {
	int n;
	enum ru_field field[PL_COUNTERS_MAX];
	double acc[PL_COUNTERS_MAX];
	struct rusage snap;
};

static enum ru_field field_of(const char *name)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (strcmp(fields[i].name, name) == 0)
			return fields[i].field;
	return RU_NONE;
}

static int ru_usable(void)
{
	return 0;
}

static bool ru_knows(const char *name)
{
	return field_of(name) != RU_NONE;
}

static int ru_prepare(int i, const char *name, char *reason, size_t len)
{
	(void)reason;
	(void)len;
	slot_field[i] = field_of(name);
	return 0;
}

static const char *ru_describe(void)
{
	return "getrusage";
}

static int thread_rusage(struct rusage *ru)
{
#ifdef RUSAGE_THREAD
	return getrusage(RUSAGE_THREAD, ru) == 0 ? 0 : errno;
#else
	return getrusage(RUSAGE_SELF, ru) == 0 ? 0 : errno;
#endif
}

static double ru_value(const struct rusage *r, enum ru_field f)
{
	switch (f) {
	case RU_FAULTS: return (double)r->ru_minflt + (double)r->ru_majflt;
	case RU_MINFLT: return (double)r->ru_minflt;
	case RU_MAJFLT: return (double)r->ru_majflt;
	case RU_CSW: return (double)r->ru_nvcsw + (double)r->ru_nivcsw;
	default: return 0;
	}
}

static int ru_open(const int *active, int n, void **state)
{
	struct ru_state *st = calloc(1, sizeof(*st));
	if (!st)
		return ENOMEM;
	st->n = n;
	for (int i = 0; i < n; i++)
		st->field[i] = slot_field[active[i]];
	*state = st;
	return 0;
}

static void ru_close(void *state)
{
	free(state);
}

static int ru_resume(void *state)
{
	return thread_rusage(&((struct ru_state *)state)->snap);
}

static int ru_begin(void *state)
{
	struct ru_state *st = state;
	memset(st->acc, 0, sizeof(st->acc));
	return ru_resume(st);
}

static int ru_pause(void *state)
{
	struct ru_state *st = state;
	struct rusage now;
	int e = thread_rusage(&now);
	if (e)
		return e;
	for (int i = 0; i < st->n; i++)
		st->acc[i] += ru_value(&now, st->field[i]) - ru_value(&st->snap, st->field[i]);
	return 0;
}

static int ru_end(void *state, double *values)
{
	struct ru_state *st = state;
	int e = ru_pause(st);
	if (e)
		return e;
	memcpy(values, st->acc, (size_t)st->n * sizeof(*values));
	return 0;
}

static const struct pl_counter_backend rusage_backend = {
	.source = "rusage", .priority = 1, .usable = ru_usable, .knows = ru_knows, .prepare = ru_prepare,
	.describe = ru_describe, .open = ru_open, .close = ru_close, .begin = ru_begin, .pause = ru_pause,
	.resume = ru_resume, .end = ru_end,
};

__attribute__((constructor)) static void register_rusage(void)
{
	pl_counters_register(&rusage_backend);
}
