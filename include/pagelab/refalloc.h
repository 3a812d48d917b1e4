/* refalloc: the reference allocator. Every OS interaction goes through the
 * page layer (platform.h), so the allocator exercises each release, guard and
 * pattern primitive the way real allocators do.
 *
 * Configuration is chosen once, before the first allocation: ra_configure(),
 * or the environment (read at the first allocation when ra_configure was not
 * called):
 *   REFALLOC_RELEASE = none | release | release_zero | reusable | decommit
 *   REFALLOC_INIT    = none | zero | pattern
 *   REFALLOC_PATTERN = byte, e.g. 0xAA
 *   REFALLOC_PATTERN_VIA = auto | memset | refpage
 *   REFALLOC_RETAIN  = bytes of free memory kept before it is released
 *   REFALLOC_STATS   = 1 dumps statistics to stderr at exit
 * A malformed value is reported on stderr and the default is kept. */
#ifndef PAGELAB_REFALLOC_H
#define PAGELAB_REFALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ra_release {
	RA_RELEASE_NONE,      /* free memory stays resident */
	RA_RELEASE_RELEASE,   /* pl_release: may go back, contents old-or-zero */
	RA_RELEASE_ZERO,      /* pl_release_zero: goes back, reads zero */
	RA_RELEASE_REUSABLE,  /* pl_reusable, then pl_reuse before it is handed out again */
	RA_RELEASE_DECOMMIT,  /* pl_decommit: no access until pl_commit on reuse */
};

enum ra_init {
	RA_INIT_NONE,    /* contents of new allocations are whatever the memory holds */
	RA_INIT_ZERO,    /* every allocation reads zero */
	RA_INIT_PATTERN, /* every allocation reads the pattern byte */
};

enum ra_pattern_via {
	RA_PATTERN_AUTO,    /* refpage where the page layer has a real one, else memset */
	RA_PATTERN_MEMSET,  /* write the pattern on each allocation */
	RA_PATTERN_REFPAGE, /* fresh pages read as the pattern (pl_map_pattern); reused memory is written */
};

struct ra_config {
	enum ra_release release;
	enum ra_init init;
	enum ra_pattern_via via;
	unsigned char pattern;
	size_t retain;   /* free bytes kept before releasing; 0 releases at once */
	bool stats_at_exit;
};

/* The defaults: release_zero, init none, pattern 0xAA via auto, 1 MiB retained. */
void ra_config_default(struct ra_config *c);
/* Defaults overridden by the REFALLOC_* environment. EINVAL (and a line on
 * stderr) when a variable is malformed; c then holds the other values. */
int ra_config_from_env(struct ra_config *c);
/* Set the configuration; EBUSY once the allocator has started, EINVAL for
 * out-of-range values, ENOTSUP when via=refpage has no page-layer support. */
int ra_configure(const struct ra_config *c);
/* The configuration in effect (starting the allocator when needed). */
void ra_config_get(struct ra_config *c);
/* The page-layer pattern mode serving refpage ("uffd", "memset" ...), or "none". */
const char *ra_pattern_mode(void);
/* Why pattern init writes the pattern with memset instead (e.g. only a
 * user-mode userfaultfd, whose faults inside system calls fail), or NULL. */
const char *ra_pattern_note(void);

const char *ra_release_name(enum ra_release r);
const char *ra_init_name(enum ra_init i);
const char *ra_via_name(enum ra_pattern_via v);
/* Parse a name (as printed by the *_name functions); 0 or EINVAL. */
int ra_release_parse(const char *s, enum ra_release *out);
int ra_init_parse(const char *s, enum ra_init *out);
int ra_via_parse(const char *s, enum ra_pattern_via *out);

/* ---- the malloc family; NULL with errno ENOMEM on failure ---- */
void *ra_malloc(size_t size);
void *ra_calloc(size_t n, size_t size);
void *ra_realloc(void *p, size_t size);
/* Aligned allocation: align a power of two (any size, including above a page). */
void *ra_memalign(size_t align, size_t size);
int ra_posix_memalign(void **out, size_t align, size_t size);
/* Free: a pointer this allocator did not return, or one already freed, is
 * reported on stderr and the process aborts. */
void ra_free(void *p);
/* Bytes usable at p (at least the size asked for); 0 for NULL. */
size_t ra_usable_size(const void *p);
/* Does p point at the start of a live allocation of this allocator? */
bool ra_owns(const void *p);

/* ---- statistics ---- */
struct ra_stats {
	size_t in_use;    /* bytes handed out and not yet freed (usable sizes) */
	size_t mapped;    /* bytes of address space mapped read-write for the heap */
	size_t resident;  /* heap bytes resident now (page-layer residency query) */
	size_t released;  /* bytes given back by the release policy, in total */
	uint64_t release_calls;
	uint64_t minor_faults; /* process page faults since start */
	uint64_t major_faults;
};
/* Fill *s; 0 or errno (resident is 0 when the residency query is unsupported). */
int ra_stats(struct ra_stats *s);
/* Write the statistics as one line to file descriptor fd. */
void ra_stats_dump(int fd);
/* Release all free memory now, by the configured policy; 0 or errno. */
int ra_trim(void);

#ifdef __cplusplus
}
#endif
#endif
