/* The runner's process management and output (conform_run.c, conform_out.c). */
#ifndef PAGELAB_CONFORM_RUN_H
#define PAGELAB_CONFORM_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "conform_internal.h"

#define PC_MAX_GLOBS 64
#define PC_MAX_JOBS 64
#define PC_MAX_OBS 48

struct pc_options {
	bool list, quiet;
	struct { const char *pattern; bool include; } globs[PC_MAX_GLOBS];
	int nglobs;
	int jobs;
	int timeout_s;
	long mem_limit_mib;
	const char *json_path;
	const char *isolate; /* "auto", "exec" or "fork" as asked */
	const char *run_one; /* internal: run this probe id here */
	int result_fd;
	const char *tmpdir;
	int interrupted_by; /* the signal that stopped the run, or 0 */
};

struct pc_result {
	const char *status; /* pass fail skip xfail error timeout */
	char reason[1024];
	struct { char key[64]; char value[512]; } obs[PC_MAX_OBS];
	int nobs;
	double duration_ms;
	bool complete; /* the process is gone and the result final */
	char output[2048]; /* the tail of what the probe wrote to stdout/stderr */
};

/* Run the instances, print TAP, write JSON; returns the exit status. */
int pc_run_all(struct pc_options *o, const char *argv0, const struct pc_instance *v, size_t n);

/* RLIMIT_AS for a probe process, when --mem-limit was given. */
void pc_apply_mem_limit(long mib);

/* Output (conform_out.c). */
void pc_tap_begin(size_t n);
void pc_tap_result(size_t index, const char *id, const struct pc_result *r);
int pc_write_json(const char *path, const char *isolation, const struct pc_instance *v,
		  const struct pc_result *r, size_t n, const struct pc_options *o);
/* Counts by status: pass fail skip xfail error timeout. */
void pc_count(const struct pc_result *r, size_t n, size_t counts[6]);
extern const char *const pc_status_names[6];

#endif
