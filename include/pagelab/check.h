/* pagelab conformance probes.
 *
 * A probe is a function declared once with PC_PROBE (or PC_PROBE_KINDS for a
 * variant per mapping kind); it registers itself at start-up. The runner
 * executes each probe in its own process (re-executing the binary, or fork as
 * a fallback) with a timeout, so a crash, hang or OOM is that probe's outcome.
 *
 * Inside a probe: record facts with pc_observe(), then end with exactly one of
 * pc_pass / pc_fail / pc_skip / pc_xfail / pc_error (each returns from the
 * process: it does not come back). Returning without an outcome is an error.
 *
 * Probe ids: "area.probe" plus "/variant", lowercase, naming the flag:
 *   madvise.free.contents_after_retouch/private_anon
 */
#ifndef PAGELAB_CHECK_H
#define PAGELAB_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "pagelab/platform.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pc_kind {
	PC_PRIVATE_ANON = 1 << 0,
	PC_SHARED_ANON = 1 << 1,
	PC_PRIVATE_FILE = 1 << 2, /* MAP_PRIVATE of a temporary file */
	PC_SHARED_FILE = 1 << 3,  /* MAP_SHARED of a memfd or temporary file */
	PC_THP = 1 << 4,          /* private anonymous, 2 MiB aligned, MADV_HUGEPAGE */
};
#define PC_ANON_KINDS (PC_PRIVATE_ANON | PC_SHARED_ANON)
#define PC_FILE_KINDS (PC_PRIVATE_FILE | PC_SHARED_FILE)
#define PC_ALL_KINDS (PC_ANON_KINDS | PC_FILE_KINDS | PC_THP)

struct pc_ctx;
typedef void (*pc_fn)(struct pc_ctx *ctx);

struct pc_probe {
	const char *id;      /* area.probe (variant appended by the runner) */
	const char *summary; /* one line: what is checked */
	pc_fn fn;
	unsigned kinds; /* 0: one plain probe; else one variant per kind bit */
};

void pc_register(const struct pc_probe *probe);

#define PC_CAT2(a, b) a##b
#define PC_CAT(a, b) PC_CAT2(a, b)
/* PC_PROBE(fn, "area.probe", "what is checked") */
#define PC_PROBE_KINDS(fn, idstr, kindmask, text)                            \
	static void fn(struct pc_ctx *ctx);                                  \
	static const struct pc_probe PC_CAT(pc_probe_, fn) = {idstr, text, fn, kindmask}; \
	__attribute__((constructor)) static void PC_CAT(pc_reg_, fn)(void) \
	{                                                                    \
		pc_register(&PC_CAT(pc_probe_, fn));                         \
	}                                                                    \
	static void fn(struct pc_ctx *ctx)
#define PC_PROBE(fn, idstr, text) PC_PROBE_KINDS(fn, idstr, 0, text)

/* ---- outcomes: each ends the probe process ---- */
#if defined(__GNUC__)
#define PC_NORETURN __attribute__((noreturn))
#define PC_FMT(a, b) __attribute__((format(printf, a, b)))
#else
#define PC_NORETURN
#define PC_FMT(a, b)
#endif
PC_NORETURN void pc_pass(struct pc_ctx *ctx);
PC_NORETURN PC_FMT(2, 3) void pc_fail(struct pc_ctx *ctx, const char *fmt, ...);
/* Unsupported feature: always say why (ENOSYS, EINVAL for an unknown flag, needs swap ...). */
PC_NORETURN PC_FMT(2, 3) void pc_skip(struct pc_ctx *ctx, const char *fmt, ...);
/* Known, documented deviation that is not this system's bug. */
PC_NORETURN PC_FMT(2, 3) void pc_xfail(struct pc_ctx *ctx, const char *fmt, ...);
/* The probe itself could not run (set-up failed): not a verdict on the system. */
PC_NORETURN PC_FMT(2, 3) void pc_error(struct pc_ctx *ctx, const char *fmt, ...);

/* Record an observed fact: key/value, shown in reports ("contents_after" = "zero"). */
PC_FMT(3, 4) void pc_observe(struct pc_ctx *ctx, const char *key, const char *fmt, ...);

/* Fail with file:line and the expression when cond is false. */
#define PC_CHECK(ctx, cond, ...)                                                 \
	do {                                                                     \
		if (!(cond))                                                     \
			pc_fail((ctx), "%s:%d: %s: %s", __FILE__, __LINE__, #cond, \
				pc_fmt(__VA_ARGS__));                            \
	} while (0)
/* Error (set-up failure) unless an OS call returned 0; e is an errno value. */
#define PC_SETUP(ctx, call)                                                      \
	do {                                                                     \
		int pc_e_ = (call);                                              \
		if (pc_e_ != 0)                                                  \
			pc_error((ctx), "%s:%d: %s: %s", __FILE__, __LINE__, #call, \
				 pc_strerror(pc_e_));                            \
	} while (0)
PC_FMT(1, 2) const char *pc_fmt(const char *fmt, ...); /* static buffer per probe process */
const char *pc_strerror(int e); /* "ENOSYS (Function not implemented)" */

/* ---- context ---- */
enum pc_kind pc_kind(const struct pc_ctx *ctx); /* 0 for a plain probe */
const char *pc_kind_name(enum pc_kind kind);    /* "private_anon", ... */
const char *pc_id(const struct pc_ctx *ctx);    /* full id with variant */
/* A scratch directory private to this probe, removed afterwards. */
const char *pc_tmpdir(struct pc_ctx *ctx);

/* ---- helpers ---- */

struct pc_map {
	void *addr;
	size_t len;
	enum pc_kind kind;
	int fd; /* backing file for file kinds, else -1 */
};
/* Map len bytes read-write of this kind. File kinds are backed by a file of
 * len bytes of zeros. ENOTSUP (with a skip reason in *why) when the system
 * lacks the kind (e.g. THP off). */
int pc_map(struct pc_ctx *ctx, enum pc_kind kind, size_t len, struct pc_map *m, const char **why);
/* Like pc_map with the probe's own kind; skips the probe when unavailable and
 * errors when mapping fails. */
void pc_map_or_skip(struct pc_ctx *ctx, size_t len, struct pc_map *m);
void pc_unmap(struct pc_map *m);

/* Does reading (write=false) or writing one byte at p fault? Returns the signal
 * taken (SIGSEGV, SIGBUS) or 0 when the access succeeded. Writes store `val`. */
int pc_access_faults(volatile void *p, bool write, unsigned char val);
/* "none", "SIGSEGV", "SIGBUS" or "other": pc_access_faults' result, for observations. */
const char *pc_fault_name(int sig);
/* The lowest and highest bytes in [p, p+len); returns true when all equal b. */
bool pc_all_bytes(const void *p, size_t len, unsigned char b);
/* Fill [p, p+len) with a pattern derived from seed; check it with pc_check_fill. */
void pc_fill(void *p, size_t len, unsigned seed);
bool pc_check_fill(const void *p, size_t len, unsigned seed);
/* "old", "zero", "mixed" or "other": what [p, p+len) holds compared with pc_fill(seed). */
const char *pc_contents(const void *p, size_t len, unsigned seed);

/* Per page: [p, p+len) reads the page's bytes in old, or all zero. */
bool pc_pages_old_or_zero(const void *p, const void *old, size_t len);
/* Ask the system to reclaim [p, p+len) now, where it can be asked (MADV_PAGEOUT
 * drops clean and lazily freed pages even without swap); true when it took the request. */
bool pc_force_reclaim(void *p, size_t len);

/* Run fn(arg) in a forked child, wait for it; returns its exit status (0..255),
 * or 128+signal when killed. Error -1 with errno set when fork fails. */
int pc_in_child(int (*fn)(void *arg), void *arg);

/* Is THP usable (enabled not "never")?  why gets the reason when not. */
bool pc_thp_available(const char **why);
/* Is swap configured (and enabled)? */
bool pc_swap_available(void);
/* madvise with a raw advice value, returning 0 or errno: for values the
 * headers may lack (new kernels' advice is probed by number). */
int pc_madvise(void *p, size_t len, int advice);

#ifdef __cplusplus
}
#endif
#endif
