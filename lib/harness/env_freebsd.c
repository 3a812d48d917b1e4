/* Environment capture on FreeBSD: what POSIX gives, and sysctl's account of
 * the CPU, memory, superpages and ASLR. */
#include "config.h"
#include "env_internal.h"

#include <sys/types.h>
#include <sys/sysctl.h>

/* key: a string sysctl, when it can be read. */
static void kv_sysctl_str(struct pl_json *j, const char *key, const char *name)
{
	char buf[256];
	size_t len = sizeof(buf) - 1;
	if (sysctlbyname(name, buf, &len, NULL, 0) != 0)
		return;
	buf[len < sizeof(buf) ? len : sizeof(buf) - 1] = 0;
	pl_json_kv_str(j, key, buf);
}

/* key: an int sysctl, when it can be read. */
static void kv_sysctl_int(struct pl_json *j, const char *key, const char *name)
{
	int v = 0;
	size_t len = sizeof(v);
	if (sysctlbyname(name, &v, &len, NULL, 0) == 0 && len == sizeof(v))
		pl_json_kv_int(j, key, v);
}

void pl_env_os_members(struct pl_json *j)
{
	pl_env_posix_members(j);
	kv_sysctl_str(j, "cpu_model", "hw.model");
	kv_sysctl_int(j, "superpages_enabled", "vm.pmap.pg_ps_enabled");
	kv_sysctl_int(j, "aslr", "kern.elf64.aslr.enable");
	kv_sysctl_int(j, "overcommit", "vm.overcommit");
}
