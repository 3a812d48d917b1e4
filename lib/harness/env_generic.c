/* Environment capture on a POSIX system without a file of its own: uname and sysconf. */
#include "config.h"
#include "pagelab/env.h"

#include <sys/utsname.h>
#include <unistd.h>

void pl_env_os_members(struct pl_json *j)
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
