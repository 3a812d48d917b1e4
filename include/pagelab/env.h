/* Environment capture: what every result file records about the machine it
 * came from (OS, kernel, libc, compiler, page sizes, THP, virtualisation ...).
 * Shared by the conformance JSON ("env") and the benchmark JSON ("context"). */
#ifndef PAGELAB_ENV_H
#define PAGELAB_ENV_H

#include <stddef.h>

#include "pagelab/json.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write the environment as members of the JSON object that is open in j. */
void pl_env_json_members(struct pl_json *j);
/* Read a whole small file (e.g. under /proc or /sys) into buf, trailing
 * newline removed; 0 or errno. */
int pl_read_file(const char *path, char *buf, size_t size);
/* "EINVAL (Invalid argument)": the symbolic name and the message of an errno value. */
const char *pl_errno_desc(int e);
/* "EINVAL", or "errno 123" for values without a known name. */
const char *pl_errno_name(int e);

/* The bracketed choice in a sysfs selector such as "always [madvise] never". */
int pl_sysfs_choice(const char *path, char *buf, size_t size);
/* Why transparent huge pages cannot be used here (no PMD size, settings
 * unreadable, enabled = never), or NULL when they can. */
const char *pl_thp_unavailable(void);

#ifdef __cplusplus
}
#endif
#endif
