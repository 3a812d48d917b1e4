/* The runner's scheduling (conform_run.c), its output (conform_out.c) and the
 * verdict bookkeeping they share (conform_verdict.c). */
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
	const char *result_arg;
	const char *tmpdir;
	int interrupted_by; /* the signal that stopped the run, or 0 */
	char isolation_note[1536]; /* why the isolation differs from what was asked, or what was seen */
};

struct pc_result {
	const char *status; /* pass fail skip xfail error timeout differs observed */
	char cls[24];       /* the verdict class: unsupported, unobservable, refused, harness ... */
	char channel[24];   /* unobservable: the channel */
	char feature[40];   /* skipped for a missing feature: its name */
	char reason[1024];
	struct { char key[64]; char value[512]; bool measured; } obs[PC_MAX_OBS];
	int nobs;
	unsigned channels_used; /* bit per enum pc_channel */
	double duration_ms;
	bool complete; /* the process is gone and the result final */
	char output[2048]; /* the tail of what the probe wrote to stdout/stderr */
};

/* Run the instances, print TAP, write JSON; returns the exit status. */
int pc_run_all(struct pc_options *o, const char *argv0, const struct pc_instance *v, size_t n);

/* Verdict bookkeeping (conform_verdict.c). */
#define PC_NSTATUS 8
const char *pc_status_known(const char *s); /* the status name, or NULL */
/* Counts by status: pass fail skip xfail error timeout differs observed. */
void pc_count(const struct pc_result *r, size_t n, size_t counts[PC_NSTATUS]);
/* Skips by class: unsupported, unobservable, prerequisite, other. */
void pc_count_skips(const struct pc_result *r, size_t n, size_t counts[4]);
extern const char *const pc_status_names[PC_NSTATUS];
/* The channel probes come first in v: how many there are. */
size_t pc_channel_instances(const struct pc_instance *v, size_t n);
/* The feature probes follow the channel probes in v: how many from index `from`. */
size_t pc_feature_instances(const struct pc_instance *v, size_t n, size_t from);
/* After the feature probes [lo, hi) ran: every feature whose probe skipped is missing. */
void pc_features_decide(const struct pc_instance *v, const struct pc_result *r, size_t lo, size_t hi);
/* The features an instance needs (its probe's, and its mapping kind), and the first one missing (or PC_F_NONE). */
uint64_t pc_instance_needs(const struct pc_instance *inst);
int pc_missing_need(const struct pc_instance *inst);
/* The result of an instance not run because feature f is missing: skip with the feature probe's class and evidence. */
void pc_skip_for_feature(int f, struct pc_result *r);
/* After the channel probes ran: distrust every channel whose probe did not pass. */
void pc_channels_decide(const struct pc_instance *v, const struct pc_result *r, size_t nchannel);
/* The isolation changed from what was asked (first reason kept), or something about it was seen. */
void pc_isolation_fallback(struct pc_options *o, const char *why);
void pc_isolation_note(struct pc_options *o, const char *why);

/* Output (conform_out.c). */
void pc_tap_begin(size_t n);
void pc_tap_result(size_t index, const char *id, const struct pc_result *r);
int pc_write_json(const char *path, const char *isolation, const struct pc_instance *v,
		  const struct pc_result *r, size_t n, const struct pc_options *o);

#endif
