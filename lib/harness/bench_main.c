/* pagelab-bench: runs the registered benchmarks with the chosen back-end
 * and writes Google Benchmark's JSON. Exit 0 done, 1 run failed, 2 bad usage. */
#include "config.h"
#include "bench_impl.h"
#include "pagelab/counters.h"
#include "pagelab/topology.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void list_tests(void)
{
	const struct pb_instance *ins;
	int n = pb_instances(&ins);
	/* The name first (tools take the first word), then what the benchmark measures and from which state. */
	for (int i = 0; i < n; i++)
		printf("%-44s %s\n", ins[i].name, ins[i].b->what);
}

/* Pinning and topology: unsupported is recorded and the run goes on. */
static int place(void)
{
	int e = pl_topo_init();
	if (e)
		fprintf(stderr, "pagelab-bench: topology unavailable: %s\n", strerror(e));
	if (pb_opts.pin_cpu != -2) {
		e = pl_topo_pin_measuring(pb_opts.pin_cpu);
		if (e == EINVAL && pb_opts.pin_cpu >= 0) {
			fprintf(stderr, "pagelab-bench: --pin=%d is not a usable core's first CPU\n", pb_opts.pin_cpu);
			return 2;
		}
		if (e)
			fprintf(stderr, "pagelab-bench: not pinned: %s\n", strerror(e));
	}
	if (pb_opts.topology_out) {
		e = pl_topo_write_xml(pb_opts.topology_out);
		if (e == ENOTSUP)
			fprintf(stderr, "pagelab-bench: no topology XML without hwloc\n");
		else if (e) {
			fprintf(stderr, "pagelab-bench: cannot write %s: %s\n", pb_opts.topology_out, strerror(e));
			return 1;
		}
	}
	return 0;
}

/* Google Benchmark unless --backend=portable or it is not built in. */
static int run_backend(void)
{
#ifdef HAVE_GBENCH
	if (!pb_opts.backend || strcmp(pb_opts.backend, "gbench") == 0)
		return pb_gbench_run();
#endif
	return pb_portable_run();
}

/* The file is written even after a failed run: it keeps what finished and names what did not. */
static int run(void)
{
	int e = run_backend();
	if (e)
		fprintf(stderr, "pagelab-bench: run failed: %s\n", strerror(e));
	int we = pb_report_end();
	if (we)
		fprintf(stderr, "pagelab-bench: cannot write %s: %s\n", pb_opts.out, strerror(we));
	return e || we ? 1 : 0;
}

int main(int argc, char **argv)
{
	int r = pb_parse_args(argc, argv);
	if (r)
		return r < 0 ? 0 : r;
	char err[256];
	if (pl_counters_configure(pb_opts.counters, pb_opts.counter_source, err, sizeof(err)) != 0) {
		fprintf(stderr, "pagelab-bench: %s\n", err);
		return 2;
	}
	if (pb_select(err, sizeof(err)) != 0) {
		fprintf(stderr, "pagelab-bench: %s\n", err);
		return 2;
	}
	if (pb_opts.list_tests) {
		list_tests();
		return 0;
	}
	r = place();
	return r ? r : run();
}
