/* The probe side of the conformance harness: what runs inside the probe's own
 * process. Outcomes and observations go to the runner as lines on the result
 * channel (portable: the channel is written through pagelab/os.h):
 *   "H world\t"         the handshake, before the probe runs
 *   "O key\tvalue"      a semantic observation
 *   "M key\tvalue"      a measurement
 *   "C channel\t"       an observation channel the probe used
 *   "S status[:class[:channel]]\treason"  the outcome; the process then exits.
 * The POSIX helpers probes use (mappings, madvise, fork) are in conform_posix.c.
 */
#include "conform_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pagelab/env.h"
#include "pagelab/os.h"

/* One protocol line with tabs and newlines in the text folded to spaces. */
static void send_line(struct pc_ctx *ctx, char tag, const char *a, const char *b)
{
	char line[PC_LINE_MAX];
	int n = snprintf(line, sizeof(line), "%c %s\t%s", tag, a, b);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) - 1 ? (size_t)n : sizeof(line) - 2;
	for (size_t i = 2; i < len; i++)
		if (line[i] == '\n' || (line[i] == '\t' && i != 2 + strlen(a)))
			line[i] = ' ';
	line[len] = '\n';
	(void)pl_channel_write(ctx->result, line, len + 1); /* the runner went away: nothing left to tell */
}

void pc_handshake(struct pc_ctx *ctx, const char *world)
{
	char w[PC_WORLD_MAX];
	snprintf(w, sizeof(w), "%s", world);
	for (char *c = w; *c; c++)
		if (*c == '\t' || *c == '\n')
			*c = ' ';
	send_line(ctx, 'H', w, "");
}

static PC_NORETURN void finish(struct pc_ctx *ctx, const char *status, const char *fmt, va_list ap)
{
	char reason[PC_LINE_MAX / 2] = "";
	if (fmt)
		vsnprintf(reason, sizeof(reason), fmt, ap);
	send_line(ctx, 'S', status, reason);
	fflush(NULL);
	_Exit(0);
}

#define FINISH(status)                          \
	do {                                    \
		va_list ap;                     \
		va_start(ap, fmt);              \
		finish(ctx, status, fmt, ap);   \
	} while (0)

char pc_differs_reason[512];

void pc_pass(struct pc_ctx *ctx)
{
	if (pc_differs_reason[0])
		pc_differs(ctx, "%s", pc_differs_reason);
	send_line(ctx, 'S', "pass", "");
	fflush(NULL);
	_Exit(0);
}

void pc_differs(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("differs:behaviour"); }
void pc_observed(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("observed"); }

void pc_behaviour_differs(struct pc_ctx *ctx, const char *fmt, ...)
{
	char what[sizeof(pc_differs_reason)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	pc_observe(ctx, "behaviour_differs", "%s", what);
	if (!pc_differs_reason[0])
		snprintf(pc_differs_reason, sizeof(pc_differs_reason), "%s", what);
}

void pc_setup_failed(struct pc_ctx *ctx, int e, const char *fmt, ...)
{
	char where[PC_LINE_MAX / 4];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(where, sizeof(where), fmt, ap);
	va_end(ap);
	if (e == ENOSYS)
		pc_skip_unsupported(ctx, "%s: ENOSYS: not implemented here", where);
	pc_error(ctx, "%s: %s", where, pc_strerror(e));
}
void pc_fail(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("fail:not_honoured"); }
void pc_fail_refused(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("fail:refused"); }
void pc_skip_unsupported(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("skip:unsupported"); }
void pc_skip_prerequisite(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("skip:prerequisite"); }
void pc_xfail(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("xfail"); }
void pc_error(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("error:environment"); }
void pc_error_harness(struct pc_ctx *ctx, const char *fmt, ...) { FINISH("error:harness"); }

void pc_skip_unobservable(struct pc_ctx *ctx, enum pc_channel ch, const char *fmt, ...)
{
	char status[64];
	snprintf(status, sizeof(status), "skip:unobservable:%s", pc_channel_name(ch));
	FINISH(status);
}

static void observe_line(struct pc_ctx *ctx, char tag, const char *key, const char *fmt, va_list ap)
{
	char value[PC_LINE_MAX / 2];
	vsnprintf(value, sizeof(value), fmt, ap);
	send_line(ctx, tag, key, value);
}

void pc_observe(struct pc_ctx *ctx, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	observe_line(ctx, 'O', key, fmt, ap);
	va_end(ap);
}

void pc_measure(struct pc_ctx *ctx, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	observe_line(ctx, 'M', key, fmt, ap);
	va_end(ap);
}

/* Answers that say "not supported here" outright. */
static bool says_unsupported(int e)
{
	return e == ENOSYS || e == ENOTSUP
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
	       || e == EOPNOTSUPP
#endif
		;
}

void pc_refusal(struct pc_ctx *ctx, const char *what, int e, int unknown_e)
{
	pc_observe(ctx, "answer", "%s", e ? pl_errno_name(e) : "accepted");
	pc_observe(ctx, "answer_to_unknown_request", "%s", unknown_e ? pl_errno_name(unknown_e) : "accepted");
	if (e == unknown_e)
		pc_skip_unsupported(ctx, "%s: %s, as for a request this system does not know", what, pl_errno_name(e));
	if (says_unsupported(e))
		pc_skip_unsupported(ctx, "%s: %s (not supported here)", what, pl_errno_name(e));
	pc_fail_refused(ctx, "%s refused with %s, while an unknown request gets %s", what, pc_strerror(e),
			unknown_e ? pl_errno_name(unknown_e) : "success");
}

/* ---- features ---- */

bool pc_feature_present(enum pc_feature f)
{
	return (unsigned)f < PC_F_COUNT && pc_feature_missing[f][0] == 0;
}

void pc_need_feature(struct pc_ctx *ctx, enum pc_feature f)
{
	if (pc_feature_present(f))
		return;
	char cls[32], channel[32];
	const char *evidence, *why = pc_fmt("needs %s, which this system lacks", pc_feature_name(f));
	pc_feature_verdict(f, cls, sizeof(cls), channel, sizeof(channel), &evidence);
	if (!strcmp(cls, "prerequisite"))
		pc_skip_prerequisite(ctx, "%s: %s", why, evidence);
	if (!strcmp(cls, "unobservable"))
		pc_skip_unobservable(ctx, pc_channel_by_name(channel), "%s: %s", why, evidence);
	pc_skip_unsupported(ctx, "%s: %s", why, evidence);
}

void pc_feature_answer(struct pc_ctx *ctx, const char *what, int e, int absent_e)
{
	pc_observe(ctx, "answer", "%s", e ? pl_errno_name(e) : "accepted");
	if (e == 0)
		pc_pass(ctx);
	if (says_unsupported(e))
		pc_skip_unsupported(ctx, "%s: %s", what, pl_errno_name(e));
	/* Before the comparison with the unknown request: a process refused the call itself (a
	 * sandbox, a capability, a limit) is refused the unknown request alike, which then
	 * tells nothing about whether the system knows it. */
	if (e == EPERM || e == EACCES)
		pc_skip_prerequisite(ctx, "%s: %s (not allowed to this process)", what, pl_errno_name(e));
	if (e == absent_e)
		pc_skip_unsupported(ctx, "%s: %s", what, pl_errno_name(e));
	pc_pass(ctx); /* known here, refused for another reason: the probes that need it judge that */
}

void pc_feature_advice(struct pc_ctx *ctx, enum pc_kind kind, int advice, const char *name)
{
	struct pc_map m;
	pc_map_kind_or_skip(ctx, kind, 4 * pl_page_size(), &m);
	int e = pc_madvise(m.addr, m.len, advice), unknown = pc_unknown_advice_errno(m.addr, m.len);
	pc_observe(ctx, "answer_to_unknown_advice", "%s", unknown ? pl_errno_name(unknown) : "accepted");
	/* Refused like an unknown advice on this range: a system that checks the advice before the
	 * range still tells a known one apart on an empty range (Linux: 0 against EINVAL). */
	if (e && e == unknown && pc_madvise(NULL, 0, advice) == 0 && pc_unknown_advice_errno(NULL, 0) != 0)
		e = -1;
	pc_unmap(&m);
	if (e == -1)
		pc_observe(ctx, "answer", "known (accepted on an empty range, refused on this one)");
	if (e == -1)
		pc_pass(ctx);
	pc_feature_answer(ctx, pc_fmt("madvise(%s) on %zu bytes of %s memory", name, 4 * pl_page_size(),
				      pc_kind_name(kind)), e, unknown);
}

const char *pc_strerror(int e)
{
	return pl_errno_desc(e);
}

const char *pc_fmt(const char *fmt, ...)
{
	static char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

enum pc_kind pc_kind(const struct pc_ctx *ctx) { return ctx->kind; }
const char *pc_id(const struct pc_ctx *ctx) { return ctx->id; }
const char *pc_tmpdir(struct pc_ctx *ctx) { return ctx->tmpdir; }

/* ---- mapping kinds: the parts every system shares (the mappings are conform_<family>.c's) ---- */

void pc_map_or_skip(struct pc_ctx *ctx, size_t len, struct pc_map *m)
{
	pc_map_kind_or_skip(ctx, ctx->kind ? ctx->kind : PC_PRIVATE_ANON, len, m);
}

void pc_map_kind_or_skip(struct pc_ctx *ctx, enum pc_kind kind, size_t len, struct pc_map *m)
{
	const char *why = NULL;
	pc_need_feature(ctx, pc_kind_feature(kind));
	int e = pc_map(ctx, kind, len, m, &why);
	if (e == ENOTSUP && why)
		pc_skip_unsupported(ctx, "%s", why);
	if (e == EPERM && why)
		pc_skip_prerequisite(ctx, "%s", why);
	if (e == ENODATA && why)
		pc_skip_unobservable(ctx, PC_CH_HUGE_BACKING, "%s: %s", pc_kind_name(kind), why);
	if (e)
		pc_error(ctx, "mapping %zu bytes of %s memory: %s", len, pc_kind_name(kind), pc_strerror(e));
}

bool pc_kind_shared(enum pc_kind kind)
{
	return kind == PC_SHARED_ANON || kind == PC_SHARED_FILE || kind == PC_SHARED_DISK;
}

bool pc_kind_private_anon(enum pc_kind kind)
{
	return kind == PC_PRIVATE_ANON || kind == PC_THP || kind == PC_MTHP || (kind & PC_HUGETLB_KINDS);
}

const char *pc_kind_name(enum pc_kind kind)
{
	switch (kind) {
	case PC_PRIVATE_ANON: return "private_anon";
	case PC_SHARED_ANON: return "shared_anon";
	case PC_PRIVATE_FILE: return "private_file";
	case PC_SHARED_FILE: return "shared_file";
	case PC_THP: return "thp";
	case PC_SHARED_DISK: return "shared_disk";
	case PC_MTHP: return "mthp";
	case PC_HUGETLB_PMD: return "hugetlb_pmd";
	case PC_HUGETLB_PUD: return "hugetlb_pud";
	default: return "";
	}
}

/* ---- faults ---- */

struct pc_ctx *pc_current;

struct pl_fault pc_access(volatile void *p, bool write, unsigned char val)
{
	struct pl_fault f;
	int e = pl_try_access(p, write, val, &f);
	if (e)
		pc_error(pc_current, "cannot catch a fault here: %s", pc_strerror(e)); /* a fault could not be told apart */
	return f;
}

int pc_access_faults(volatile void *p, bool write, unsigned char val)
{
	struct pl_fault f = pc_access(p, write, val);
	return f.kind == PL_FAULT_NONE ? 0 : f.sig ? f.sig : -1;
}

const char *pc_fault_name(int sig)
{
	if (sig == 0)
		return "none";
	if (sig == SIGSEGV)
		return "SIGSEGV";
#ifdef SIGBUS
	if (sig == SIGBUS)
		return "SIGBUS";
#endif
	return sig < 0 ? "exception" : "other";
}

void pc_expect_fault(struct pc_ctx *ctx, const char *label, volatile void *p, bool write, enum pl_fault_kind want)
{
	struct pl_fault f = pc_access(p, write, 0);
	pc_observe(ctx, label, "%s", f.name);
	if (f.kind == PL_FAULT_NONE)
		pc_fail(ctx, "%s: the %s did not fault", label, write ? "write" : "read");
	const char *why;
	if (want == PL_FAULT_OTHER)
		return;
	if (!pc_channel_trusted(PC_CH_SI_CODE, &why)) {
		pc_observe(ctx, pc_fmt("%s_kind", label), "unobservable");
		return;
	}
	send_line(ctx, 'C', pc_channel_name(PC_CH_SI_CODE), "");
	if (f.kind == want)
		return;
	pc_fail(ctx, "%s: expected a fault of kind %s, got %s (%s)", label, pl_fault_kind_name(want),
		pl_fault_kind_name(f.kind), f.name);
}

void pc_expect_access(struct pc_ctx *ctx, const char *label, volatile void *p, bool write, unsigned char val)
{
	struct pl_fault f = pc_access(p, write, val);
	pc_observe(ctx, label, "%s", f.name);
	if (f.kind != PL_FAULT_NONE)
		pc_fail(ctx, "%s: the %s faulted (%s)", label, write ? "write" : "read", f.name);
}

/* ---- memory contents ---- */

bool pc_all_bytes(const void *p, size_t len, unsigned char b)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i] != b)
			return false;
	return true;
}

/* A byte that depends on the position and seed, never zero, so "old" and "zero" differ. */
static unsigned char fill_byte(size_t i, unsigned seed)
{
	unsigned v = (unsigned)(i * 2654435761u) ^ (seed * 40503u);
	unsigned char b = (unsigned char)(v >> 13);
	return b ? b : 0x5a;
}

void pc_fill(void *p, size_t len, unsigned seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		c[i] = fill_byte(i, seed);
}

bool pc_check_fill(const void *p, size_t len, unsigned seed)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i] != fill_byte(i, seed))
			return false;
	return true;
}

const char *pc_contents(const void *p, size_t len, unsigned seed)
{
	const unsigned char *c = p;
	size_t ps = pl_page_size(), old = 0, zero = 0, pages = 0;
	for (size_t off = 0; off < len; off += ps, pages++) {
		size_t n = len - off < ps ? len - off : ps;
		bool is_zero = true, is_old = true;
		for (size_t i = off; i < off + n; i++) {
			is_zero = is_zero && c[i] == 0;
			is_old = is_old && c[i] == fill_byte(i, seed);
		}
		if (!is_zero && !is_old)
			return "other";
		zero += is_zero;
		old += is_old;
	}
	if (zero == pages)
		return "zero";
	if (old == pages)
		return "old";
	return "mixed";
}

size_t pc_rss_window(void)
{
	size_t ps = pl_page_size(), bytes = (size_t)16 << 20;
	return bytes / ps >= 1024 ? bytes : 1024 * ps;
}

const char *pc_rss_change(size_t before, size_t after, size_t len)
{
	size_t drop = before > after ? before - after : 0;
	if (drop >= len / 4 * 3)
		return "dropped";
	return drop < len / 4 ? "unchanged" : "partial";
}

const char *pc_rss_rise(size_t before, size_t after, size_t len)
{
	size_t rise = after > before ? after - before : 0;
	if (rise >= len / 4 * 3)
		return "raised";
	return rise < len / 4 ? "unchanged" : "partly raised";
}

bool pc_pages_old_or_zero(const void *p, const void *old, size_t len)
{
	size_t ps = pl_page_size();
	for (size_t off = 0; off < len; off += ps) {
		size_t n = len - off < ps ? len - off : ps;
		const char *a = (const char *)p + off, *b = (const char *)old + off;
		if (memcmp(a, b, n) != 0 && !pc_all_bytes(a, n, 0))
			return false;
	}
	return true;
}

bool pc_thp_available(const char **why)
{
	const char *no = pl_huge_unavailable();
	if (no)
		*why = no;
	return no == NULL;
}

void pc_need_thp(struct pc_ctx *ctx)
{
	const char *why;
	if (pc_thp_available(&why))
		return;
	if (pl_caps()->huge_page_size == 0)
		pc_skip_unsupported(ctx, "%s", why);
	pc_skip_prerequisite(ctx, "%s", why);
}

bool pc_swap_available(void)
{
	uint64_t bytes = 0;
	return pl_swap_total(&bytes) == 0 && bytes > 0;
}


/* ---- observation through channels ---- */

bool pc_channel_trusted(enum pc_channel ch, const char **why)
{
	if (pc_distrust[ch][0]) {
		*why = pc_distrust[ch];
		return false;
	}
	return true;
}

/* The channel is about to be used: skip when this run distrusts it, and tell the runner. */
static void use_channel(struct pc_ctx *ctx, enum pc_channel ch)
{
	const char *why;
	if (!pc_channel_trusted(ch, &why))
		pc_skip_unobservable(ctx, ch, "channel %s is %s", pc_channel_name(ch), why);
	send_line(ctx, 'C', pc_channel_name(ch), "");
}

/* An observation call's answer: ENOTSUP/ENOSYS/ENOENT mean the system has no
 * such channel; any other refusal means it cannot tell about this range (qemu-user's
 * mincore refuses PROT_NONE ranges with ENOMEM): either way nothing was observed. */
static void channel_answer(struct pc_ctx *ctx, enum pc_channel ch, const char *call, int e)
{
	if (e == 0)
		return;
	if (e == ENOTSUP || e == ENOSYS || e == ENOENT)
		pc_skip_unobservable(ctx, ch, "%s: %s: this system cannot tell", call, pl_errno_name(e));
	pc_skip_unobservable(ctx, ch, "%s refused here: %s", call, pc_strerror(e));
}

size_t pc_obs_resident_pages(struct pc_ctx *ctx, const void *p, size_t len)
{
	size_t n = 0;
	use_channel(ctx, PC_CH_RESIDENCY);
	channel_answer(ctx, PC_CH_RESIDENCY, "residency", pl_resident_pages(p, len, &n));
	return n;
}

void pc_obs_residency(struct pc_ctx *ctx, const void *p, size_t len, unsigned char *vec)
{
	use_channel(ctx, PC_CH_RESIDENCY);
	channel_answer(ctx, PC_CH_RESIDENCY, "residency", pl_residency(p, len, vec));
}

size_t pc_obs_rss(struct pc_ctx *ctx)
{
	size_t bytes = 0;
	use_channel(ctx, PC_CH_RSS);
	channel_answer(ctx, PC_CH_RSS, "RSS", pl_rss(&bytes));
	return bytes;
}

bool pc_try_rss(struct pc_ctx *ctx, size_t *bytes)
{
	const char *why;
	if (!pc_channel_trusted(PC_CH_RSS, &why) || pl_rss(bytes) != 0)
		return false;
	send_line(ctx, 'C', pc_channel_name(PC_CH_RSS), "");
	return true;
}

bool pc_try_zero_page(struct pc_ctx *ctx, const void *p, bool *is_zero)
{
	const char *why;
	if (!pc_channel_trusted(PC_CH_ZERO_PAGE, &why) || pl_is_zero_page(p, is_zero) != 0)
		return false;
	send_line(ctx, 'C', pc_channel_name(PC_CH_ZERO_PAGE), "");
	return true;
}

bool pc_try_mapping_count(struct pc_ctx *ctx, const void *p, size_t len, size_t *count)
{
	const char *why;
	if (!pc_channel_trusted(PC_CH_MAPPINGS, &why) || pl_mapping_count(p, len, count) != 0)
		return false;
	send_line(ctx, 'C', pc_channel_name(PC_CH_MAPPINGS), "");
	return true;
}

bool pc_obs_zero_page(struct pc_ctx *ctx, const void *p)
{
	bool z = false;
	use_channel(ctx, PC_CH_ZERO_PAGE);
	channel_answer(ctx, PC_CH_ZERO_PAGE, "zero-page identity", pl_is_zero_page(p, &z));
	return z;
}

unsigned pc_obs_page_flags(struct pc_ctx *ctx, const void *p, unsigned need)
{
	unsigned flags = 0, known = 0;
	use_channel(ctx, PC_CH_PAGE_FLAGS);
	channel_answer(ctx, PC_CH_PAGE_FLAGS, "page flags", pl_page_flags(p, &flags, &known));
	if ((known & need) != need)
		pc_skip_unobservable(ctx, PC_CH_PAGE_FLAGS, "this system does not report page flag(s) 0x%x",
				     need & ~known);
	return flags;
}

size_t pc_obs_huge_bytes(struct pc_ctx *ctx, const void *p, size_t len)
{
	size_t bytes = 0;
	use_channel(ctx, PC_CH_HUGE_BACKING);
	channel_answer(ctx, PC_CH_HUGE_BACKING, "huge-page backing", pl_huge_bytes(p, len, &bytes));
	return bytes;
}

void pc_obs_fault_counts(struct pc_ctx *ctx, uint64_t *minor, uint64_t *major)
{
	use_channel(ctx, PC_CH_FAULT_COUNTS);
	channel_answer(ctx, PC_CH_FAULT_COUNTS, "fault counters", pl_fault_counts(minor, major));
}

uintptr_t pc_obs_break_start(struct pc_ctx *ctx)
{
	uintptr_t start = 0;
	use_channel(ctx, PC_CH_BREAK_START);
	channel_answer(ctx, PC_CH_BREAK_START, "where the break started", pl_break_start(&start));
	return start;
}

size_t pc_obs_mapping_count(struct pc_ctx *ctx, const void *p, size_t len)
{
	size_t n = 0;
	use_channel(ctx, PC_CH_MAPPINGS);
	channel_answer(ctx, PC_CH_MAPPINGS, "mapping list", pl_mapping_count(p, len, &n));
	return n;
}
