/* This program's path and the world it runs in, on FreeBSD: the kernel's
 * record of the executable (kern.proc.pathname), uname, and whether a
 * debugger traces the process (P_TRACED in kern.proc.pid). */
#include "config.h"
#include "pagelab/os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/param.h>
#include <sys/proc.h>
#include <sys/sysctl.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <unistd.h>

int pl_self_path(const char *argv0, char *out, size_t size)
{
	int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1};
	size_t len = size;
	if (sysctl(mib, 4, out, &len, NULL, 0) == 0 && len > 1)
		return 0;
	if (!realpath(argv0, out))
		return errno;
	return 0;
}

static bool traced(void)
{
	struct kinfo_proc kp;
	size_t len = sizeof(kp);
	int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)getpid()};
	if (sysctl(mib, 4, &kp, &len, NULL, 0) != 0 || len != sizeof(kp))
		return false;
	return (kp.ki_flag & P_TRACED) != 0;
}

int pl_world(char *out, size_t size)
{
	struct utsname u;
	if (uname(&u) != 0)
		return errno;
	int n = snprintf(out, size, "%s %s %s; traced %s", u.sysname, u.release, u.machine, traced() ? "yes" : "no");
	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}
