/* The sched_setaffinity topology back-end (glibc and musl on Linux, some
 * BSDs): every CPU in this process's affinity mask counts as a core of
 * package 0; binding sets the calling thread's mask. */
#include "config.h"
#include "topology_impl.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>

static cpu_set_t initial;

static int affinity_load(struct pl_topo_data *t)
{
	if (sched_getaffinity(0, sizeof(initial), &initial) != 0)
		return errno;
	for (int cpu = 0; cpu < CPU_SETSIZE && t->ncores < PL_TOPO_MAX_CORES; cpu++)
		if (CPU_ISSET(cpu, &initial))
			t->core[t->ncores++] = (struct pl_topo_core){cpu, 0};
	t->npus = t->ncores;
	return 0;
}

static void affinity_source(char *buf, size_t len)
{
	snprintf(buf, len, "sched_getaffinity");
}

static int affinity_bind(int pu, bool *verified)
{
	cpu_set_t want, got;
	CPU_ZERO(&want);
	CPU_SET(pu, &want);
	*verified = false;
	if (sched_setaffinity(0, sizeof(want), &want) != 0)
		return errno;
	*verified = sched_getaffinity(0, sizeof(got), &got) == 0 && CPU_EQUAL(&want, &got);
	return 0;
}

static int affinity_unbind(void)
{
	return sched_setaffinity(0, sizeof(initial), &initial) == 0 ? 0 : errno;
}

static const struct pl_topo_backend affinity_backend = {1, affinity_load, affinity_source, affinity_bind,
							 affinity_unbind, NULL};

__attribute__((constructor)) static void register_affinity(void)
{
	pl_topo_register(&affinity_backend);
}
