/* The Windows topology back-end: logical processors and their packages from
 * GetLogicalProcessorInformation, threads bound with SetThreadAffinityMask
 * (processor group 0: the first 64 processors). */
#include "config.h"
#include "topology_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

#define MAX_INFO 512

/* The package of each processor in group 0, from the processor-package relations. */
static void packages(struct pl_topo_data *t)
{
	SYSTEM_LOGICAL_PROCESSOR_INFORMATION info[MAX_INFO];
	DWORD len = sizeof(info);
	if (!GetLogicalProcessorInformation(info, &len))
		return;
	int pkg = 0;
	for (DWORD i = 0; i < len / sizeof(info[0]); i++) {
		if (info[i].Relationship != RelationProcessorPackage)
			continue;
		for (int c = 0; c < t->ncores; c++)
			if (info[i].ProcessorMask & ((ULONG_PTR)1 << t->core[c].pu))
				t->core[c].package = pkg;
		pkg++;
	}
	t->npackages = pkg;
}

static int win_load(struct pl_topo_data *t)
{
	DWORD_PTR process_mask, system_mask;
	if (!GetProcessAffinityMask(GetCurrentProcess(), &process_mask, &system_mask))
		return EIO;
	t->ncores = 0;
	for (int pu = 0; pu < (int)(sizeof(DWORD_PTR) * 8) && t->ncores < PL_TOPO_MAX_CORES; pu++)
		if (process_mask & ((DWORD_PTR)1 << pu))
			t->core[t->ncores++] = (struct pl_topo_core){pu, 0};
	t->npus = t->ncores;
	packages(t);
	return t->ncores ? 0 : ENOENT;
}

static void win_source(char *buf, size_t len)
{
	snprintf(buf, len, "GetLogicalProcessorInformation");
}

static int win_bind(int pu, bool *verified)
{
	DWORD_PTR want = (DWORD_PTR)1 << pu;
	*verified = false;
	if (pu < 0 || pu >= (int)(sizeof(DWORD_PTR) * 8) || !SetThreadAffinityMask(GetCurrentThread(), want))
		return EINVAL;
	/* Setting it again returns what it was: the mask just set, when the binding holds. */
	*verified = SetThreadAffinityMask(GetCurrentThread(), want) == want;
	return 0;
}

static int win_unbind(void)
{
	DWORD_PTR process_mask, system_mask;
	if (!GetProcessAffinityMask(GetCurrentProcess(), &process_mask, &system_mask) ||
	    !SetThreadAffinityMask(GetCurrentThread(), process_mask))
		return EIO;
	return 0;
}

static const struct pl_topo_backend win_backend = {1, win_load, win_source, win_bind, win_unbind, NULL};

__attribute__((constructor)) static void register_windows(void)
{
	pl_topo_register(&win_backend);
}
