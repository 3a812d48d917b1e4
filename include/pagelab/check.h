/* pagelab conformance probes.
 *
 * A probe is a function declared once with PC_PROBE (or PC_PROBE_KINDS for a
 * variant per mapping kind); it registers itself at start-up. The runner
 * executes each probe in its own process (re-executing the binary, or fork as
 * a fallback) with a timeout, so a crash, hang or OOM is that probe's outcome.
 *
 * Inside a probe: record facts with pc_observe() (semantic: compared across
 * systems) and pc_measure() (measurements: shown, never a difference), then
 * end with exactly one outcome (each ends the probe process). Returning
 * without an outcome is an error.
 *
 * Verdict classes (DESIGN.md "Verdicts"):
 *   fail            the system accepted a request and did not honour it
 *                   (pc_fail), or refused one the contract says it must
 *                   accept (pc_fail_refused);
 *   skip            unsupported: refused the way it refuses an unknown request
 *                   (pc_skip_unsupported, or pc_refusal deciding between the
 *                   two); unobservable: the channel the probe needs is missing
 *                   or proven unreliable (the pc_obs_* calls skip by
 *                   themselves); prerequisite: the environment lacks
 *                   something (swap, privileges, cores) (pc_skip_prerequisite);
 *   error           the environment broke the probe's set-up (pc_error).
 *
 * Probe ids: "area.probe" plus "/variant", lowercase, naming the flag:
 *   madvise.free.contents_after_retouch/private_anon
 */
#ifndef PAGELAB_CHECK_H
#define PAGELAB_CHECK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagelab/os.h"
#include "pagelab/platform.h"

/* pc_map's "cannot be seen here" (below): FreeBSD has no ENODATA; its own
 * "attribute not found" stands in, never returned by the calls probes make. */
#if !defined(ENODATA) && defined(ENOATTR)
#define ENODATA ENOATTR
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum pc_kind {
	PC_PRIVATE_ANON = 1 << 0,
	PC_SHARED_ANON = 1 << 1,
	PC_PRIVATE_FILE = 1 << 2, /* MAP_PRIVATE of a temporary file */
	PC_SHARED_FILE = 1 << 3,  /* MAP_SHARED of a memfd (shared memory), or a temporary file without memfd */
	PC_THP = 1 << 4,          /* private anonymous, huge-page aligned, MADV_HUGEPAGE; a huge page was seen to back it */
	PC_SHARED_DISK = 1 << 5,  /* MAP_SHARED of a file on a disk file system (the probe's directory) */
	PC_MTHP = 1 << 6,         /* as PC_THP with the largest smaller huge-page size the system gives (mTHP) */
	PC_HUGETLB_PMD = 1 << 7,  /* private anonymous from the hugetlb pool of the PMD size (2 MiB on x86-64) */
	PC_HUGETLB_PUD = 1 << 8,  /* the same from the next larger hugetlb pool (1 GiB on x86-64) */
};
#define PC_KIND_LAST PC_HUGETLB_PUD
#define PC_ANON_KINDS (PC_PRIVATE_ANON | PC_SHARED_ANON)
#define PC_FILE_KINDS (PC_PRIVATE_FILE | PC_SHARED_FILE | PC_SHARED_DISK)
#define PC_HUGETLB_KINDS (PC_HUGETLB_PMD | PC_HUGETLB_PUD)
#define PC_ALL_KINDS (PC_ANON_KINDS | PC_FILE_KINDS | PC_THP | PC_MTHP | PC_HUGETLB_KINDS)

struct pc_ctx;
typedef void (*pc_fn)(struct pc_ctx *ctx);
/* One range of a vectored call (struct iovec's layout, on every system). */
struct pc_iovec {
	void *base;
	size_t len;
};

/* Observation channels: what a probe reads to see what the system did. Each
 * has a channel probe ("channel.NAME...") that the runner runs first; a
 * channel found missing or unreliable makes its users skip (unobservable). */
enum pc_channel {
	PC_CH_NONE = 0,
	PC_CH_RESIDENCY,    /* which pages are resident (mincore kind) */
	PC_CH_RSS,          /* the process's resident set size */
	PC_CH_ZERO_PAGE,    /* whether a page maps the shared zero page */
	PC_CH_PAGE_FLAGS,   /* per-page present/swapped/huge/guard flags (pagemap kind) */
	PC_CH_HUGE_BACKING, /* how much of a range huge pages back */
	PC_CH_FAULT_COUNTS, /* the process's page-fault counters */
	PC_CH_SI_CODE,      /* the fault code delivered with a signal */
	PC_CH_MAPPINGS,     /* the list of mappings (VMAs) */
	PC_CH_BREAK_START,  /* where the program break started */
	PC_CH_COUNT
};
const char *pc_channel_name(enum pc_channel ch);

/* Features: what the running system has, decided by behaviour once per run
 * by the feature probes ("feature.NAME"), never by the build's headers. A
 * feature probe passes when the system does what the feature is (a valid
 * request is accepted), skips (unsupported) when it refuses the request the
 * way it refuses an unknown one, or answers ENOSYS; a probe that needs a
 * missing feature skips with that evidence without running. A feature that
 * exists must then behave: the probes that need it judge that. Each mapping
 * kind is a feature too ("feature.kind.thp"): a kind's variants need it. */
enum pc_feature {
	PC_F_NONE = 0,
	PC_F_MADV_DONTNEED, PC_F_MADV_FREE, PC_F_MADV_COLD, PC_F_MADV_PAGEOUT, PC_F_MADV_WILLNEED,
	PC_F_MADV_REMOVE, PC_F_MADV_POPULATE_READ, PC_F_MADV_POPULATE_WRITE, PC_F_MADV_DONTFORK,
	PC_F_MADV_WIPEONFORK, PC_F_MADV_GUARD, PC_F_MADV_HUGEPAGE, PC_F_MADV_COLLAPSE, PC_F_MADV_MERGEABLE,
	PC_F_MADV_DONTNEED_LOCKED, PC_F_MADV_DONTDUMP,
	PC_F_MAP_FIXED_NOREPLACE, PC_F_MAP_POPULATE, PC_F_MAP_DROPPABLE, PC_F_MAP_GROWSDOWN, PC_F_MAP_LOCKED,
	PC_F_MAP_SHARED_VALIDATE,
	PC_F_MREMAP, PC_F_MREMAP_FIXED, PC_F_MREMAP_DONTUNMAP, PC_F_MREMAP_SEVERAL,
	PC_F_MSEAL, PC_F_MLOCK, PC_F_MLOCK_ONFAULT, PC_F_MLOCKALL_ONFAULT,
	PC_F_USERFAULTFD, PC_F_PIN_VMSPLICE, PC_F_PIN_IO_URING, PC_F_FORCED_WRITE, PC_F_MEMFD_SEALS,
	PC_F_SOFT_DIRTY, PC_F_KSM_PRCTL, PC_F_PROCESS_MADVISE, PC_F_FORK, PC_F_BRK,
	PC_F_KIND_FIRST, /* one per mapping kind, in kind-bit order */
	PC_F_KIND_LAST = PC_F_KIND_FIRST + 8,
	PC_F_COUNT
};
_Static_assert(PC_F_COUNT <= 64, "features are a 64-bit mask");
#define PC_FB(f) (UINT64_C(1) << (f))
const char *pc_feature_name(enum pc_feature f); /* "madv_free", "kind.thp" ... */
/* The feature that is mapping kind `kind` (one kind bit). */
enum pc_feature pc_kind_feature(enum pc_kind kind);

struct pc_probe {
	const char *id;      /* area.probe (variant appended by the runner) */
	const char *summary; /* one line: what is checked */
	pc_fn fn;
	unsigned kinds; /* 0: one plain probe; else one variant per kind bit */
	enum pc_channel proves; /* a channel probe: runs first, and its outcome decides the channel */
	uint64_t needs;         /* PC_FB() of every feature the probe's subject needs */
	enum pc_feature proves_feature; /* a feature probe: runs after the channels, before the rest */
};

void pc_register(const struct pc_probe *probe);

#define PC_CAT2(a, b) a##b
#define PC_CAT(a, b) PC_CAT2(a, b)
#define PC_REGISTER(fn, idstr, text, kindmask, channel, needmask, feature)                              \
	static void fn(struct pc_ctx *ctx);                                                             \
	static const struct pc_probe PC_CAT(pc_probe_, fn) = {idstr, text, fn, kindmask, channel, needmask, feature}; \
	__attribute__((constructor)) static void PC_CAT(pc_reg_, fn)(void)                            \
	{                                                                                               \
		pc_register(&PC_CAT(pc_probe_, fn));                                                    \
	}                                                                                               \
	static void fn(struct pc_ctx *ctx)
/* PC_PROBE(fn, "area.probe", "what is checked"); the _NEEDS forms name the
 * features the probe's subject needs: PC_FB(PC_F_MADV_FREE) | PC_FB(PC_F_FORK). */
#define PC_PROBE_KINDS_NEEDS(fn, idstr, kindmask, needmask, text) \
	PC_REGISTER(fn, idstr, text, kindmask, PC_CH_NONE, needmask, PC_F_NONE)
#define PC_PROBE_NEEDS(fn, idstr, needmask, text) PC_PROBE_KINDS_NEEDS(fn, idstr, 0, needmask, text)
#define PC_PROBE_KINDS(fn, idstr, kindmask, text) PC_PROBE_KINDS_NEEDS(fn, idstr, kindmask, 0, text)
#define PC_PROBE(fn, idstr, text) PC_PROBE_KINDS_NEEDS(fn, idstr, 0, 0, text)
/* PC_CHANNEL_PROBE(fn, "channel.residency.matches_touch", PC_CH_RESIDENCY, "...")
 * passes when the channel answers truly, skips when it is missing, fails when it lies. */
#define PC_CHANNEL_PROBE(fn, idstr, channel, text) PC_REGISTER(fn, idstr, text, 0, channel, 0, PC_F_NONE)
/* PC_FEATURE_PROBE(fn, "feature.madv_free", PC_F_MADV_FREE, "..."): passes when
 * the system has the feature, skips (unsupported, or prerequisite) when not. */
#define PC_FEATURE_PROBE(fn, idstr, feature, text) PC_REGISTER(fn, idstr, text, 0, PC_CH_NONE, 0, feature)

/* ---- outcomes: each ends the probe process ---- */
#if defined(__MINGW32__)
/* mingw-w64's printf follows C99 (%zu) when __USE_MINGW_ANSI_STDIO is set: check against GNU's rules. */
#define PC_NORETURN __attribute__((noreturn))
#define PC_FMT(a, b) __attribute__((format(gnu_printf, a, b)))
#elif defined(__GNUC__)
#define PC_NORETURN __attribute__((noreturn))
#define PC_FMT(a, b) __attribute__((format(printf, a, b)))
#else
#define PC_NORETURN
#define PC_FMT(a, b)
#endif
PC_NORETURN void pc_pass(struct pc_ctx *ctx);
/* Accepted and not honoured. */
PC_NORETURN PC_FMT(2, 3) void pc_fail(struct pc_ctx *ctx, const char *fmt, ...);
/* Refused a request the contract says the system must accept. */
PC_NORETURN PC_FMT(2, 3) void pc_fail_refused(struct pc_ctx *ctx, const char *fmt, ...);
/* Unsupported: refused as an unknown request is refused. Say both answers. */
PC_NORETURN PC_FMT(2, 3) void pc_skip_unsupported(struct pc_ctx *ctx, const char *fmt, ...);
/* The channel this probe needs is missing or unreliable here. */
PC_NORETURN PC_FMT(3, 4) void pc_skip_unobservable(struct pc_ctx *ctx, enum pc_channel ch, const char *fmt, ...);
/* The environment lacks what the probe needs (swap, privileges, cores ...): no verdict. */
PC_NORETURN PC_FMT(2, 3) void pc_skip_prerequisite(struct pc_ctx *ctx, const char *fmt, ...);
/* The system met every contract the probe checks but not a behaviour it
 * expected: what Linux usually does and allocators rely on, that no contract
 * promises (the zero page, huge-page backing, fault-around, RSS details).
 * Say what was expected and what was seen. Never makes a run fail. */
PC_NORETURN PC_FMT(2, 3) void pc_differs(struct pc_ctx *ctx, const char *fmt, ...);
/* A record, not a check: the probe observed what this system chooses where
 * every answer is allowed (addresses, placement), and asserts nothing. */
PC_NORETURN PC_FMT(2, 3) void pc_observed(struct pc_ctx *ctx, const char *fmt, ...);
/* Known, documented deviation that is not this system's bug. */
PC_NORETURN PC_FMT(2, 3) void pc_xfail(struct pc_ctx *ctx, const char *fmt, ...);
/* The probe itself could not run (set-up failed): not a verdict on the system. */
PC_NORETURN PC_FMT(2, 3) void pc_error(struct pc_ctx *ctx, const char *fmt, ...);

/* A request `what` was refused with errno e: skip (unsupported) when the
 * system answers an unknown request of the same call the same way
 * (unknown_e) or says outright it does not support it (ENOSYS, ENOTSUP),
 * else fail (refused). Both answers are recorded. */
PC_NORETURN void pc_refusal(struct pc_ctx *ctx, const char *what, int e, int unknown_e);
/* Skip (unsupported) unless this system knows the advice: madvise(NULL, 0,
 * advice) answers like an advice no system defines. */
void pc_need_advice(struct pc_ctx *ctx, int advice, const char *name);
/* madvise(p, len, advice) that returns only on success; a refusal goes to
 * pc_refusal against an advice no system defines, on the same range. */
void pc_advise(struct pc_ctx *ctx, void *p, size_t len, int advice, const char *name);
/* The errno of madvise with an advice value no system defines, on [p, p+len) (0: accepted). */
int pc_unknown_advice_errno(void *p, size_t len);
/* The errno of an anonymous mmap with a mapping type no system defines (0: accepted). */
int pc_unknown_map_type_errno(void);

/* Record an observed fact (semantic): compared across systems ("contents_after" = "zero"). */
PC_FMT(3, 4) void pc_observe(struct pc_ctx *ctx, const char *key, const char *fmt, ...);
/* Record a measurement (address, byte count, time): shown, never a difference between systems. */
PC_FMT(3, 4) void pc_measure(struct pc_ctx *ctx, const char *key, const char *fmt, ...);

/* Fail with file:line and the expression when cond is false. */
#define PC_CHECK(ctx, cond, ...)                                                 \
	do {                                                                     \
		if (!(cond))                                                     \
			pc_fail((ctx), "%s:%d: %s: %s", __FILE__, __LINE__, #cond, \
				pc_fmt(__VA_ARGS__));                            \
	} while (0)
/* A behaviour (not a contract): when cond is false, remember the first
 * such difference and go on; the probe then ends as `differs` where it
 * would have passed. A later contract failure still fails it. */
#define PC_BEHAVIOUR(ctx, cond, ...)                                             \
	do {                                                                     \
		if (!(cond))                                                     \
			pc_behaviour_differs((ctx), "%s", pc_fmt(__VA_ARGS__));  \
	} while (0)
PC_FMT(2, 3) void pc_behaviour_differs(struct pc_ctx *ctx, const char *fmt, ...);
/* Error (set-up failure) unless an OS call returned 0; e is an errno value.
 * ENOSYS (the call is not implemented here) is unsupported, never an error. */
#define PC_SETUP(ctx, call)                                                      \
	do {                                                                     \
		int pc_e_ = (call);                                              \
		if (pc_e_ != 0)                                                  \
			pc_setup_failed((ctx), pc_e_, "%s:%d: %s", __FILE__, __LINE__, #call); \
	} while (0)
/* A set-up call failed with e: skip (unsupported) for ENOSYS, else error. */
PC_NORETURN PC_FMT(3, 4) void pc_setup_failed(struct pc_ctx *ctx, int e, const char *fmt, ...);
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
	int fd;    /* backing file for file kinds, else -1 */
	int flags; /* the mmap flags it was made with (MAP_SHARED, MAP_HUGETLB ...) */
};
/* Map len bytes read-write of this kind (huge kinds round len up to whole
 * huge pages). File kinds are backed by a file of len bytes of zeros. The thp
 * and mthp kinds are proved first: a write must get a huge page of the kind's
 * size, which is then dropped again, so the range starts untouched. ENOTSUP
 * (with the reason in *why) when the system lacks the kind; EPERM (with the
 * reason) when the environment rules it out (THP disabled, no hugetlb pages
 * reserved, no disk file system, no huge page to be had now); ENODATA when
 * whether a huge page backs it cannot be seen here. */
int pc_map(struct pc_ctx *ctx, enum pc_kind kind, size_t len, struct pc_map *m, const char **why);
/* Like pc_map with the probe's own kind; skips the probe when unavailable and
 * errors when mapping fails. */
void pc_map_or_skip(struct pc_ctx *ctx, size_t len, struct pc_map *m);
/* The same for a kind the probe names itself. */
void pc_map_kind_or_skip(struct pc_ctx *ctx, enum pc_kind kind, size_t len, struct pc_map *m);
void pc_unmap(struct pc_map *m);
/* Writes reach an object that other mappings and processes share (MAP_SHARED kinds). */
bool pc_kind_shared(enum pc_kind kind);
/* Private anonymous memory of any page size: private_anon, thp, mthp, hugetlb. */
bool pc_kind_private_anon(enum pc_kind kind);
/* The smallest unit the kind's mappings can be split at: the base page, or the hugetlb page size. */
size_t pc_kind_granule(enum pc_kind kind);

/* ---- faults ---- */

/* Faults are described by the OS layer (pagelab/os.h): struct pl_fault and
 * its kinds PL_FAULT_UNMAPPED (SEGV_MAPERR; Linux guard regions too),
 * PL_FAULT_ACCESS (SEGV_ACCERR), PL_FAULT_BUS (past the end of a file),
 * PL_FAULT_GUARD (Windows PAGE_GUARD), PL_FAULT_OTHER. */
/* Read (write=false) or write `val` to one byte at p, catching a fault. */
struct pl_fault pc_access(volatile void *p, bool write, unsigned char val);
/* Does the access fault? The signal taken (SIGSEGV, SIGBUS) or 0 when it succeeded. */
int pc_access_faults(volatile void *p, bool write, unsigned char val);
/* "none", "SIGSEGV", "SIGBUS" or "other": pc_access_faults' result, for observations. */
const char *pc_fault_name(int sig);
/* Access p and require a fault of `want` (PL_FAULT_OTHER: any fault). Observes
 * "<label>" = the fault's name; fails when there is no fault or, where the
 * si_code channel is trusted, a fault of another kind. */
void pc_expect_fault(struct pc_ctx *ctx, const char *label, volatile void *p, bool write, enum pl_fault_kind want);
/* Access p and require no fault; observes "<label>" = "none" or the fault. */
void pc_expect_access(struct pc_ctx *ctx, const char *label, volatile void *p, bool write, unsigned char val);

/* The lowest and highest bytes in [p, p+len); returns true when all equal b. */
bool pc_all_bytes(const void *p, size_t len, unsigned char b);
/* Fill [p, p+len) with a pattern derived from seed; check it with pc_check_fill. */
void pc_fill(void *p, size_t len, unsigned seed);
bool pc_check_fill(const void *p, size_t len, unsigned seed);
/* "old", "zero", "mixed" or "other": what [p, p+len) holds compared with pc_fill(seed). */
const char *pc_contents(const void *p, size_t len, unsigned seed);

/* Bytes of memory to measure RSS changes over: enough pages that faults
 * elsewhere in the process are noise (4096 of 4 KiB, 1024 of 64 KiB). */
size_t pc_rss_window(void);
/* "dropped" (by 3/4 of len or more), "unchanged" (by under 1/4) or "partial": how RSS moved. */
const char *pc_rss_change(size_t before, size_t after, size_t len);
/* "raised", "unchanged" or "partly raised": the same for a rise. */
const char *pc_rss_rise(size_t before, size_t after, size_t len);
/* Per page: [p, p+len) reads the page's bytes in old, or all zero. */
bool pc_pages_old_or_zero(const void *p, const void *old, size_t len);
/* Ask the system to reclaim [p, p+len) now, where it can be asked (MADV_PAGEOUT
 * drops clean and lazily freed pages even without swap); true when it took the request. */
bool pc_force_reclaim(void *p, size_t len);

/* mlock [p, p+len) or skip (prerequisite): refused (RLIMIT_MEMLOCK), or accepted without locking
 * anything (sanitizer runtimes make mlock a no-op that returns 0). */
void pc_lock_or_skip(struct pc_ctx *ctx, void *p, size_t len);
/* Skip (prerequisite) in a build whose sanitizer reserves terabytes of shadow address space
 * (AddressSanitizer): calls over the whole process (mlockall(MCL_CURRENT), process-wide unmerging)
 * would walk all of it for minutes. `what` names the call. */
void pc_skip_if_shadow_memory(struct pc_ctx *ctx, const char *what);
/* Run fn(arg) in a forked child, wait for it; returns its exit status (0..255),
 * or 128+signal when killed. Skips (unsupported) where the system has no fork
 * (ENOSYS, Windows); -1 with errno set when fork fails otherwise. */
int pc_in_child(int (*fn)(void *arg), void *arg);

/* A forked child running alongside its parent, with a pipe each way for
 * tokens that order the two processes' steps. */
struct pc_fork {
	long pid;
	int to_child, from_child; /* the parent's ends */
};
/* Fork: the child runs fn(arg, in, out) with its own ends and exits with its
 * return value (0..255); the parent returns with f filled. Errors the probe
 * when fork fails; skips it (unsupported) where the system has no fork. */
void pc_fork_with_pipes(struct pc_ctx *ctx, int (*fn)(void *arg, int in, int out), void *arg, struct pc_fork *f);
/* Send one token, or wait for one: 0, or EPIPE when the other side is gone. */
int pc_token_send(int fd);
int pc_token_await(int fd);
/* Close the parent's ends and wait: the child's exit status (0..255); errors
 * the probe when the child did not exit by itself. */
int pc_fork_wait(struct pc_ctx *ctx, struct pc_fork *f);

/* Unlock what pc_lock_or_skip locked (munlock, VirtualUnlock): 0 or errno. */
int pc_unlock(void *p, size_t len);
/* Have the system itself write len bytes of src into p (read(2) from a pipe,
 * ReadFile on Windows), so any fault is taken inside a system call: 0 or errno. */
int pc_system_write(void *p, const void *src, size_t len);
/* How pc_force_reclaim asks ("MADV_PAGEOUT", "VirtualUnlock"), for observations. */
const char *pc_reclaim_name(void);

/* ---- observation through a channel ----
 * Each returns only with a trusted answer. A channel missing on this system
 * (ENOTSUP) or found unreliable by its channel probe makes the probe skip
 * (unobservable); any other failure is an error. */
size_t pc_obs_resident_pages(struct pc_ctx *ctx, const void *p, size_t len);
void pc_obs_residency(struct pc_ctx *ctx, const void *p, size_t len, unsigned char *vec);
size_t pc_obs_rss(struct pc_ctx *ctx);
bool pc_obs_zero_page(struct pc_ctx *ctx, const void *p);
/* The PL_PF_* flags of the page at p; skips unless every flag in `need` is one this system reports. */
unsigned pc_obs_page_flags(struct pc_ctx *ctx, const void *p, unsigned need);
size_t pc_obs_huge_bytes(struct pc_ctx *ctx, const void *p, size_t len);
void pc_obs_fault_counts(struct pc_ctx *ctx, uint64_t *minor, uint64_t *major);
size_t pc_obs_mapping_count(struct pc_ctx *ctx, const void *p, size_t len);
uintptr_t pc_obs_break_start(struct pc_ctx *ctx);
/* For probes where the channel only adds an observation: false (and nothing
 * recorded as a verdict) when it cannot be trusted here. */
bool pc_try_rss(struct pc_ctx *ctx, size_t *bytes);
bool pc_try_zero_page(struct pc_ctx *ctx, const void *p, bool *is_zero);
bool pc_try_mapping_count(struct pc_ctx *ctx, const void *p, size_t len, size_t *count);
/* Is the channel trusted in this run (present, and its channel probe passed)? why gets the reason when not. */
bool pc_channel_trusted(enum pc_channel ch, const char **why);

/* ---- features ---- */
/* Has the running system the feature? True where the feature probe showed it,
 * or did not run in this process's run (then the probe judges by itself). */
bool pc_feature_present(enum pc_feature f);
/* Skip unless the feature is there: with the feature probe's class and evidence. */
void pc_need_feature(struct pc_ctx *ctx, enum pc_feature f);
/* For feature probes: madvise(advice) on a valid range of `kind` must be
 * accepted; a refusal like an unknown advice's, or ENOSYS, is a missing
 * feature (skip), another refusal means the system knows the advice (pass). */
PC_NORETURN void pc_feature_advice(struct pc_ctx *ctx, enum pc_kind kind, int advice, const char *name);
/* For feature probes: end by an OS call's answer: 0 passes; ENOSYS, ENOTSUP or
 * `absent_e` (the answer that means "unknown request" for this call) skip
 * (unsupported); EPERM/EACCES skip (prerequisite), also where absent_e is the
 * same answer (a process refused the call is refused any request); anything else passes with
 * the answer observed (the system knows the call; the probes judge it). */
PC_NORETURN void pc_feature_answer(struct pc_ctx *ctx, const char *what, int e, int absent_e);

/* ---- the environment ---- */
/* Is THP usable (enabled not "never")?  why gets the reason when not. */
bool pc_thp_available(const char **why);
/* Skip unless THP is usable: unsupported where the system has none, prerequisite where a setting forbids it. */
void pc_need_thp(struct pc_ctx *ctx);
/* Is swap (or another store for anonymous pages) configured? false when unknown. */
bool pc_swap_available(void);
/* madvise with a raw advice value, returning 0 or errno: for values the
 * headers may lack (new kernels' advice is probed by number). */
int pc_madvise(void *p, size_t len, int advice);

/* ---- the system's own calls, on every build ----
 * Each returns 0 or an errno value, and ENOSYS where this build's system has
 * no such call, so that "not implemented" is what the running system (or its
 * headers) answered and probes need no #ifdef. Constants the probes name
 * (MADV_*, MAP_*, MREMAP_*, MLOCK_*, MCL_*) come from pl_abi.h, which defines
 * each on every build: a value the system refuses where its headers lack it. */
int pc_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr, void **out);
int pc_mseal(void *p, size_t len, unsigned long flags);
int pc_mlock2(const void *p, size_t len, unsigned flags);
int pc_mlockall(int flags);
int pc_munlockall(void);
/* munlock(2), as the system call itself where this build can name it. */
int pc_munlock(const void *p, size_t len);
/* mprotect(2) as the system call itself, past the C library's wrapper. */
int pc_mprotect_raw(void *p, size_t len, int prot);
/* process_madvise(2) on this process (through a pidfd): *advised gets the bytes advised. */
int pc_process_madvise_self(const struct pc_iovec *v, size_t n, int advice, size_t *advised);
/* prctl(2): *ret gets the call's non-negative return value. */
int pc_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5, int *ret);
/* sbrk(3) through the C library: *old gets the break before the change. */
int pc_sbrk(intptr_t increment, void **old);
/* brk(2) through the C library. */
int pc_brk(void *addr);
/* memfd_create(2): a file in memory. */
int pc_memfd(const char *name, unsigned flags, int *fd);

#ifdef __cplusplus
}
#endif
#endif
