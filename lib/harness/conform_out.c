/* TAP 13 and JSON output of the conformance runner. */
#include "conform_run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pagelab/env.h"
#include "pagelab/json.h"

const char *const pc_status_names[6] = {"pass", "fail", "skip", "xfail", "error", "timeout"};

void pc_count(const struct pc_result *r, size_t n, size_t counts[6])
{
	memset(counts, 0, 6 * sizeof(counts[0]));
	for (size_t i = 0; i < n; i++)
		for (int s = 0; s < 6; s++)
			if (r[i].status && strcmp(r[i].status, pc_status_names[s]) == 0)
				counts[s]++;
}

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

void pc_tap_result(size_t index, const char *id, const struct pc_result *r)
{
	const char *st = r->status;
	bool ok = !strcmp(st, "pass") || !strcmp(st, "skip");
	bool xfail = !strcmp(st, "xfail");
	printf("%s %zu - %s", ok ? "ok" : "not ok", index + 1, id);
	if (!strcmp(st, "skip"))
		printf(" # SKIP %s", r->reason);
	else if (xfail)
		printf(" # TODO xfail: %s", r->reason);
	putchar('\n');
	if (r->nobs || (!ok && !xfail) || r->reason[0]) {
		printf("  ---\n  status: %s\n", st);
		if (r->reason[0]) {
			printf("  reason: ");
			yaml_str(r->reason);
			putchar('\n');
		}
		if (r->nobs) {
			printf("  observed:\n");
			for (int i = 0; i < r->nobs; i++) {
				printf("    %s: ", r->obs[i].key);
				yaml_str(r->obs[i].value);
				putchar('\n');
			}
		}
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
		pl_json_end_object(j);
	}
	pl_json_end_object(j);
}

static void write_result(struct pl_json *j, const char *id, const struct pc_result *r)
{
	pl_json_begin_object(j);
	pl_json_kv_str(j, "id", id);
	pl_json_kv_str(j, "status", r->status);
	pl_json_kv_str(j, "reason", r->reason);
	pl_json_key(j, "observed");
	pl_json_begin_object(j);
	for (int i = 0; i < r->nobs; i++)
		pl_json_kv_str(j, r->obs[i].key, r->obs[i].value);
	pl_json_end_object(j);
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
	pl_json_kv_str(&j, "schema", "pagelab.conformance/1");
	pl_json_key(&j, "env");
	pl_json_begin_object(&j);
	pl_env_json_members(&j);
	pl_json_end_object(&j);
	pl_json_kv_str(&j, "isolation", isolation);
	pl_json_kv_int(&j, "timeout_s", o->timeout_s);
	pl_json_kv_bool(&j, "interrupted", o->interrupted_by != 0);
	write_caps(&j);
	pl_json_key(&j, "results");
	pl_json_begin_array(&j);
	for (size_t i = 0; i < n; i++)
		write_result(&j, v[i].id, &r[i]);
	pl_json_end_array(&j);
	size_t counts[6];
	pc_count(r, n, counts);
	pl_json_key(&j, "summary");
	pl_json_begin_object(&j);
	for (int s = 0; s < 6; s++)
		pl_json_kv_uint(&j, pc_status_names[s], counts[s]);
	pl_json_kv_uint(&j, "total", n);
	pl_json_end_object(&j);
	pl_json_end_object(&j);
	fputc('\n', a.f);
	return pl_atomic_commit(&a);
}
