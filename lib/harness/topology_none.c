/* The topology back-end of last resort: every online CPU counts as a core of
 * package 0, and threads cannot be bound. */
#include "config.h"
#include "topology_impl.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static int none_load(struct pl_topo_data *t)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	t->ncores = t->npus = n > 0 ? (int)(n < PL_TOPO_MAX_CORES ? n : PL_TOPO_MAX_CORES) : 1;
	for (int i = 0; i < t->ncores; i++)
		t->core[i] = (struct pl_topo_core){i, 0};
	return 0;
}

static void none_source(char *buf, size_t len)
{
	snprintf(buf, len, "sysconf");
}

static int none_bind(int pu, bool *verified)
{
	(void)pu;
	*verified = false;
	return ENOTSUP;
}

static int none_unbind(void)
{
	return ENOTSUP;
}

static const struct pl_topo_backend none_backend = {0, none_load, none_source, none_bind, none_unbind, NULL};

__attribute__((constructor)) static void register_none(void)
{
	pl_topo_register(&none_backend);
}
