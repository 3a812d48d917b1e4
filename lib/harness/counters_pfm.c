/* libpfm4 event names for the perf_event counter back-end: any event the
 * library knows for this CPU ("cycles:u", "DTLB_LOAD_MISSES.WALK_COMPLETED"),
 * counted at user and kernel level unless the name says otherwise. */
#include "config.h"
#include "counters_impl.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <perfmon/pfmlib_perf_event.h>
#include <string.h>

static int pfm_init(void)
{
	return pfm_initialize() == PFM_SUCCESS ? 0 : ENOTSUP;
}

static int pfm_encode(const char *name, struct perf_event_attr *attr)
{
	pfm_perf_encode_arg_t arg;
	memset(&arg, 0, sizeof(arg));
	memset(attr, 0, sizeof(*attr));
	arg.attr = attr;
	arg.size = sizeof(arg);
	int r = pfm_get_os_event_encoding(name, PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT, &arg);
	return r == PFM_SUCCESS ? 0 : r == PFM_ERR_NOTFOUND ? ENOENT : EINVAL;
}

static const struct pl_perf_encoder pfm_encoder = {"libpfm4", pfm_init, pfm_encode};

__attribute__((constructor)) static void register_pfm(void)
{
	pl_perf_set_encoder(&pfm_encoder);
}
