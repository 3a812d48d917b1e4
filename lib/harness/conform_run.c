/* Running probe instances in processes of their own, up to --jobs at once.
 * Portable: every process, channel and file operation goes through the OS
 * layer (pagelab/os.h).
 *
 * Isolation: a probe child first sends a handshake ("H" and the world it
 * sees) before it runs the probe. A re-executed child that ends without one
 * means re-executing this program does not work here (qemu-user without
 * binfmt_misc: the exec fails inside the emulator, spawn still succeeds); one
 * that reports another world escaped the launcher the run is under (a tracer
 * or instrumentation tool that does not follow children). Either way, under
 * --isolate=auto, the run switches to fork once and runs that probe again.
 *
 * Channels: the channel probes run first; a channel whose probe did not pass
 * is passed to every later probe as untrusted, and its users skip. */
#include "conform_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pagelab/env.h"
#include "pagelab/json.h"
#include "pagelab/os.h"
#include "pagelab/platform.h"

#define GRACE_S 0.2 /* how long to drain the channels after the probe exits */
#define MAX_ARGS (16 + 2 * PC_CH_COUNT + 2 * PC_F_COUNT)

struct slot {
	bool used, ended, timed_out, handshake, by_fork;
	size_t index;
	struct pl_child child;
	struct pl_exit exit;
	double start, end;
	char line[PC_LINE_MAX + 8];
	size_t linelen;
	char out[sizeof(((struct pc_result *)0)->output)];
	size_t outlen;
	bool has_status;
	char child_world[PC_WORLD_MAX];
	char tmpdir[512];
};

struct run {
	struct pc_options *o;
	const struct pc_instance *v;
	struct pc_result *r;
	size_t n;
	char self[4096];
	char world[PC_WORLD_MAX];
	bool use_fork;
	size_t *retry; /* instances to start again after an isolation fallback */
	size_t nretry;
};

static volatile int stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

/* ---- the protocol ---- */

static void set_obs(struct pc_result *r, const char *key, const char *value, bool measured)
{
	int i = 0;
	while (i < r->nobs && strcmp(r->obs[i].key, key) != 0)
		i++;
	if (i == PC_MAX_OBS)
		return; /* more observations than a report can show: keep the first ones */
	if (i == r->nobs)
		r->nobs++;
	r->obs[i].measured = measured;
	snprintf(r->obs[i].key, sizeof(r->obs[i].key), "%s", key);
	snprintf(r->obs[i].value, sizeof(r->obs[i].value), "%s", value);
}

/* "skip:unobservable:residency" -> status, class, channel. */
static void take_status(struct pc_result *r, char *word, const char *reason)
{
	char *cls = strchr(word, ':'), *ch = NULL;
	if (cls) {
		*cls++ = 0;
		if ((ch = strchr(cls, ':')) != NULL)
			*ch++ = 0;
	}
	r->status = pc_status_known(word);
	snprintf(r->reason, sizeof(r->reason), "%s", r->status ? reason : "probe reported an unknown status");
	snprintf(r->cls, sizeof(r->cls), "%s", r->status && cls ? cls : "");
	snprintf(r->channel, sizeof(r->channel), "%s", r->status && ch ? ch : "");
	if (!r->status) {
		r->status = "error";
		snprintf(r->cls, sizeof(r->cls), "harness");
	} else if (!strcmp(r->status, "skip") && !reason[0]) {
		r->status = "error";
		snprintf(r->cls, sizeof(r->cls), "harness");
		snprintf(r->reason, sizeof(r->reason), "skip without a reason");
	}
}

/* One protocol line: "H world", "O key\tvalue", "M key\tvalue", "C channel", "S status\treason". */
static void parse_line(struct slot *s, struct pc_result *r)
{
	char *tab = strchr(s->line, '\t');
	if (s->linelen < 2 || s->line[1] != ' ' || !tab)
		return;
	*tab = 0;
	char *a = s->line + 2;
	const char *b = tab + 1;
	switch (s->line[0]) {
	case 'H':
		s->handshake = true;
		snprintf(s->child_world, sizeof(s->child_world), "%s", a);
		break;
	case 'O':
	case 'M':
		set_obs(r, a, b, s->line[0] == 'M');
		break;
	case 'C':
		r->channels_used |= 1u << pc_channel_by_name(a);
		break;
	case 'S':
		if (!s->has_status) {
			s->has_status = true;
			take_status(r, a, b);
		}
		break;
	default:
		break;
	}
}

static void take_result_bytes(struct slot *s, struct pc_result *r, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			s->line[s->linelen] = 0;
			parse_line(s, r);
			s->linelen = 0;
		} else if (s->linelen < PC_LINE_MAX) {
			s->line[s->linelen++] = buf[i];
		}
	}
}

/* Keep the tail of the probe's own output for the report. */
static void take_output_bytes(struct slot *s, const char *buf, size_t n)
{
	size_t cap = sizeof(s->out) - 1;
	if (n >= cap) {
		buf += n - cap;
		n = cap;
	}
	if (s->outlen + n > cap) {
		size_t drop = s->outlen + n - cap;
		memmove(s->out, s->out + drop, s->outlen - drop);
		s->outlen -= drop;
	}
	memcpy(s->out + s->outlen, buf, n);
	s->outlen += n;
}

/* Read what is there without blocking; false at end of file. */
static bool drain(struct slot *s, struct pc_result *r, bool result_channel)
{
	char buf[4096];
	for (;;) {
		size_t got;
		bool eof;
		if (pl_child_read(&s->child, result_channel, buf, sizeof(buf), &got, &eof) != 0 || eof)
			return false;
		if (got == 0)
			return true;
		if (result_channel)
			take_result_bytes(s, r, buf, got);
		else
			take_output_bytes(s, buf, got);
	}
}

/* ---- starting a probe ---- */

struct fork_start {
	const struct run *run;
	const struct slot *slot;
};

static void run_forked(void *arg, intptr_t result)
{
	const struct fork_start *fs = arg;
	pc_run_instance(&fs->run->v[fs->slot->index], result, fs->slot->tmpdir);
}

static int start_exec(struct run *run, struct slot *s)
{
	char limit[32], untrusted[PC_CH_COUNT][sizeof(pc_distrust[0]) + 32];
	static char missing[PC_F_COUNT][sizeof(pc_feature_missing[0]) + 64];
	char *args[MAX_ARGS];
	int k = 0;
	snprintf(limit, sizeof(limit), "%ld", run->o->mem_limit_mib);
	args[k++] = run->self;
	args[k++] = "--run-one";
	args[k++] = (char *)run->v[s->index].id;
	args[k++] = "--result-fd";
	args[k++] = s->child.result_arg;
	args[k++] = "--tmpdir";
	args[k++] = s->tmpdir;
	if (run->o->mem_limit_mib > 0) {
		args[k++] = "--mem-limit";
		args[k++] = limit;
	}
	for (int ch = 1; ch < PC_CH_COUNT; ch++) {
		if (pc_distrust[ch][0]) {
			pc_distrust_arg(ch, untrusted[ch], sizeof(untrusted[ch]));
			args[k++] = "--untrusted";
			args[k++] = untrusted[ch];
		}
	}
	for (int f = 1; f < PC_F_COUNT; f++) {
		if (pc_feature_missing[f][0]) {
			pc_feature_arg(f, missing[f], sizeof(missing[f]));
			args[k++] = "--feature-missing";
			args[k++] = missing[f];
		}
	}
	args[k] = NULL;
	return pl_child_exec(&s->child, run->self, args, run->o->mem_limit_mib);
}

/* Start instance `index` in slot s; 0 or errno (the instance is then an error). */
static int start(struct run *run, struct slot *s, size_t index)
{
	memset(s, 0, sizeof(*s));
	s->index = index;
	int e = pl_make_tmpdir("pagelab-probe", s->tmpdir, sizeof(s->tmpdir));
	if (e)
		return e;
	if ((e = pl_child_open(&s->child)) != 0) {
		(void)pl_remove_tree(s->tmpdir);
		return e;
	}
	memset(&run->r[index], 0, sizeof(run->r[index]));
	s->start = pl_now();
	s->by_fork = run->use_fork;
	if (!s->by_fork) {
		e = start_exec(run, s);
		if (e && strcmp(run->o->isolate, "auto") == 0) {
			char why[4200];
			snprintf(why, sizeof(why), "re-executing %s failed (%s)", run->self, pl_errno_desc(e));
			pc_isolation_fallback(run->o, why);
			run->use_fork = s->by_fork = true;
		}
	}
	if (s->by_fork) {
		struct fork_start fs = {run, s};
		e = pl_child_fork(&s->child, run_forked, &fs, run->o->mem_limit_mib);
	}
	/* A system without fork (Windows): re-executing is the only isolation, so it is tried again. */
	if (e == ENOTSUP && s->by_fork) {
		run->use_fork = s->by_fork = false;
		snprintf(run->o->isolation_note, sizeof(run->o->isolation_note),
			 "re-executing %.1000s failed once, and this system has no fork: probes stay isolated by exec", run->self);
		e = start_exec(run, s);
	}
	if (e) {
		pl_child_close(&s->child);
		(void)pl_remove_tree(s->tmpdir);
		return e;
	}
	s->used = true;
	return 0;
}

/* ---- finishing a probe ---- */

/* No outcome line: say what happened to the process. */
static void judge_exit(const struct run *run, struct slot *s, struct pc_result *r)
{
	const char *cls = "harness";
	r->status = "error";
	if (s->timed_out) {
		r->status = "timeout";
		cls = "";
		snprintf(r->reason, sizeof(r->reason), "no outcome after %d s: killed", run->o->timeout_s);
	} else if (s->exit.how == PL_KILLED) {
		cls = "environment";
		snprintf(r->reason, sizeof(r->reason), "killed by %s (out of memory?)", s->exit.desc);
	} else if (s->exit.how == PL_CRASHED) {
		r->status = "fail";
		cls = "crashed";
		snprintf(r->reason, sizeof(r->reason), "crashed: killed by %s", s->exit.desc);
	} else {
		snprintf(r->reason, sizeof(r->reason), "exited with %s without reporting an outcome", s->exit.desc);
	}
	snprintf(r->cls, sizeof(r->cls), "%s", cls);
}

static void finalize(struct run *run, struct slot *s)
{
	struct pc_result *r = &run->r[s->index];
	pl_child_kill(&s->child, &s->exit); /* whatever the probe left behind */
	pl_child_close(&s->child);
	if (s->linelen) { /* a last line without its newline */
		s->line[s->linelen] = 0;
		parse_line(s, r);
	}
	if (!s->has_status)
		judge_exit(run, s, r);
	s->out[s->outlen] = 0;
	for (size_t i = 0; i < s->outlen; i++)
		if ((unsigned char)s->out[i] < 0x20 && s->out[i] != '\n')
			s->out[i] = ' ';
	memcpy(r->output, s->out, s->outlen + 1);
	r->duration_ms = ((s->end ? s->end : pl_now()) - s->start) * 1e3;
	int e = pl_remove_tree(s->tmpdir);
	if (e)
		fprintf(stderr, "pagelab-conform: cannot remove %s: %s\n", s->tmpdir, pl_errno_desc(e));
	r->complete = true;
	s->used = false;
}

/* An exec'd child that never shook hands, or that runs elsewhere: under
 * auto, switch to fork and start the probe again. True when it was retried. */
static bool isolation_failed(struct run *run, struct slot *s)
{
	bool other_world = s->handshake && strcmp(s->child_world, run->world) != 0;
	if (s->by_fork || (s->handshake && !other_world))
		return false;
	char why[2 * PC_WORLD_MAX + 128];
	if (other_world)
		snprintf(why, sizeof(why), "a re-executed child runs in another world (this process: %s; the child: %s)",
			 run->world, s->child_world);
	else
		snprintf(why, sizeof(why), "a re-executed child ended with %s before starting its probe", s->exit.desc);
	if (strcmp(run->o->isolate, "auto") != 0) {
		pc_isolation_note(run->o, why); /* --isolate=exec was asked for: say so, change nothing */
		return false;
	}
	pc_isolation_fallback(run->o, why);
	run->use_fork = true;
	pl_child_kill(&s->child, &s->exit);
	pl_child_close(&s->child);
	(void)pl_remove_tree(s->tmpdir);
	s->used = false;
	run->retry[run->nretry++] = s->index;
	return true;
}

/* Advance one running slot: reap, time out, finish. True when it finished. */
static bool step(struct run *run, struct slot *s)
{
	struct pc_result *r = &run->r[s->index];
	bool res_open = drain(s, r, true);
	bool out_open = drain(s, r, false);
	double t = pl_now();
	if (!s->ended) {
		if (pl_child_ended(&s->child, &s->exit)) {
			s->ended = true;
			s->end = t;
		} else if (s->handshake && !s->by_fork && strcmp(s->child_world, run->world) != 0 &&
			   isolation_failed(run, s)) {
			return false;
		} else if (t - s->start > run->o->timeout_s) {
			pl_child_kill(&s->child, &s->exit);
			s->ended = s->timed_out = true;
			s->end = t;
		}
	}
	/* A child the probe left behind may hold the channels open: do not wait for EOF forever. */
	if (s->ended && ((!res_open && !out_open) || t - s->end > GRACE_S)) {
		if (!s->timed_out && isolation_failed(run, s))
			return false;
		finalize(run, s);
		return true;
	}
	return false;
}

static void wait_for_io(struct slot *slots, int nslots)
{
	struct pl_child *live[PC_MAX_JOBS];
	size_t n = 0;
	for (int i = 0; i < nslots; i++)
		if (slots[i].used)
			live[n++] = &slots[i].child;
	pl_children_wait(live, n, 20);
}

/* Interrupted: kill the live probes (their whole trees), and record every
 * unfinished probe as an error, so the JSON still holds what did finish. */
static void interrupt(struct run *run, struct slot *slots, size_t lo, size_t hi)
{
	for (int i = 0; i < run->o->jobs; i++) {
		struct slot *s = &slots[i];
		if (!s->used)
			continue;
		pl_child_kill(&s->child, &s->exit);
		s->ended = true;
		s->end = pl_now();
		bool reported = s->has_status;
		finalize(run, s);
		if (!reported) {
			snprintf(run->r[s->index].reason, sizeof(run->r[s->index].reason),
				 "interrupted by signal %d while running", stop_signal);
			run->r[s->index].status = "error";
			snprintf(run->r[s->index].cls, sizeof(run->r[s->index].cls), "harness");
		}
	}
	for (size_t i = lo; i < hi; i++) {
		struct pc_result *r = &run->r[i];
		if (!r->complete || !r->status) {
			r->status = "error";
			snprintf(r->cls, sizeof(r->cls), "harness");
			snprintf(r->reason, sizeof(r->reason), "not finished: the run was interrupted by signal %d",
				 stop_signal);
			r->complete = true;
		}
	}
	fprintf(stderr, "pagelab-conform: interrupted by signal %d\n", stop_signal);
}

/* The next instance to start: retried ones first, then the next in order; an
 * instance that needs a feature this system lacks is a skip, never started. */
static bool next_instance(struct run *run, size_t *next, size_t hi, size_t *done, size_t *index)
{
	if (run->nretry) {
		*index = run->retry[--run->nretry];
		return true;
	}
	while (*next < hi) {
		*index = (*next)++;
		int f = pc_missing_need(&run->v[*index]);
		if (f == PC_F_NONE)
			return true;
		pc_skip_for_feature(f, &run->r[*index]);
		(*done)++;
	}
	return false;
}

/* Start whatever fits. */
static void fill_slots(struct run *run, struct slot *slots, size_t *next, size_t hi, size_t *done)
{
	for (int i = 0; i < run->o->jobs; i++) {
		if (slots[i].used)
			continue;
		size_t index;
		if (!next_instance(run, next, hi, done, &index))
			return;
		int e = start(run, &slots[i], index);
		if (e) {
			struct pc_result *r = &run->r[index];
			r->status = "error";
			snprintf(r->cls, sizeof(r->cls), "harness");
			snprintf(r->reason, sizeof(r->reason), "cannot start the probe: %s", pl_errno_desc(e));
			r->complete = true;
			(*done)++;
		}
	}
}

/* Run instances [lo, hi) to the end (or to an interruption); TAP as they finish, in order. */
static void run_range(struct run *run, struct slot *slots, size_t lo, size_t hi, size_t *printed)
{
	size_t next = lo, done = 0;
	while (done < hi - lo && !stop_signal) {
		fill_slots(run, slots, &next, hi, &done);
		wait_for_io(slots, run->o->jobs);
		for (int i = 0; i < run->o->jobs; i++)
			if (slots[i].used && step(run, &slots[i]))
				done++;
		for (; *printed < hi && run->r[*printed].complete; (*printed)++)
			if (!run->o->quiet)
				pc_tap_result(*printed, run->v[*printed].id, &run->r[*printed]);
	}
	if (stop_signal) {
		interrupt(run, slots, lo, run->n);
		for (; *printed < run->n; (*printed)++)
			if (!run->o->quiet)
				pc_tap_result(*printed, run->v[*printed].id, &run->r[*printed]);
	}
}

static void print_summary(const struct pc_options *o, const struct pc_result *r, size_t n, const char *isolation)
{
	size_t c[PC_NSTATUS], skips[4];
	pc_count(r, n, c);
	pc_count_skips(r, n, skips);
	printf("# pagelab-conform: %zu pass, %zu fail, %zu differs, %zu skip, %zu xfail, %zu error, %zu timeout, "
	       "%zu observed (%zu probes, isolation %s)\n", c[0], c[1], c[6], c[2], c[3], c[4], c[5], c[7], n, isolation);
	if (c[2])
		printf("# skips: %zu unsupported, %zu unobservable, %zu prerequisite\n", skips[0], skips[1], skips[2]);
	if (o->isolation_note[0])
		printf("# isolation: %s\n", o->isolation_note);
}

static int exit_status(const struct pc_result *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *st = r[i].status;
		if (!strcmp(st, "fail") || !strcmp(st, "error") || !strcmp(st, "timeout"))
			return 1;
	}
	return 0;
}

static int refuse_unwritable_json(const char *path)
{
	struct pl_atomic a;
	int e = pl_atomic_open(&a, path);
	if (e) {
		fprintf(stderr, "pagelab-conform: cannot write %s: %s\n", path, pl_errno_desc(e));
		return 2;
	}
	pl_atomic_abort(&a);
	return 0;
}

static int prepare(struct run *run, const char *argv0)
{
	int e = pl_self_path(argv0, run->self, sizeof(run->self));
	const char *forced = getenv("PAGELAB_CONFORM_SELF"); /* tests use it to make re-executing fail */
	if (forced && *forced)
		snprintf(run->self, sizeof(run->self), "%s", forced);
	else if (e)
		snprintf(run->self, sizeof(run->self), "%s", argv0);
	/* Before any probe: a page layer that hands its start-up checks to the copies of this
	 * program it starts (Windows) then checks once per run, not once per probe. */
	(void)pl_caps();
	if ((e = pl_world(run->world, sizeof(run->world))) != 0)
		snprintf(run->world, sizeof(run->world), "unknown (%s)", pl_errno_name(e));
	if ((e = pl_on_stop(on_stop)) != 0)
		fprintf(stderr, "pagelab-conform: cannot catch interrupts: %s\n", pl_errno_desc(e));
	return 0;
}

int pc_run_all(struct pc_options *o, const char *argv0, const struct pc_instance *v, size_t n)
{
	struct run run = {.o = o, .v = v, .n = n, .use_fork = strcmp(o->isolate, "fork") == 0};
	struct slot *slots = calloc((size_t)o->jobs, sizeof(*slots));
	run.r = calloc(n, sizeof(*run.r));
	run.retry = calloc(n + (size_t)o->jobs, sizeof(*run.retry));
	int status = 2;
	if (!slots || !run.r || !run.retry) {
		fputs("pagelab-conform: out of memory\n", stderr);
	} else if (!o->json_path || refuse_unwritable_json(o->json_path) == 0) {
		prepare(&run, argv0);
		if (!o->quiet)
			pc_tap_begin(n);
		/* Three phases: the channels, then the features (proved with trusted channels), then the probes. */
		size_t printed = 0, nchannel = pc_channel_instances(v, n);
		size_t nfeature = nchannel + pc_feature_instances(v, n, nchannel);
		run_range(&run, slots, 0, nchannel, &printed);
		pc_channels_decide(v, run.r, nchannel);
		if (!stop_signal)
			run_range(&run, slots, nchannel, nfeature, &printed);
		pc_features_decide(v, run.r, nchannel, nfeature);
		if (!stop_signal)
			run_range(&run, slots, nfeature, n, &printed);
		o->interrupted_by = stop_signal;
		const char *isolation = run.use_fork ? "fork" : "exec";
		print_summary(o, run.r, n, isolation);
		status = exit_status(run.r, n);
		int e = o->json_path ? pc_write_json(o->json_path, isolation, v, run.r, n, o) : 0;
		if (e) {
			fprintf(stderr, "pagelab-conform: cannot write %s: %s\n", o->json_path, pl_errno_desc(e));
			status = status ? status : 1;
		}
		if (stop_signal)
			status = 128 + stop_signal;
	}
	free(slots);
	free(run.r);
	free(run.retry);
	return status;
}
