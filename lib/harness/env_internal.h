/* Shared by the environment files (env.c, env_<family>.c, env_<platform>.c). */
#ifndef PAGELAB_ENV_INTERNAL_H
#define PAGELAB_ENV_INTERNAL_H

#include "pagelab/env.h"

/* uname, the online CPUs and the C library (env_posix.c). */
void pl_env_posix_members(struct pl_json *j);

#endif
