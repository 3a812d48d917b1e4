/* The conformance runner: pagelab-conform.
 *
 * Each probe instance runs in a process of its own, started by re-executing
 * this binary so that isolation never depends on the fork() some probes
 * test; fork() is the fallback where re-executing does not start the probe,
 * or starts it outside the system the run is under (conform_run.c). A crash,
 * hang or OOM of one probe is that probe's outcome; the run goes on. TAP 13
 * on stdout, JSON with --json. No OS calls here: those are in pagelab/os.h.
 */
#include "conform_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform_run.h"
#include "pagelab/env.h"
#include "pagelab/os.h"

static const struct pc_probe **probes;
static size_t nprobes, cap_probes;

void pc_register(const struct pc_probe *probe)
{
	if (nprobes == cap_probes) {
		size_t n = cap_probes ? cap_probes * 2 : 64;
		const struct pc_probe **p = realloc(probes, n * sizeof(*p));
		if (!p) {
			fputs("pagelab-conform: out of memory registering probes\n", stderr);
			exit(2);
		}
		probes = p;
		cap_probes = n;
	}
	probes[nprobes++] = probe;
}

/* Channel probes, then feature probes (the others depend on their outcomes), then by id. */
static int phase(const struct pc_probe *p)
{
	return p->proves != PC_CH_NONE ? 0 : p->proves_feature != PC_F_NONE ? 1 : 2;
}

static int cmp_instance(const void *a, const void *b)
{
	const struct pc_instance *x = a, *y = b;
	int px = phase(x->probe), py = phase(y->probe);
	if (px != py)
		return px - py;
	return strcmp(x->id, y->id);
}

/* Every probe and mapping-kind variant, sorted by id. */
static struct pc_instance *expand_instances(size_t *count)
{
	size_t n = 0;
	for (size_t i = 0; i < nprobes; i++)
		n += probes[i]->kinds ? (size_t)__builtin_popcount(probes[i]->kinds) : 1;
	struct pc_instance *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < nprobes; i++) {
		const struct pc_probe *p = probes[i];
		if (!p->kinds) {
			snprintf(v[k].id, sizeof(v[k].id), "%s", p->id);
			v[k++].probe = p;
			continue;
		}
		for (unsigned bit = 1; bit <= PC_KIND_LAST; bit <<= 1) {
			if (!(p->kinds & bit))
				continue;
			snprintf(v[k].id, sizeof(v[k].id), "%s/%s", p->id, pc_kind_name((enum pc_kind)bit));
			v[k].probe = p;
			v[k++].kind = (enum pc_kind)bit;
		}
	}
	qsort(v, k, sizeof(*v), cmp_instance);
	*count = k;
	return v;
}

void pc_run_instance(const struct pc_instance *inst, intptr_t result, const char *tmpdir)
{
	struct pc_ctx ctx = {.id = inst->id, .kind = inst->kind, .result = result, .tmpdir = tmpdir};
	char world[PC_WORLD_MAX];
	pc_current = &ctx;
	int e = pl_world(world, sizeof(world));
	pc_handshake(&ctx, e ? pc_fmt("unknown (%s)", pl_errno_name(e)) : world);
	/* The page layer checks its claims once, in a child: before the probe, so its fork cannot disturb it. */
	(void)pl_caps();
	inst->probe->fn(&ctx);
	pc_error_harness(&ctx, "probe returned without an outcome");
}

/* ---- command line ---- */

static PC_NORETURN void usage_error(const char *fmt, const char *arg)
{
	fputs("pagelab-conform: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see --help)\n", stderr);
	exit(2);
}

static void print_help(void)
{
	puts("usage: pagelab-conform [options]\n"
	     "  -l, --list          list probe ids and what each checks\n"
	     "  -f, --filter GLOB   run ids matching GLOB (repeatable; fnmatch syntax); the\n"
	     "                      channel.* and feature.* probes always run first: the\n"
	     "                      others depend on them\n"
	     "  -x, --exclude GLOB  skip ids matching GLOB (repeatable)\n"
	     "  -j, --jobs N        run N probes at once (default 1)\n"
	     "      --timeout S     seconds before a probe is killed (default 30)\n"
	     "      --json FILE     write results as JSON (schema pagelab.conformance/2)\n"
	     "      --tap           TAP 13 on stdout (the default)\n"
	     "  -q, --quiet         only the summary line on stdout\n"
	     "      --isolate=M     exec (re-execute per probe), fork, or auto (default)\n"
	     "      --mem-limit MiB address-space limit for each probe (default none)\n"
	     "      --untrusted C:WHY  treat observation channel C as untrusted (the runner passes this on)\n"
	     "      --feature-missing F:CLASS:CHANNEL:WHY  treat feature F as missing (the runner passes this on)\n"
	     "  -h, --help          this text\n"
	     "exit status: 0 nothing failed (a behaviour that differs is not a failure), 1 a probe\n"
	     "failed/errored/timed out, 2 bad usage");
}

static long parse_number(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		char msg[128];
		snprintf(msg, sizeof(msg), "%s needs a number from %ld to %ld, got '%%s'", opt, lo, hi);
		usage_error(msg, s);
	}
	return v;
}

/* Value of "--opt=v" or "--opt v"; advances *i when the value is the next word. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) == 0 && a[n] == '=')
		return a + n + 1;
	if (n == 2 && strncmp(a, name, 2) == 0 && a[2]) /* -j2, -fGLOB */
		return a + 2;
	if (*i + 1 >= argc)
		usage_error("option %s needs a value", name);
	return argv[++*i];
}

static bool is_opt(const char *a, const char *shortname, const char *longname)
{
	size_t n = strlen(longname);
	bool short_joined = shortname && shortname[1] != 'h' && shortname[1] != 'l' && shortname[1] != 'q' &&
			    strncmp(a, shortname, 2) == 0 && a[2] && a[1] != '-';
	return (shortname && strcmp(a, shortname) == 0) || short_joined || strcmp(a, longname) == 0 ||
	       (strncmp(a, longname, n) == 0 && a[n] == '=');
}

static void parse_args(int argc, char **argv, struct pc_options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (is_opt(a, "-h", "--help")) {
			print_help();
			exit(0);
		} else if (is_opt(a, "-l", "--list")) {
			o->list = true;
		} else if (is_opt(a, "-q", "--quiet")) {
			o->quiet = true;
		} else if (is_opt(a, NULL, "--tap")) {
			o->quiet = false;
		} else if (is_opt(a, "-f", "--filter") || is_opt(a, "-x", "--exclude")) {
			bool inc = a[1] == 'f' || strncmp(a, "--filter", 8) == 0;
			const char *name = a[1] == '-' ? (inc ? "--filter" : "--exclude") : (inc ? "-f" : "-x");
			if (o->nglobs == PC_MAX_GLOBS)
				usage_error("too many filters (at most %s)", "64");
			o->globs[o->nglobs].include = inc;
			o->globs[o->nglobs++].pattern = opt_value(argc, argv, &i, name);
		} else if (is_opt(a, "-j", "--jobs")) {
			o->jobs = (int)parse_number("--jobs", opt_value(argc, argv, &i, a[1] == '-' ? "--jobs" : "-j"), 1, PC_MAX_JOBS);
		} else if (is_opt(a, NULL, "--timeout")) {
			o->timeout_s = (int)parse_number("--timeout", opt_value(argc, argv, &i, "--timeout"), 1, 86400);
		} else if (is_opt(a, NULL, "--mem-limit")) {
			o->mem_limit_mib = parse_number("--mem-limit", opt_value(argc, argv, &i, "--mem-limit"), 1, LONG_MAX >> 20);
		} else if (is_opt(a, NULL, "--json")) {
			o->json_path = opt_value(argc, argv, &i, "--json");
		} else if (is_opt(a, NULL, "--isolate")) {
			const char *m = opt_value(argc, argv, &i, "--isolate");
			if (strcmp(m, "exec") && strcmp(m, "fork") && strcmp(m, "auto"))
				usage_error("--isolate takes exec, fork or auto, not '%s'", m);
			o->isolate = m;
		} else if (is_opt(a, NULL, "--run-one")) {
			o->run_one = opt_value(argc, argv, &i, "--run-one");
		} else if (is_opt(a, NULL, "--result-fd")) {
			o->result_arg = opt_value(argc, argv, &i, "--result-fd");
		} else if (is_opt(a, NULL, "--untrusted")) {
			const char *u = opt_value(argc, argv, &i, "--untrusted");
			if (pc_distrust_parse(u) != 0)
				usage_error("--untrusted takes CHANNEL:REASON with a known channel, not '%s'", u);
		} else if (is_opt(a, NULL, "--feature-missing")) {
			const char *m = opt_value(argc, argv, &i, "--feature-missing");
			if (pc_feature_parse(m) != 0)
				usage_error("--feature-missing takes FEATURE:CLASS:CHANNEL:EVIDENCE with a known feature, not '%s'", m);
		} else if (is_opt(a, NULL, "--tmpdir")) {
			o->tmpdir = opt_value(argc, argv, &i, "--tmpdir");
		} else {
			usage_error("unknown option '%s'", a);
		}
	}
}

/* fnmatch(3) without flags, which not every C library has: '*', '?', '[set]', '[!set]', '\\x'. */
static bool pc_glob_match(const char *pat, const char *s)
{
	for (; *pat; pat++, s++) {
		if (*pat == '*') {
			while (pat[1] == '*')
				pat++;
			for (const char *t = s;; t++) {
				if (pc_glob_match(pat + 1, t))
					return true;
				if (!*t)
					return false;
			}
		}
		if (!*s)
			return false;
		if (*pat == '[') {
			bool neg = pat[1] == '!', hit = false;
			const char *q = pat + 1 + neg;
			for (bool first = true; *q && (first || *q != ']'); q++, first = false) {
				if (q[1] == '-' && q[2] && q[2] != ']') {
					hit = hit || (*s >= q[0] && *s <= q[2]);
					q += 2;
				} else {
					hit = hit || *s == *q;
				}
			}
			if (*q != ']')
				return *s == '[' && pc_glob_match(pat + 1, s + 1); /* no closing bracket: a literal '[' */
			if (hit == neg)
				return false;
			pat = q;
			continue;
		}
		bool literal = *pat == '\\' && pat[1];
		if (literal)
			pat++;
		if ((literal || *pat != '?') && *pat != *s)
			return false;
	}
	return *s == 0;
}

static bool selected(const struct pc_options *o, const char *id)
{
	bool any_include = false, included = false;
	for (int i = 0; i < o->nglobs; i++) {
		bool m = pc_glob_match(o->globs[i].pattern, id);
		if (!o->globs[i].include && m)
			return false;
		if (o->globs[i].include) {
			any_include = true;
			included = included || m;
		}
	}
	return !any_include || included;
}

static const struct pc_instance *find_instance(const struct pc_instance *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].id, id) == 0)
			return &v[i];
	return NULL;
}

int main(int argc, char **argv)
{
	struct pc_options o = {.jobs = 1, .timeout_s = 30, .isolate = "auto"};
	parse_args(argc, argv, &o);
	size_t n;
	struct pc_instance *all = expand_instances(&n);
	if (!all) {
		fputs("pagelab-conform: out of memory\n", stderr);
		return 2;
	}
	if (o.run_one) {
		const struct pc_instance *inst = find_instance(all, n, o.run_one);
		intptr_t result;
		if (!inst || !o.result_arg || pl_result_channel(o.result_arg, &result) != 0 || !o.tmpdir)
			usage_error("--run-one needs a known probe id, a valid --result-fd and --tmpdir ('%s')", o.run_one);
		int e = pl_limit_memory(o.mem_limit_mib);
		if (e)
			fprintf(stderr, "pagelab-conform: cannot limit memory: %s\n", pl_errno_desc(e));
		pc_run_instance(inst, result, o.tmpdir);
	}
	/* A run always includes the channel and feature probes (a few milliseconds each):
	 * the others' verdicts depend on them, in a filtered run too. */
	size_t k = 0, chosen = 0;
	for (size_t i = 0; i < n; i++) {
		const struct pc_probe *p = all[i].probe;
		bool want = selected(&o, all[i].id);
		chosen += want;
		if (want || (!o.list && (p->proves != PC_CH_NONE || p->proves_feature != PC_F_NONE)))
			all[k++] = all[i];
	}
	if (chosen == 0)
		usage_error("no probe matches the filters%s", "");
	if (o.list) {
		for (size_t i = 0; i < k; i++)
			printf("%-64s %s\n", all[i].id, all[i].probe->summary);
		return 0;
	}
	int status = pc_run_all(&o, argv[0], all, k);
	free(all);
	return status;
}
