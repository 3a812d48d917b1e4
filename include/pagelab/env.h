/* Environment capture: what every result file records about the machine it
 * came from (OS, kernel, libc, compiler, page sizes, THP, virtualisation ...).
 * Shared by the conformance JSON ("env") and the benchmark JSON ("context").
 * env.c holds what is the same everywhere; env_<platform>.c what the OS can tell. */
#ifndef PAGELAB_ENV_H
#define PAGELAB_ENV_H

#include <stddef.h>

#include "pagelab/json.h"
#include "pagelab/os.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write the environment as members of the JSON object that is open in j. */
void pl_env_json_members(struct pl_json *j);
/* The members only this OS can tell (env_<platform>.c). */
void pl_env_os_members(struct pl_json *j);
/* "EINVAL (Invalid argument)": the symbolic name and the message of an errno value. */
const char *pl_errno_desc(int e);
/* "EINVAL", or "errno 123" for values without a known name. */
const char *pl_errno_name(int e);

#ifdef __cplusplus
}
#endif
#endif
