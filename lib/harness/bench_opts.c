/* Command-line flags of pagelab-bench: Google Benchmark's that matter, plus
 * pagelab's. Both back-ends read the same parsed options. */
#include "config.h"
#include "bench_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: pagelab-bench [flags]\n"
	"  --benchmark_filter=REGEX        run matching benchmarks (-REGEX: all but those)\n"
	"  --benchmark_repetitions=N       runs per benchmark (default 5)\n"
	"  --benchmark_min_time=T[s]|Nx    minimum time per run, or N iterations\n"
	"  --benchmark_min_warmup_time=T   warm-up before the first run\n"
	"  --benchmark_out=FILE            write results as JSON (Google Benchmark schema)\n"
	"  --benchmark_out_format=json     the only format written\n"
	"  --benchmark_enable_random_interleaving[=true|false]\n"
	"  --benchmark_list_tests[=true|false]\n"
	"  --counters=LIST|default|none    events per iteration (e.g. page-faults,cycles:u)\n"
	"  --counter_source=auto|perf|rusage\n"
	"  --pin=CPU|auto|none             pin the measuring thread (auto: last core)\n"
	"  --profile=quick|full            quick: the whole suite in minutes; full: thorough\n"
	"  --backend=gbench|portable       back-end (when both are built in)\n"
	"  --topology_out=FILE             write the hwloc topology as XML\n";

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "pagelab-bench: %s '%s' (see --help)\n", what, arg);
	return 2;
}

/* "--name=value" or "--name": the value, "" for a bare flag, NULL if no match. */
static const char *flag_value(const char *arg, const char *name)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n) != 0)
		return NULL;
	return arg[n] == '=' ? arg + n + 1 : arg[n] == 0 ? "" : NULL;
}

static int parse_bool(const char *v, bool *out)
{
	if (!v[0] || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*out = false;
	else
		return EINVAL;
	return 0;
}

static int parse_min_time(const char *v)
{
	char *end;
	errno = 0;
	double t = strtod(v, &end);
	if (errno || end == v || t <= 0)
		return EINVAL;
	if (strcmp(end, "x") == 0 && t == (double)(int64_t)t) {
		pb_opts.fixed_iterations = (int64_t)t;
		return 0;
	}
	if (*end && strcmp(end, "s") != 0)
		return EINVAL;
	pb_opts.min_time = t;
	return 0;
}

static int parse_int(const char *v, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return EINVAL;
	*out = x;
	return 0;
}

/* The flags with a value to check; 0, or 2 after the error line. */
static int parse_one(const char *a)
{
	const char *v;
	long x;
	if ((v = flag_value(a, "--benchmark_filter")))
		pb_opts.filter = v;
	else if ((v = flag_value(a, "--benchmark_repetitions")))
		return parse_int(v, 1, 1000000, &x) ? bad("bad repetition count", a) : (pb_opts.repetitions = (int)x, 0);
	else if ((v = flag_value(a, "--benchmark_min_time")))
		return parse_min_time(v) ? bad("bad minimum time", a) : 0;
	else if ((v = flag_value(a, "--benchmark_min_warmup_time"))) {
		char *end;
		pb_opts.min_warmup = strtod(v, &end);
		return end == v || (*end && strcmp(end, "s") != 0) || pb_opts.min_warmup < 0 ? bad("bad warm-up time", a) : 0;
	} else if ((v = flag_value(a, "--benchmark_out")) && v[0])
		pb_opts.out = v;
	else if ((v = flag_value(a, "--benchmark_out_format")))
		return strcmp(v, "json") ? bad("only json is written, not", v) : 0;
	else if ((v = flag_value(a, "--benchmark_enable_random_interleaving")))
		return parse_bool(v, &pb_opts.random_interleaving) ? bad("bad boolean", a) : 0;
	else if ((v = flag_value(a, "--benchmark_list_tests")))
		return parse_bool(v, &pb_opts.list_tests) ? bad("bad boolean", a) : 0;
	else if ((v = flag_value(a, "--counters")) && v[0])
		pb_opts.counters = v;
	else if ((v = flag_value(a, "--counter_source")) && v[0])
		pb_opts.counter_source = v;
	else if ((v = flag_value(a, "--pin")) && v[0]) {
		if (strcmp(v, "none") == 0 || strcmp(v, "auto") == 0)
			pb_opts.pin_cpu = v[0] == 'n' ? -2 : -1;
		else if (parse_int(v, 0, 1 << 20, &x) == 0)
			pb_opts.pin_cpu = (int)x;
		else
			return bad("bad --pin (a CPU number, auto or none)", a);
	} else if ((v = flag_value(a, "--profile")) && v[0]) {
		if (strcmp(v, "quick") && strcmp(v, "full"))
			return bad("unknown profile", v);
		pb_opts.profile = v[0] == 'q' ? PB_QUICK : PB_FULL;
	} else if ((v = flag_value(a, "--backend")) && v[0]) {
#ifdef HAVE_GBENCH
		if (strcmp(v, "gbench") && strcmp(v, "portable"))
#else
		if (strcmp(v, "portable"))
#endif
			return bad("back-end not built in", v);
		pb_opts.backend = v;
	} else if ((v = flag_value(a, "--topology_out")) && v[0])
		pb_opts.topology_out = v;
	else
		return bad("unknown flag", a);
	return 0;
}

int pb_parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return -1;
		}
		int r = parse_one(argv[i]);
		if (r)
			return r;
	}
	return 0;
}
