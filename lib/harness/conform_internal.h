/* Shared by the conformance runner (conform.c) and the probe side (conform_probe.c). */
#ifndef PAGELAB_CONFORM_INTERNAL_H
#define PAGELAB_CONFORM_INTERNAL_H

#include "config.h"
#include "pagelab/check.h"

#define PC_LINE_MAX 2048

struct pc_ctx {
	const char *id;
	enum pc_kind kind;
	int result_fd;
	const char *tmpdir;
};

/* One runnable instance: a probe, or one of its mapping-kind variants. */
struct pc_instance {
	char id[160];
	const struct pc_probe *probe;
	enum pc_kind kind;
};

/* The probe running in this process, for helpers that have no ctx argument. */
extern struct pc_ctx *pc_current;

/* Run one instance in the calling process and exit; never returns. */
PC_NORETURN void pc_run_instance(const struct pc_instance *inst, int result_fd, const char *tmpdir);

#endif
