/* TAP 13 and JSON output of the conformance runner. */
#include "conform_run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pagelab/env.h"
#include "pagelab/json.h"

void pc_tap_begin(size_t n)
{
	printf("TAP version 13\n1..%zu\n", n);
	fflush(stdout);
}

/* A YAML scalar on one line, quoted so colons and '#' in reasons stay text. */
static void yaml_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s == '\n' ? ' ' : *s);
	}
	putchar('"');
}

static void yaml_observations(const struct pc_result *r, bool measured, const char *title)
{
	bool any = false;
	for (int i = 0; i < r->nobs; i++) {
		if (r->obs[i].measured != measured)
			continue;
		if (!any)
			printf("  %s:\n", title);
		any = true;
		printf("    %s: ", r->obs[i].key);
		yaml_str(r->obs[i].value);
		putchar('\n');
	}
}

void pc_tap_result(size_t index, const char *id, const struct pc_result *r)
{
	const char *st = r->status;
	bool differs = !strcmp(st, "differs"), observed = !strcmp(st, "observed");
	bool ok = !strcmp(st, "pass") || !strcmp(st, "skip") || differs || observed;
	bool xfail = !strcmp(st, "xfail");
	printf("%s %zu - %s", ok ? "ok" : "not ok", index + 1, id);
	if (!strcmp(st, "skip"))
		printf(" # SKIP %s: %s", r->cls[0] ? r->cls : "unclassified", r->reason);
	else if (xfail)
		printf(" # TODO xfail: %s", r->reason);
	else if (differs) /* a behaviour, not a contract: TAP counts it as ok, and says so in the description */
		printf(" (differs from the usual behaviour: %s)", r->reason);
	else if (observed) /* a record with nothing to assert */
		printf(" (observed only)");
	putchar('\n');
	if (r->nobs || (!ok && !xfail) || r->reason[0]) {
		printf("  ---\n  status: %s\n", st);
		if (r->cls[0])
			printf("  class: %s\n", r->cls);
		if (r->channel[0])
			printf("  channel: %s\n", r->channel);
		if (r->reason[0]) {
			printf("  reason: ");
			yaml_str(r->reason);
			putchar('\n');
		}
		yaml_observations(r, false, "observed");
		yaml_observations(r, true, "measured");
		if (r->output[0] && !ok) {
			printf("  output: ");
			yaml_str(r->output);
			putchar('\n');
		}
		printf("  duration_ms: %.1f\n  ...\n", r->duration_ms);
	}
	fflush(stdout);
}

static void write_caps(struct pl_json *j)
{
	const struct pl_caps *c = pl_caps();
	pl_json_key(j, "capabilities");
	pl_json_begin_object(j);
	for (int op = 0; op < PL_OP_COUNT; op++) {
		pl_json_key(j, pl_op_name((enum pl_op)op));
		pl_json_begin_object(j);
		pl_json_kv_str(j, "impl", pl_impl_name(c->op[op].impl));
		if (c->op[op].via)
			pl_json_kv_str(j, "via", c->op[op].via);
		if (c->op[op].how)
			pl_json_kv_str(j, "how", c->op[op].how);
		pl_json_kv_str(j, "verified", pl_verdict_name(c->op[op].verified));
		if (c->op[op].claimed)
			pl_json_kv_str(j, "claimed", c->op[op].claimed);
		pl_json_end_object(j);
	}
	pl_json_end_object(j);
	pl_json_kv_bool(j, "partial_unmap", c->partial_unmap);
}

static void write_channels(struct pl_json *j, const struct pc_instance *v, size_t n)
{
	pl_json_key(j, "channels");
	pl_json_begin_object(j);
	for (int ch = 1; ch < PC_CH_COUNT; ch++) {
		pl_json_key(j, pc_channel_name((enum pc_channel)ch));
		pl_json_begin_object(j);
		const char *probe = NULL;
		for (size_t i = 0; i < n && !probe; i++)
			if ((int)v[i].probe->proves == ch)
				probe = v[i].id;
		pl_json_kv_str(j, "probe", probe);
		pl_json_kv_bool(j, "trusted", pc_distrust[ch][0] == 0);
		if (pc_distrust[ch][0])
			pl_json_kv_str(j, "why", pc_distrust[ch]);
		pl_json_end_object(j);
	}
	pl_json_end_object(j);
}

/* Every feature the run proved: present, or missing with its class and evidence. */
static void write_features(struct pl_json *j, const struct pc_instance *v, size_t n, const struct pc_result *r)
{
	pl_json_key(j, "features");
	pl_json_begin_object(j);
	for (size_t i = 0; i < n; i++) {
		int f = v[i].probe->proves_feature;
		if (f == PC_F_NONE)
			continue;
		pl_json_key(j, pc_feature_name((enum pc_feature)f));
		pl_json_begin_object(j);
		pl_json_kv_str(j, "probe", v[i].id);
		pl_json_kv_bool(j, "present", pc_feature_missing[f][0] == 0);
		if (pc_feature_missing[f][0]) {
			char cls[32], channel[32];
			const char *evidence;
			pc_feature_verdict(f, cls, sizeof(cls), channel, sizeof(channel), &evidence);
			pl_json_kv_str(j, "class", cls);
			pl_json_kv_str(j, "why", evidence);
		} else if (strcmp(r[i].status, "pass") != 0) {
			pl_json_kv_str(j, "why", "its probe reached no verdict: the probes that need it judge by themselves");
		}
		pl_json_end_object(j);
	}
	pl_json_end_object(j);
}

static void json_observations(struct pl_json *j, const struct pc_result *r, bool measured, const char *key)
{
	pl_json_key(j, key);
	pl_json_begin_object(j);
	for (int i = 0; i < r->nobs; i++)
		if (r->obs[i].measured == measured)
			pl_json_kv_str(j, r->obs[i].key, r->obs[i].value);
	pl_json_end_object(j);
}

static void write_result(struct pl_json *j, const char *id, const char *summary, const struct pc_result *r)
{
	pl_json_begin_object(j);
	pl_json_kv_str(j, "id", id);
	pl_json_kv_str(j, "status", r->status);
	pl_json_kv_str(j, "reason", r->reason);
	pl_json_kv_str(j, "description", summary);
	if (r->cls[0])
		pl_json_kv_str(j, "class", r->cls);
	if (r->channel[0])
		pl_json_kv_str(j, "channel", r->channel);
	if (r->feature[0])
		pl_json_kv_str(j, "feature", r->feature);
	json_observations(j, r, false, "observed");
	json_observations(j, r, true, "measured");
	pl_json_key(j, "channels");
	pl_json_begin_array(j);
	for (int ch = 1; ch < PC_CH_COUNT; ch++)
		if (r->channels_used & (1u << ch))
			pl_json_str(j, pc_channel_name((enum pc_channel)ch));
	pl_json_end_array(j);
	pl_json_kv_double(j, "duration_ms", r->duration_ms);
	if (r->output[0])
		pl_json_kv_str(j, "output", r->output);
	pl_json_end_object(j);
}

int pc_write_json(const char *path, const char *isolation, const struct pc_instance *v,
		  const struct pc_result *r, size_t n, const struct pc_options *o)
{
	struct pl_atomic a;
	int e = pl_atomic_open(&a, path);
	if (e)
		return e;
	struct pl_json j;
	pl_json_init(&j, a.f, 1);
	pl_json_begin_object(&j);
	pl_json_kv_str(&j, "schema", "pagelab.conformance/2");
	pl_json_key(&j, "env");
	pl_json_begin_object(&j);
	pl_env_json_members(&j);
	pl_json_end_object(&j);
	pl_json_kv_str(&j, "isolation", isolation);
	if (o->isolation_note[0])
		pl_json_kv_str(&j, "isolation_note", o->isolation_note);
	pl_json_kv_int(&j, "timeout_s", o->timeout_s);
	pl_json_kv_bool(&j, "interrupted", o->interrupted_by != 0);
	write_caps(&j);
	write_channels(&j, v, n);
	write_features(&j, v, n, r);
	pl_json_key(&j, "results");
	pl_json_begin_array(&j);
	for (size_t i = 0; i < n; i++)
		write_result(&j, v[i].id, v[i].probe->summary, &r[i]);
	pl_json_end_array(&j);
	size_t counts[PC_NSTATUS], skips[4];
	pc_count(r, n, counts);
	pc_count_skips(r, n, skips);
	pl_json_key(&j, "summary");
	pl_json_begin_object(&j);
	for (int s = 0; s < PC_NSTATUS; s++)
		pl_json_kv_uint(&j, pc_status_names[s], counts[s]);
	pl_json_kv_uint(&j, "skip_unsupported", skips[0]);
	pl_json_kv_uint(&j, "skip_unobservable", skips[1]);
	pl_json_kv_uint(&j, "skip_prerequisite", skips[2]);
	pl_json_kv_uint(&j, "total", n);
	pl_json_end_object(&j);
	pl_json_end_object(&j);
	fputc('\n', a.f);
	return pl_atomic_commit(&a);
}
