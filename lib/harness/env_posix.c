/* Environment capture every POSIX system can give: uname and the online CPUs. */
#include "config.h"
#include "env_internal.h"

#include <sys/utsname.h>
#include <unistd.h>

void pl_env_posix_members(struct pl_json *j)
{
	struct utsname u;
	if (uname(&u) == 0) {
		pl_json_kv_str(j, "os", u.sysname);
		pl_json_kv_str(j, "kernel", u.release);
		pl_json_kv_str(j, "kernel_version", u.version);
		pl_json_kv_str(j, "arch", u.machine);
		pl_json_kv_str(j, "hostname", u.nodename);
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n > 0)
		pl_json_kv_int(j, "online_cpus", n);
}
