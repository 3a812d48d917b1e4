/* Environment capture on Darwin: what POSIX gives, and sysctl's account of
 * the product version, the CPU, memory and translation (Rosetta). */
#include "config.h"
#include "env_internal.h"

#include <stdint.h>
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

void pl_env_os_members(struct pl_json *j)
{
	int translated = 0;
	size_t len = sizeof(translated);
	pl_env_posix_members(j);
	kv_sysctl_str(j, "macos_version", "kern.osproductversion");
	kv_sysctl_str(j, "cpu_model", "machdep.cpu.brand_string");
	/* An x86_64 build under Rosetta 2 runs translated: its costs are the translator's too. */
	if (sysctlbyname("sysctl.proc_translated", &translated, &len, NULL, 0) == 0 && len == sizeof(translated))
		pl_json_kv_bool(j, "translated", translated != 0);
}
