/* Environment capture every POSIX system can give: uname, the online CPUs, the C library. */
#include "config.h"
#include "env_internal.h"

#include <sys/utsname.h>
#include <unistd.h>
#ifdef HAVE_GNU_LIBC_VERSION_H
#include <gnu/libc-version.h>
#endif

/* Which C library: glibc says so; musl deliberately has no version interface. */
static void libc_members(struct pl_json *j)
{
#ifdef __GLIBC__
	pl_json_kv_str(j, "libc", "glibc");
#ifdef HAVE_GNU_LIBC_VERSION_H
	pl_json_kv_str(j, "libc_version", gnu_get_libc_version());
#endif
#else
	pl_json_kv_str(j, "libc", "musl or other (no version interface)");
#endif
}

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
	libc_members(j);
}
