/* This program's path and the world it runs in, on a POSIX system without a
 * file of its own: realpath of argv[0], and uname. */
#include "config.h"
#include "pagelab/os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>

int pl_self_path(const char *argv0, char *out, size_t size)
{
	char buf[4096];
	if (!realpath(argv0, buf))
		return errno;
	int n = snprintf(out, size, "%s", buf);
	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}

int pl_world(char *out, size_t size)
{
	struct utsname u;
	if (uname(&u) != 0)
		return errno;
	int n = snprintf(out, size, "%s %s %s %s", u.sysname, u.release, u.version, u.machine);
	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}
