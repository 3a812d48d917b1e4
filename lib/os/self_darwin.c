/* This program's path and the world it runs in, on Darwin: dyld's record of
 * the executable, uname, and whether a debugger traces the process (P_TRACED
 * in kern.proc.pid). */
#include "config.h"
#include "pagelab/os.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/proc.h>
#include <sys/sysctl.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <mach-o/dyld.h>

int pl_self_path(const char *argv0, char *out, size_t size)
{
	char buf[4096];
	uint32_t len = sizeof(buf);
	const char *path = _NSGetExecutablePath(buf, &len) == 0 ? buf : argv0;
	char *real = realpath(path, NULL);
	if (!real)
		return errno;
	int n = snprintf(out, size, "%s", real);
	free(real);
	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}

static bool traced(void)
{
	struct kinfo_proc kp;
	size_t len = sizeof(kp);
	int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)getpid()};
	if (sysctl(mib, 4, &kp, &len, NULL, 0) != 0 || len != sizeof(kp))
		return false;
	return (kp.kp_proc.p_flag & P_TRACED) != 0;
}

int pl_world(char *out, size_t size)
{
	struct utsname u;
	if (uname(&u) != 0)
		return errno;
	int n = snprintf(out, size, "%s %s %s; traced %s", u.sysname, u.release, u.machine, traced() ? "yes" : "no");
	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}
