/* Counter back-ends (not a public header). Each back-end is one file that
 * registers itself at start-up; the Makefile builds the files this system
 * has (counters_rusage.c always, counters_perf_event.c where perf_event
 * exists, counters_pfm.c where libpfm4 does), and counters.c picks one. */
#ifndef PAGELAB_COUNTERS_IMPL_H
#define PAGELAB_COUNTERS_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "pagelab/counters.h"

struct pl_counter_backend {
	const char *source;  /* --counter_source name: "perf", "rusage" */
	int priority;        /* "auto" takes the usable back-end with the highest */
	/* 0 when it can count here, else errno (it is then never chosen). */
	int (*usable)(void);
	/* Whether name ("event" or "event:modifier") names an event this
	 * back-end knows, whether or not this machine can count it. */
	bool (*knows)(const char *name);
	/* Prepare event slot i for name; 0, or errno with why it cannot be
	 * counted here in reason (the event is then listed as unavailable). */
	int (*prepare)(int i, const char *name, char *reason, size_t len);
	/* What the results call this source, e.g. "perf_event+libpfm4". */
	const char *(*describe)(void);
	/* One thread's set over the prepared slots active[0..n): see counters.h. */
	int (*open)(const int *active, int n, void **state);
	void (*close)(void *state);
	int (*begin)(void *state);
	int (*pause)(void *state);
	int (*resume)(void *state);
	int (*end)(void *state, double *values);
	/* Events of its own the default set includes where it is the source (NULL: none). */
	const char *default_extra;
};

/* Called by each back-end's constructor. */
void pl_counters_register(const struct pl_counter_backend *b);

/* The perf_event back-end asks an event encoder first (libpfm4), then its own table. */
struct perf_event_attr;
struct pl_perf_encoder {
	const char *name; /* appended to the source: "libpfm4" */
	int (*init)(void);
	/* 0 and *attr filled, or ENOENT for a name it does not know. */
	int (*encode)(const char *name, struct perf_event_attr *attr);
};
void pl_perf_set_encoder(const struct pl_perf_encoder *enc);

#endif
