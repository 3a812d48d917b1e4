/* Shared by the conformance runner (conform*.c) and the probe side (conform_probe.c). */
#ifndef PAGELAB_CONFORM_INTERNAL_H
#define PAGELAB_CONFORM_INTERNAL_H

#include <stdint.h>

#include "config.h"
#include "pagelab/check.h"

#define PC_LINE_MAX 2048
#define PC_WORLD_MAX 1024

struct pc_ctx {
	const char *id;
	enum pc_kind kind;
	intptr_t result; /* the channel to the runner */
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

/* Why each channel is not trusted in this run ("" when it is), indexed by enum pc_channel. */
extern char pc_distrust[PC_CH_COUNT][512];
/* "name:reason" for --untrusted, and its parser (0 or EINVAL). */
void pc_distrust_arg(int ch, char *buf, size_t size);
int pc_distrust_parse(const char *arg);
/* The channel of a name, or PC_CH_NONE. */
enum pc_channel pc_channel_by_name(const char *name);

/* What this run knows of each feature: "" (present, or not proved in this
 * run) or "CLASS:evidence" for a missing one (CLASS: unsupported,
 * prerequisite, unobservable), indexed by enum pc_feature. */
extern char pc_feature_missing[PC_F_COUNT][512];
/* "name:CLASS:evidence" for --feature-missing, and its parser (0 or EINVAL). */
void pc_feature_arg(int f, char *buf, size_t size);
/* A missing feature's class ("unsupported" ...), channel ("" unless unobservable) and evidence. */
void pc_feature_verdict(int f, char *cls, size_t cls_size, char *channel, size_t ch_size, const char **evidence);
int pc_feature_parse(const char *arg);
/* The first behaviour that differed in this probe process ("" when none). */
extern char pc_differs_reason[512];

/* The first line a probe child sends: the world it runs in. */
void pc_handshake(struct pc_ctx *ctx, const char *world);
/* The harness itself failed (no outcome, a bad protocol line): error, class harness. */
PC_NORETURN PC_FMT(2, 3) void pc_error_harness(struct pc_ctx *ctx, const char *fmt, ...);

/* Run one instance in the calling process and exit; never returns. Sends the
 * handshake first: the world this process sees. */
PC_NORETURN void pc_run_instance(const struct pc_instance *inst, intptr_t result, const char *tmpdir);

#endif
