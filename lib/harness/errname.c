/* Symbolic errno names: reports say "EINVAL", which a kernel developer greps for. */
#include "pagelab/env.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define E(x) { x, #x }
static const struct { int e; const char *name; } names[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG), E(ENOEXEC),
	E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY),
	E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE),
	E(EMFILE), E(ENOTTY), E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS), E(EPIPE),
	E(ERANGE), E(ENOSYS), E(EOVERFLOW), E(ENOTSUP), E(EOPNOTSUPP), E(ETIMEDOUT),
	E(ENAMETOOLONG), E(EDEADLK),
};
#undef E

/* A few rotating buffers, so that two results can appear in one printf. */
#define SLOTS 4

const char *pl_errno_name(int e)
{
	static _Thread_local char buf[SLOTS][32];
	static _Thread_local unsigned next;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == e)
			return names[i].name;
	char *b = buf[next++ % SLOTS];
	snprintf(b, sizeof(buf[0]), "errno %d", e);
	return b;
}

const char *pl_errno_desc(int e)
{
	static _Thread_local char buf[SLOTS][128];
	static _Thread_local unsigned next;
	char *b = buf[next++ % SLOTS];
	const char *text = strerror(e);
	/* C libraries without a text for an errno value (Windows' for ENOTSUP) get the name alone. */
	if (strncmp(text, "Unknown error", 13) == 0)
		snprintf(b, sizeof(buf[0]), "%s", pl_errno_name(e));
	else
		snprintf(b, sizeof(buf[0]), "%s (%s)", pl_errno_name(e), text);
	return b;
}
