/* Environment capture on a POSIX system without a file of its own: what POSIX gives. */
#include "config.h"
#include "env_internal.h"

void pl_env_os_members(struct pl_json *j)
{
	pl_env_posix_members(j);
}
