/* Running probe instances in processes of their own, up to --jobs at once. */
#include "conform_run.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pagelab/env.h"
#include "pagelab/json.h"

extern char **environ;

#define CHILD_RESULT_FD 100
#define GRACE_S 0.2 /* how long to drain pipes after the probe exits */

struct slot {
	bool used, exited, timed_out;
	size_t index;
	pid_t pid;
	int res_fd, out_fd;
	int wstatus;
	double start, end;
	char line[PC_LINE_MAX + 8];
	size_t linelen;
	char out[sizeof(((struct pc_result *)0)->output)];
	size_t outlen;
	bool has_status;
	char tmpdir[256];
};

struct run {
	const struct pc_options *o;
	const struct pc_instance *v;
	struct pc_result *r;
	char self[PATH_MAX];
	bool use_fork;
	bool fork_fallback_warned;
};

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_obs(struct pc_result *r, const char *key, const char *value)
{
	int i = 0;
	while (i < r->nobs && strcmp(r->obs[i].key, key) != 0)
		i++;
	if (i == PC_MAX_OBS)
		return; /* more observations than a report can show: keep the first ones */
	if (i == r->nobs)
		r->nobs++;
	snprintf(r->obs[i].key, sizeof(r->obs[i].key), "%s", key);
	snprintf(r->obs[i].value, sizeof(r->obs[i].value), "%s", value);
}

static const char *known_status(const char *s)
{
	static const char *const ok[] = {"pass", "fail", "skip", "xfail", "error"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(s, ok[i]) == 0)
			return ok[i];
	return NULL;
}

/* One protocol line from the probe: "O key\tvalue" or "S status\treason". */
static void parse_line(struct slot *s, struct pc_result *r)
{
	char *tab = strchr(s->line, '\t');
	if (s->linelen < 2 || s->line[1] != ' ' || !tab)
		return;
	*tab = 0;
	const char *a = s->line + 2, *b = tab + 1;
	if (s->line[0] == 'O') {
		set_obs(r, a, b);
	} else if (s->line[0] == 'S' && !s->has_status) {
		const char *st = known_status(a);
		s->has_status = true;
		r->status = st ? st : "error";
		snprintf(r->reason, sizeof(r->reason), "%s", st ? b : "probe reported an unknown status");
		if (st && strcmp(st, "skip") == 0 && !b[0]) {
			r->status = "error";
			snprintf(r->reason, sizeof(r->reason), "skip without a reason");
		}
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

/* Read what is there without blocking; returns false at end of file. */
static bool drain(struct slot *s, struct pc_result *r, int *fd, bool is_result)
{
	char buf[4096];
	while (*fd >= 0) {
		ssize_t n = read(*fd, buf, sizeof(buf));
		if (n > 0) {
			if (is_result)
				take_result_bytes(s, r, buf, (size_t)n);
			else
				take_output_bytes(s, buf, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		close(*fd);
		*fd = -1;
	}
	return false;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "pagelab-conform: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* Remove the slot's probe directory; returns e, for error paths. */
static int remove_tmpdir(struct slot *s, int e)
{
	if (nftw(s->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "pagelab-conform: cannot clean %s\n", s->tmpdir);
	return e;
}

void pc_apply_mem_limit(long mib)
{
	if (mib <= 0)
		return;
	struct rlimit rl = {.rlim_cur = (rlim_t)mib << 20, .rlim_max = (rlim_t)mib << 20};
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		fprintf(stderr, "pagelab-conform: setrlimit(RLIMIT_AS): %s\n", strerror(errno));
}

static int spawn_exec(struct run *run, struct slot *s, int res_w, int out_w)
{
	const struct pc_instance *inst = &run->v[s->index];
	char fdarg[16], limit[32];
	snprintf(fdarg, sizeof(fdarg), "%d", CHILD_RESULT_FD);
	snprintf(limit, sizeof(limit), "%ld", run->o->mem_limit_mib);
	char *args[] = {run->self, "--run-one", (char *)inst->id, "--result-fd", fdarg, "--tmpdir", s->tmpdir,
			run->o->mem_limit_mib > 0 ? "--mem-limit" : NULL, limit, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int e = posix_spawn_file_actions_init(&fa);
	if (e)
		return e;
	if ((e = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return e;
	}
	sigset_t none;
	sigemptyset(&none);
	if (!(e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) &&
	    !(e = posix_spawn_file_actions_adddup2(&fa, res_w, CHILD_RESULT_FD)) &&
	    !(e = posix_spawn_file_actions_adddup2(&fa, out_w, 1)) &&
	    !(e = posix_spawn_file_actions_adddup2(&fa, out_w, 2)) &&
	    !(e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK)) &&
	    !(e = posix_spawnattr_setpgroup(&at, 0)) && !(e = posix_spawnattr_setsigmask(&at, &none)))
		e = posix_spawn(&s->pid, run->self, &fa, &at, args, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return e;
}

static int spawn_fork(struct run *run, struct slot *s, int res_w, int out_w, int res_r, int out_r)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		if (setpgid(0, 0) != 0 || dup2(out_w, 1) < 0 || dup2(out_w, 2) < 0)
			_exit(127);
		close(res_r);
		close(out_r);
		pc_apply_mem_limit(run->o->mem_limit_mib);
		pc_run_instance(&run->v[s->index], res_w, s->tmpdir);
	}
	setpgid(pid, pid); /* also in the parent, so a kill of the group never races the child */
	s->pid = pid;
	return 0;
}

/* Start instance `index` in slot s; 0 or errno (the instance is then an error). */
static int start(struct run *run, struct slot *s, size_t index)
{
	memset(s, 0, sizeof(*s));
	s->index = index;
	s->res_fd = s->out_fd = -1;
	const char *tmp = getenv("TMPDIR");
	snprintf(s->tmpdir, sizeof(s->tmpdir), "%s/pagelab-probe.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(s->tmpdir))
		return errno;
	int res[2], out[2];
	if (pipe(res) != 0)
		return remove_tmpdir(s, errno);
	if (pipe(out) != 0) {
		int e = errno;
		close(res[0]);
		close(res[1]);
		return remove_tmpdir(s, e);
	}
	for (int i = 0; i < 2; i++) {
		fcntl(res[i], F_SETFD, FD_CLOEXEC);
		fcntl(out[i], F_SETFD, FD_CLOEXEC);
	}
	s->start = now_s();
	int e = run->use_fork ? EAGAIN : spawn_exec(run, s, res[1], out[1]);
	if (e && !run->use_fork && strcmp(run->o->isolate, "auto") == 0) {
		fprintf(stderr, "pagelab-conform: re-executing %s failed (%s): isolating probes with fork\n",
			run->self, pl_errno_desc(e));
		run->use_fork = true;
	}
	if (run->use_fork)
		e = spawn_fork(run, s, res[1], out[1], res[0], out[0]);
	close(res[1]);
	close(out[1]);
	if (e) {
		close(res[0]);
		close(out[0]);
		return remove_tmpdir(s, e);
	}
	fcntl(res[0], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	s->res_fd = res[0];
	s->out_fd = out[0];
	s->used = true;
	return 0;
}

/* No outcome line: say what happened to the process. */
static void judge_exit(const struct run *run, struct slot *s, struct pc_result *r)
{
	if (s->timed_out) {
		r->status = "timeout";
		snprintf(r->reason, sizeof(r->reason), "no outcome after %d s: killed", run->o->timeout_s);
	} else if (WIFSIGNALED(s->wstatus) && WTERMSIG(s->wstatus) == SIGKILL) {
		r->status = "error";
		snprintf(r->reason, sizeof(r->reason), "killed by SIGKILL (out of memory?)");
	} else if (WIFSIGNALED(s->wstatus)) {
		r->status = "fail";
		snprintf(r->reason, sizeof(r->reason), "crashed: killed by signal %d (%s)", WTERMSIG(s->wstatus),
			 strsignal(WTERMSIG(s->wstatus)));
	} else {
		r->status = "error";
		snprintf(r->reason, sizeof(r->reason), "exited with status %d without reporting an outcome",
			 WEXITSTATUS(s->wstatus));
	}
}

static void finalize(struct run *run, struct slot *s)
{
	struct pc_result *r = &run->r[s->index];
	if (kill(-s->pid, SIGKILL) != 0 && errno != ESRCH)
		fprintf(stderr, "pagelab-conform: kill(-%d): %s\n", (int)s->pid, strerror(errno));
	if (s->res_fd >= 0)
		close(s->res_fd);
	if (s->out_fd >= 0)
		close(s->out_fd);
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
	r->duration_ms = ((s->end ? s->end : now_s()) - s->start) * 1e3;
	remove_tmpdir(s, 0);
	r->complete = true;
	s->used = false;
}

/* Advance one running slot: reap, time out, finish. Returns true when finished. */
static bool step(struct run *run, struct slot *s)
{
	struct pc_result *r = &run->r[s->index];
	bool res_open = drain(s, r, &s->res_fd, true);
	bool out_open = drain(s, r, &s->out_fd, false);
	double t = now_s();
	if (!s->exited) {
		pid_t w = waitpid(s->pid, &s->wstatus, WNOHANG);
		if (w == s->pid) {
			s->exited = true;
			s->end = t;
		} else if (t - s->start > run->o->timeout_s) {
			kill(-s->pid, SIGKILL);
			while (waitpid(s->pid, &s->wstatus, 0) < 0 && errno == EINTR)
				;
			s->exited = s->timed_out = true;
			s->end = t;
		}
	}
	/* A child the probe left behind may hold the pipes open: do not wait for EOF forever. */
	if (s->exited && ((!res_open && !out_open) || t - s->end > GRACE_S)) {
		finalize(run, s);
		return true;
	}
	return false;
}

static void wait_for_io(struct slot *slots, int nslots)
{
	struct pollfd pfd[2 * PC_MAX_JOBS];
	nfds_t n = 0;
	for (int i = 0; i < nslots; i++) {
		if (!slots[i].used)
			continue;
		if (slots[i].res_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = slots[i].res_fd, .events = POLLIN};
		if (slots[i].out_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = slots[i].out_fd, .events = POLLIN};
	}
	if (poll(pfd, n, 20) < 0 && errno != EINTR)
		perror("pagelab-conform: poll");
}

/* PAGELAB_CONFORM_SELF names the binary to re-execute (tests use it to force the fork fallback). */
static void resolve_self(struct run *run, const char *argv0)
{
	const char *forced = getenv("PAGELAB_CONFORM_SELF");
	if (forced && *forced) {
		snprintf(run->self, sizeof(run->self), "%s", forced);
		return;
	}
	ssize_t n = readlink("/proc/self/exe", run->self, sizeof(run->self) - 1);
	if (n > 0) {
		run->self[n] = 0;
		return;
	}
	if (!realpath(argv0, run->self))
		snprintf(run->self, sizeof(run->self), "%s", argv0);
}

/* Interrupted: kill the live probes (their whole groups), and record every
 * unfinished probe as an error, so the JSON still holds what did finish. */
static void interrupt(struct run *run, struct slot *slots, size_t n, size_t *printed)
{
	for (int i = 0; i < run->o->jobs; i++) {
		struct slot *s = &slots[i];
		if (!s->used)
			continue;
		kill(-s->pid, SIGKILL);
		while (!s->exited && waitpid(s->pid, &s->wstatus, 0) < 0 && errno == EINTR)
			;
		s->exited = true;
		s->end = now_s();
		bool reported = s->has_status;
		finalize(run, s);
		if (!reported)
			snprintf(run->r[s->index].reason, sizeof(run->r[s->index].reason),
				 "interrupted by signal %d while running", (int)stop_signal);
		run->r[s->index].status = reported ? run->r[s->index].status : "error";
	}
	for (size_t i = 0; i < n; i++) {
		struct pc_result *r = &run->r[i];
		if (!r->complete || !r->status) {
			r->status = "error";
			snprintf(r->reason, sizeof(r->reason), "not finished: the run was interrupted by signal %d",
				 (int)stop_signal);
			r->complete = true;
		}
	}
	fprintf(stderr, "pagelab-conform: interrupted by signal %d\n", (int)stop_signal);
	for (; *printed < n; (*printed)++)
		if (!run->o->quiet)
			pc_tap_result(*printed, run->v[*printed].id, &run->r[*printed]);
}

static void print_summary(const struct pc_result *r, size_t n, const char *isolation)
{
	size_t c[6];
	pc_count(r, n, c);
	printf("# pagelab-conform: %zu pass, %zu fail, %zu skip, %zu xfail, %zu error, %zu timeout (%zu probes, isolation %s)\n",
	       c[0], c[1], c[2], c[3], c[4], c[5], n, isolation);
}

int pc_run_all(struct pc_options *o, const char *argv0, const struct pc_instance *v, size_t n)
{
	struct run run = {.o = o, .v = v, .use_fork = strcmp(o->isolate, "fork") == 0};
	struct slot *slots = calloc((size_t)o->jobs, sizeof(*slots));
	run.r = calloc(n, sizeof(*run.r));
	if (!slots || !run.r) {
		fputs("pagelab-conform: out of memory\n", stderr);
		return 2;
	}
	if (o->json_path) { /* an unwritable result file is bad usage: say so before running anything */
		struct pl_atomic a;
		int e = pl_atomic_open(&a, o->json_path);
		if (e) {
			fprintf(stderr, "pagelab-conform: cannot write %s: %s\n", o->json_path, pl_errno_desc(e));
			free(slots);
			free(run.r);
			return 2;
		}
		pl_atomic_abort(&a);
	}
	resolve_self(&run, argv0);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
		perror("pagelab-conform: sigaction");
	if (!o->quiet)
		pc_tap_begin(n);
	size_t next = 0, done = 0, printed = 0;
	while (done < n && !stop_signal) {
		for (int i = 0; i < o->jobs && next < n; i++) {
			if (slots[i].used)
				continue;
			int e = start(&run, &slots[i], next);
			if (e) {
				run.r[next].status = "error";
				snprintf(run.r[next].reason, sizeof(run.r[next].reason), "cannot start the probe: %s", pl_errno_desc(e));
				run.r[next].complete = true;
				done++;
			}
			next++;
		}
		wait_for_io(slots, o->jobs);
		for (int i = 0; i < o->jobs; i++)
			if (slots[i].used && step(&run, &slots[i]))
				done++;
		for (; printed < n && run.r[printed].complete; printed++)
			if (!o->quiet)
				pc_tap_result(printed, v[printed].id, &run.r[printed]);
	}
	if (stop_signal) {
		interrupt(&run, slots, n, &printed);
		o->interrupted_by = (int)stop_signal;
	}
	const char *isolation = run.use_fork ? "fork" : "exec";
	print_summary(run.r, n, isolation);
	int status = 0;
	for (size_t i = 0; i < n; i++) {
		const char *st = run.r[i].status;
		if (!strcmp(st, "fail") || !strcmp(st, "error") || !strcmp(st, "timeout"))
			status = 1;
	}
	if (o->json_path) {
		int e = pc_write_json(o->json_path, isolation, v, run.r, n, o);
		if (e) {
			fprintf(stderr, "pagelab-conform: cannot write %s: %s\n", o->json_path, pl_errno_desc(e));
			status = status ? status : 1;
		}
	}
	free(slots);
	free(run.r);
	return stop_signal ? 128 + stop_signal : status;
}
