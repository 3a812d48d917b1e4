/* Event counters for benchmarks: perf_event (events encoded by libpfm4 where
 * present, else a built-in table of generic events), or getrusage as the
 * fallback. Counts are per thread and cover only the measured intervals
 * (between pl_counters_begin/resume and pause/end), scaled for multiplexing.
 * Every function returns 0 or an errno value. */
#ifndef PAGELAB_COUNTERS_H
#define PAGELAB_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>

#include "pagelab/json.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_COUNTERS_MAX 24

/* The default set, as accepted by pl_counters_configure. */
#define PL_COUNTERS_DEFAULT \
	"page-faults,minor-faults,major-faults,context-switches,cpu-migrations," \
	"cycles:u,cycles:k,instructions:u,dTLB-load-misses"

/* Choose the counters for this process: list is comma-separated event names
 * ("default" or NULL: PL_COUNTERS_DEFAULT; "none": no counters); source is
 * "auto", "perf" or "rusage". Probes each event on the calling thread; an
 * event this machine cannot count is kept as unavailable with its reason.
 * EINVAL for an unknown name or source, with a one-line message in err. */
int pl_counters_configure(const char *list, const char *source, char *err, size_t errlen);
/* Number of counters that will be measured, and the i-th one's name. */
int pl_counters_count(void);
const char *pl_counters_name(int i);
/* "perf_event+libpfm4", "perf_event", "getrusage" or "none". */
const char *pl_counters_source(void);
/* Writes "counters": [...] and "counters_unavailable": {name: reason} members. */
void pl_counters_json_members(struct pl_json *j);

/* One thread's counters. Open and use on the same thread. */
struct pl_counters;
int pl_counters_open(struct pl_counters **out);
void pl_counters_close(struct pl_counters *c);
/* Start a measurement from zero and count. */
int pl_counters_begin(struct pl_counters *c);
/* Stop / restart counting within a measurement (paused intervals are not counted). */
int pl_counters_pause(struct pl_counters *c);
int pl_counters_resume(struct pl_counters *c);
/* Stop and store the measurement's totals in values[pl_counters_count()];
 * NaN for an event that was never scheduled on the PMU. */
int pl_counters_end(struct pl_counters *c, double *values);

#ifdef __cplusplus
}
#endif
#endif
