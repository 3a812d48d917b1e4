/* pagelab-fuzz: the driver. Generates sequences (seeded random, bounded
 * exhaustive, or one replay file), runs each in a child of its own with a
 * deadline, shrinks what fails and reports each distinct failure once, as a
 * minimal sequence with its replay text and standalone C reproducer.
 * Output: JSON lines on stdout; --json FILE, one document at the end. */
#include "fuzz.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FINDINGS 16

struct options {
	uint64_t seed;
	double duration, timeout;
	long count;
	int length, exhaustive, max_findings, shrink_budget;
	const char *replay, *json, *out_dir;
	bool shrink, features_only;
};

struct finding {
	char signature[96];
	struct fz_failure failure;
	struct fz_op ops[FZ_MAX_OPS];
	int n, original_n;
	long sequence, occurrences;
	uint64_t seed;
};

static struct options opt = {.seed = 1, .timeout = 10, .count = -1, .length = 24, .max_findings = MAX_FINDINGS,
			     .shrink_budget = 2000, .shrink = true};
static struct fz_features features;
static struct fz_arena arena;
static struct finding findings[MAX_FINDINGS];
static int nfindings;
static long sequences, not_reported; /* failures of a new signature after --max-findings */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- one sequence in a child of its own ---- */

static void child_main(int fd, const struct fz_op *ops, int n)
{
	struct fz_failure f;
	struct fz_arena a = arena;
	if (setpgid(0, 0) != 0 || (features.brk && fz_arena_brk(&a) != 0))
		_exit(2);
	if (!features.brk)
		a.brk0 = NULL;
	_exit(fz_run(&a, &features, ops, n, fd, &f) ? 0 : 1);
}

/* Everything the child writes, until it closes the channel or the deadline passes. false: the deadline. */
static bool collect(int fd, struct fz_failure *f, size_t *got)
{
	double end = now() + opt.timeout;
	char buf[512];
	*got = 0;
	for (;;) {
		int left = (int)((end - now()) * 1000);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (left <= 0)
			return false;
		int r = poll(&pfd, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0;
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return true;
		size_t take = *got < sizeof(*f) ? sizeof(*f) - *got : 0;
		take = (size_t)k < take ? (size_t)k : take;
		memcpy((char *)f + *got, buf, take);
		*got += take;
	}
}

static void ended(pid_t pid, bool in_time, size_t got, struct fz_failure *f)
{
	int st = 0;
	/* The group may be gone already (ESRCH): the child is then killed alone. */
	if (!in_time && kill(-pid, SIGKILL) != 0 && kill(pid, SIGKILL) != 0 && errno != ESRCH)
		perror("pagelab-fuzz: kill");
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!in_time) {
		memset(f, 0, sizeof(*f));
		f->check = C_HANG, f->op = -1, f->page = -1;
		snprintf(f->msg, sizeof(f->msg), "the sequence did not end within %g s", opt.timeout);
	} else if (got < sizeof(*f) && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		memset(f, 0, sizeof(*f));
		f->check = C_CRASH, f->op = -1, f->page = -1;
		snprintf(f->msg, sizeof(f->msg), "the sequence's process ended with status 0x%x (signal %d)", st,
			 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	}
}

/* Run ops from an empty arena in a new child. true: it failed, as *f says. */
static bool run_one(const struct fz_op *ops, int n, struct fz_failure *f)
{
	int p[2];
	size_t got = 0;
	sequences++;
	memset(f, 0, sizeof(*f));
	if (pipe(p) != 0) {
		perror("pagelab-fuzz: pipe");
		exit(2);
	}
	if (fflush(NULL) != 0)
		perror("pagelab-fuzz: flushing output");
	pid_t pid = fork();
	if (pid < 0) {
		perror("pagelab-fuzz: fork");
		exit(2);
	}
	if (pid == 0) {
		if (close(p[0]) != 0)
			_exit(2);
		child_main(p[1], ops, n);
	}
	/* Its own process group from the start (it sets it too), so a kill at the deadline reaches its children. */
	if (setpgid(pid, pid) != 0 && errno != EACCES && errno != ESRCH)
		perror("pagelab-fuzz: setpgid");
	if (close(p[1]) != 0)
		perror("pagelab-fuzz: close");
	bool in_time = collect(p[0], f, &got);
	if (close(p[0]) != 0)
		perror("pagelab-fuzz: close");
	ended(pid, in_time, got, f);
	return f->check != C_NONE;
}

/* ---- output ---- */

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void replay_text(FILE *out, const struct finding *fd)
{
	char line[128];
	fprintf(out, "# pagelab-fuzz replay: %s\n# %s (after step %d)\n", fd->signature, fd->failure.msg,
		fd->failure.op + 1);
	for (int i = 0; i < fd->n; i++) {
		fz_op_format(&fd->ops[i], line, sizeof(line));
		fprintf(out, "%s\n", line);
	}
}

/* A text built by fn, as a JSON string. */
static void json_text(FILE *out, const struct finding *fd, int (*fn)(FILE *, const struct finding *))
{
	char *buf = NULL;
	size_t size = 0;
	FILE *mem = open_memstream(&buf, &size);
	if (!mem || fn(mem, fd) != 0 || fclose(mem) != 0) {
		fputs("null", out);
		free(buf);
		return;
	}
	json_string(out, buf);
	free(buf);
}

static int replay_fn(FILE *out, const struct finding *fd)
{
	replay_text(out, fd);
	return 0;
}

static int repro_fn(FILE *out, const struct finding *fd)
{
	return fz_write_reproducer(out, fd->ops, fd->n, &fd->failure, &features, arena.ps);
}

static void finding_json(FILE *out, const struct finding *fd)
{
	char line[128];
	fprintf(out, "{\"signature\": ");
	json_string(out, fd->signature);
	fprintf(out, ", \"check\": \"%s\", \"message\": ", fz_check_name(fd->failure.check));
	json_string(out, fd->failure.msg);
	fprintf(out, ", \"failing_step\": %d, \"found_at\": {\"seed\": %llu, \"sequence\": %ld}, "
		"\"original_length\": %d, \"occurrences\": %ld, \"minimal\": [", fd->failure.op + 1,
		(unsigned long long)fd->seed, fd->sequence, fd->original_n, fd->occurrences);
	for (int i = 0; i < fd->n; i++) {
		fz_op_format(&fd->ops[i], line, sizeof(line));
		fputs(i ? ", " : "", out);
		json_string(out, line);
	}
	fprintf(out, "], \"replay\": ");
	json_text(out, fd, replay_fn);
	fprintf(out, ", \"reproducer\": ");
	json_text(out, fd, repro_fn);
	fputc('}', out);
}

static void features_json(FILE *out)
{
	fprintf(out, "{");
	for (int a = 0; a < A_N; a++)
		fprintf(out, "%s\"madv_%s\": %s", a ? ", " : "", fz_advice_name(a), features.advice[a] ? "true" : "false");
	fprintf(out, ", \"mremap_dontunmap\": %s, \"brk\": %s, \"mlock\": %s, \"mseal\": %s}",
		features.dontunmap ? "true" : "false", features.brk ? "true" : "false", features.mlock ? "true" : "false",
		features.mseal ? "true" : "false");
}

static const char *mode_name(void)
{
	return opt.replay ? "replay" : opt.exhaustive ? "exhaustive" : "random";
}

static void summary_json(FILE *out, double seconds)
{
	fprintf(out, "\"mode\": \"%s\", \"seed\": %llu, \"length\": %d, \"exhaustive_depth\": %d, \"page_size\": %zu, "
		"\"arena_pages\": %d, \"features\": ", mode_name(), (unsigned long long)opt.seed, opt.length,
		opt.exhaustive, arena.ps, FZ_PAGES);
	features_json(out);
	fprintf(out, ", \"sequences\": %ld, \"seconds\": %.3f, \"sequences_per_second\": %.1f, "
		"\"failures_not_reported\": %ld", sequences, seconds, seconds > 0 ? (double)sequences / seconds : 0.0,
		not_reported);
}

static void write_files(const struct finding *fd, int k)
{
	char path[4096];
	const char *ext[2] = {"replay", "c"};
	if (mkdir(opt.out_dir, 0777) != 0 && errno != EEXIST)
		fprintf(stderr, "pagelab-fuzz: %s: %s\n", opt.out_dir, strerror(errno));
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/finding-%d.%s", opt.out_dir, k + 1, ext[i]);
		FILE *f = fopen(path, "w");
		if (!f) {
			fprintf(stderr, "pagelab-fuzz: %s: %s\n", path, strerror(errno));
			continue;
		}
		int e = i == 0 ? replay_fn(f, fd) : repro_fn(f, fd);
		if (fclose(f) != 0 || e)
			fprintf(stderr, "pagelab-fuzz: %s: could not write\n", path);
	}
}

static int write_document(double seconds)
{
	FILE *f = fopen(opt.json, "w");
	if (!f) {
		fprintf(stderr, "pagelab-fuzz: %s: %s\n", opt.json, strerror(errno));
		return 2;
	}
	fprintf(f, "{\"schema\": \"pagelab.fuzz/1\", ");
	summary_json(f, seconds);
	fprintf(f, ", \"findings\": [");
	for (int i = 0; i < nfindings; i++) {
		fputs(i ? ",\n" : "\n", f);
		finding_json(f, &findings[i]);
	}
	fprintf(f, "]}\n");
	return fclose(f) == 0 ? 0 : 2;
}

/* ---- findings ---- */

struct sought {
	const char *signature;
};

static bool fails_alike(const struct fz_op *ops, int n, void *ctx)
{
	const struct sought *s = ctx;
	struct fz_failure f;
	char sig[96];
	if (!run_one(ops, n, &f))
		return false;
	fz_signature(ops, &f, sig, sizeof(sig));
	return strcmp(sig, s->signature) == 0;
}

/* A failure: counted if its signature is known, else shrunk, rerun for its final details, and reported. */
static void found(const struct fz_op *ops, int n, const struct fz_failure *f, uint64_t seed, long seq)
{
	char sig[96];
	fz_signature(ops, f, sig, sizeof(sig));
	for (int i = 0; i < nfindings; i++)
		if (strcmp(findings[i].signature, sig) == 0) {
			findings[i].occurrences++;
			return;
		}
	if (nfindings >= opt.max_findings) {
		not_reported++;
		return;
	}
	struct finding *fd = &findings[nfindings++];
	memset(fd, 0, sizeof(*fd));
	snprintf(fd->signature, sizeof(fd->signature), "%s", sig);
	memcpy(fd->ops, ops, (size_t)n * sizeof(*ops));
	fd->n = fd->original_n = n;
	fd->failure = *f;
	fd->seed = seed, fd->sequence = seq, fd->occurrences = 1;
	struct sought s = {fd->signature};
	if (opt.shrink && f->check != C_SETUP) {
		fd->n = fz_shrink(fd->ops, n, fails_alike, &s, &features, arena.ps, opt.shrink_budget);
		if (!run_one(fd->ops, fd->n, &fd->failure)) /* flaky: keep what the original run saw */
			fd->failure = *f, fd->n = n, memcpy(fd->ops, ops, (size_t)n * sizeof(*ops));
	}
	fprintf(stdout, "{\"event\": \"finding\", \"finding\": ");
	finding_json(stdout, fd);
	fprintf(stdout, "}\n");
	fflush(stdout);
	if (opt.out_dir)
		write_files(fd, nfindings - 1);
}

/* ---- modes ---- */

/* Until the duration is over; without one, until --max-findings distinct findings (then counting more
 * occurrences of known ones only would be all that is left to do). */
static bool time_left(double t0)
{
	return opt.duration > 0 ? now() - t0 < opt.duration : nfindings < opt.max_findings;
}

static void random_mode(double t0)
{
	struct fz_op ops[FZ_MAX_OPS];
	struct fz_failure f;
	long limit = opt.count >= 0 ? opt.count : opt.duration > 0 ? -1 : 1000;
	for (long i = 0; (limit < 0 || i < limit) && time_left(t0); i++) {
		uint64_t st = opt.seed ^ ((uint64_t)i * 0xd1b54a32d192ed03ULL);
		uint64_t seed = fz_rand(&st);
		int n = fz_generate(seed, opt.length, &features, arena.ps, ops);
		if (run_one(ops, n, &f))
			found(ops, n, &f, seed, i);
	}
}

/* Every sequence of up to depth letters whose every prefix is judgeable; a failing prefix is not extended. */
static void exhaustive(struct fz_op *seq, int n, const struct fz_op *alpha, int na, double t0)
{
	struct fz_failure f;
	for (int k = 0; k < na && time_left(t0); k++) {
		seq[n] = alpha[k];
		if (!fz_seq_valid(seq, n + 1, &features, arena.ps))
			continue;
		if (run_one(seq, n + 1, &f)) {
			found(seq, n + 1, &f, 0, sequences);
			continue;
		}
		if (n + 1 < opt.exhaustive)
			exhaustive(seq, n + 1, alpha, na, t0);
	}
}

static int read_replay(const char *path, struct fz_op *ops)
{
	char line[256];
	int n = 0;
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "pagelab-fuzz: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int ln = 1; fgets(line, sizeof(line), f); ln++) {
		char *p = line + strspn(line, " \t");
		if (*p == '#' || *p == '\n' || !*p)
			continue;
		if (n >= FZ_MAX_OPS || fz_op_parse(p, &ops[n]) != 0) {
			fprintf(stderr, "pagelab-fuzz: %s:%d: not an operation: %s", path, ln, p);
			(void)fclose(f); /* read only: nothing to lose */
			return -1;
		}
		n++;
	}
	if (ferror(f) || fclose(f) != 0) {
		fprintf(stderr, "pagelab-fuzz: %s: read error\n", path);
		return -1;
	}
	if (!fz_seq_valid(ops, n, &features, arena.ps)) {
		fprintf(stderr, "pagelab-fuzz: %s: the model cannot judge this sequence on this system\n", path);
		return -1;
	}
	return n;
}

static int replay_mode(void)
{
	struct fz_op ops[FZ_MAX_OPS];
	struct fz_failure f;
	int n = read_replay(opt.replay, ops);
	if (n < 0)
		return 2;
	if (run_one(ops, n, &f))
		found(ops, n, &f, 0, 0);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: pagelab-fuzz [--seed N] [--duration S | --count N] [--length L] [--exhaustive DEPTH]\n"
			"                    [--replay FILE] [--no-shrink] [--shrink-budget N] [--timeout S]\n"
			"                    [--max-findings N] [--json FILE] [--out DIR] [--features]\n");
}

static bool parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		if (!strcmp(a, "--no-shrink"))
			opt.shrink = false, takes = false;
		else if (!strcmp(a, "--features"))
			opt.features_only = true, takes = false;
		else if (!v)
			return false;
		else if (!strcmp(a, "--seed"))
			opt.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--duration"))
			opt.duration = strtod(v, NULL);
		else if (!strcmp(a, "--count"))
			opt.count = strtol(v, NULL, 10);
		else if (!strcmp(a, "--length"))
			opt.length = atoi(v);
		else if (!strcmp(a, "--exhaustive"))
			opt.exhaustive = atoi(v);
		else if (!strcmp(a, "--replay"))
			opt.replay = v;
		else if (!strcmp(a, "--timeout"))
			opt.timeout = strtod(v, NULL);
		else if (!strcmp(a, "--max-findings"))
			opt.max_findings = atoi(v);
		else if (!strcmp(a, "--shrink-budget"))
			opt.shrink_budget = atoi(v);
		else if (!strcmp(a, "--json"))
			opt.json = v;
		else if (!strcmp(a, "--out"))
			opt.out_dir = v;
		else
			return false;
		i += takes;
	}
	return opt.length >= 1 && opt.length <= FZ_MAX_OPS && opt.exhaustive >= 0 && opt.exhaustive <= 6 &&
	       opt.timeout > 0 && opt.max_findings >= 1 && opt.max_findings <= MAX_FINDINGS;
}

int main(int argc, char **argv)
{
	if (!parse_args(argc, argv)) {
		usage();
		return 2;
	}
	long ps = sysconf(_SC_PAGESIZE);
	arena.ps = ps > 0 ? (size_t)ps : 4096;
	fz_probe_features(&features, arena.ps);
	int e = fz_arena_open(&arena, &features);
	if (e) {
		fprintf(stderr, "pagelab-fuzz: setting up the arena: %s\n", strerror(e));
		return 2;
	}
	double t0 = now();
	printf("{\"event\": \"start\", \"mode\": \"%s\", \"features\": ", mode_name());
	features_json(stdout);
	printf("}\n");
	if (opt.features_only)
		return 0;
	int rc = 0;
	if (opt.replay) {
		rc = replay_mode();
	} else if (opt.exhaustive) {
		struct fz_op alpha[64], seq[8];
		exhaustive(seq, 0, alpha, fz_alphabet(alpha, 64), t0);
	} else {
		random_mode(t0);
	}
	double seconds = now() - t0;
	printf("{\"event\": \"summary\", ");
	summary_json(stdout, seconds);
	printf(", \"findings\": %d}\n", nfindings);
	if (opt.json && write_document(seconds) != 0)
		rc = 2;
	return rc ? rc : nfindings ? 1 : 0;
}
