/* Verdict bookkeeping shared by the runner and the probe side: status names,
 * counts, the channels and which of them this run trusts, and the notes on
 * how probes were isolated. No OS calls. */
#include "conform_run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *const pc_status_names[PC_NSTATUS] = {"pass", "fail", "skip", "xfail", "error", "timeout", "differs", "observed"};

static const char *const channel_names[PC_CH_COUNT] = {
	[PC_CH_NONE] = "none",           [PC_CH_RESIDENCY] = "residency",
	[PC_CH_RSS] = "rss",             [PC_CH_ZERO_PAGE] = "zero_page",
	[PC_CH_PAGE_FLAGS] = "page_flags", [PC_CH_HUGE_BACKING] = "huge_backing",
	[PC_CH_FAULT_COUNTS] = "fault_counts", [PC_CH_SI_CODE] = "si_code",
	[PC_CH_MAPPINGS] = "mappings",   [PC_CH_BREAK_START] = "break_start",
};

char pc_distrust[PC_CH_COUNT][512];

const char *pc_channel_name(enum pc_channel ch)
{
	return (unsigned)ch < PC_CH_COUNT ? channel_names[ch] : "none";
}

enum pc_channel pc_channel_by_name(const char *name)
{
	for (int ch = 1; ch < PC_CH_COUNT; ch++)
		if (strcmp(name, channel_names[ch]) == 0)
			return (enum pc_channel)ch;
	return PC_CH_NONE;
}

void pc_distrust_arg(int ch, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%s", channel_names[ch], pc_distrust[ch]);
}

int pc_distrust_parse(const char *arg)
{
	const char *colon = strchr(arg, ':');
	char name[32];
	if (!colon || !colon[1] || (size_t)(colon - arg) >= sizeof(name))
		return EINVAL;
	snprintf(name, sizeof(name), "%.*s", (int)(colon - arg), arg);
	enum pc_channel ch = pc_channel_by_name(name);
	if (ch == PC_CH_NONE)
		return EINVAL;
	snprintf(pc_distrust[ch], sizeof(pc_distrust[ch]), "%s", colon + 1);
	return 0;
}

const char *pc_status_known(const char *s)
{
	for (size_t i = 0; i < PC_NSTATUS; i++)
		if (strcmp(s, pc_status_names[i]) == 0)
			return pc_status_names[i];
	return NULL;
}

void pc_count(const struct pc_result *r, size_t n, size_t counts[PC_NSTATUS])
{
	memset(counts, 0, PC_NSTATUS * sizeof(counts[0]));
	for (size_t i = 0; i < n; i++)
		for (int s = 0; s < PC_NSTATUS; s++)
			if (r[i].status && strcmp(r[i].status, pc_status_names[s]) == 0)
				counts[s]++;
}

void pc_count_skips(const struct pc_result *r, size_t n, size_t counts[4])
{
	static const char *const classes[3] = {"unsupported", "unobservable", "prerequisite"};
	memset(counts, 0, 4 * sizeof(counts[0]));
	for (size_t i = 0; i < n; i++) {
		if (!r[i].status || strcmp(r[i].status, "skip") != 0)
			continue;
		int c = 0;
		while (c < 3 && strcmp(r[i].cls, classes[c]) != 0)
			c++;
		counts[c]++;
	}
}

size_t pc_channel_instances(const struct pc_instance *v, size_t n)
{
	size_t k = 0;
	while (k < n && v[k].probe->proves != PC_CH_NONE)
		k++;
	return k;
}

size_t pc_feature_instances(const struct pc_instance *v, size_t n, size_t from)
{
	size_t k = from;
	while (k < n && v[k].probe->proves_feature != PC_F_NONE)
		k++;
	return k - from;
}

/* ---- features ---- */

static const char *const feature_names[PC_F_COUNT] = {
	[PC_F_NONE] = "none",
	[PC_F_MADV_DONTNEED] = "madv_dontneed", [PC_F_MADV_FREE] = "madv_free", [PC_F_MADV_COLD] = "madv_cold",
	[PC_F_MADV_PAGEOUT] = "madv_pageout", [PC_F_MADV_WILLNEED] = "madv_willneed",
	[PC_F_MADV_REMOVE] = "madv_remove", [PC_F_MADV_POPULATE_READ] = "madv_populate_read",
	[PC_F_MADV_POPULATE_WRITE] = "madv_populate_write", [PC_F_MADV_DONTFORK] = "madv_dontfork",
	[PC_F_MADV_WIPEONFORK] = "madv_wipeonfork", [PC_F_MADV_GUARD] = "madv_guard_install",
	[PC_F_MADV_HUGEPAGE] = "madv_hugepage", [PC_F_MADV_COLLAPSE] = "madv_collapse",
	[PC_F_MADV_MERGEABLE] = "madv_mergeable", [PC_F_MADV_DONTNEED_LOCKED] = "madv_dontneed_locked",
	[PC_F_MADV_DONTDUMP] = "madv_dontdump",
	[PC_F_MAP_FIXED_NOREPLACE] = "map_fixed_noreplace", [PC_F_MAP_POPULATE] = "map_populate",
	[PC_F_MAP_DROPPABLE] = "map_droppable", [PC_F_MAP_GROWSDOWN] = "map_growsdown",
	[PC_F_MAP_LOCKED] = "map_locked", [PC_F_MAP_SHARED_VALIDATE] = "map_shared_validate",
	[PC_F_MREMAP] = "mremap", [PC_F_MREMAP_FIXED] = "mremap_fixed", [PC_F_MREMAP_DONTUNMAP] = "mremap_dontunmap",
	[PC_F_MREMAP_SEVERAL] = "mremap_several_mappings",
	[PC_F_MSEAL] = "mseal", [PC_F_MLOCK] = "mlock", [PC_F_MLOCK_ONFAULT] = "mlock2_onfault",
	[PC_F_MLOCKALL_ONFAULT] = "mlockall_onfault",
	[PC_F_USERFAULTFD] = "userfaultfd", [PC_F_PIN_VMSPLICE] = "pin_vmsplice", [PC_F_PIN_IO_URING] = "pin_io_uring",
	[PC_F_FORCED_WRITE] = "forced_write", [PC_F_MEMFD_SEALS] = "memfd_seals", [PC_F_SOFT_DIRTY] = "soft_dirty",
	[PC_F_KSM_PRCTL] = "ksm_prctl", [PC_F_PROCESS_MADVISE] = "process_madvise", [PC_F_FORK] = "fork",
	[PC_F_BRK] = "brk",
	[PC_F_KIND_FIRST + 0] = "kind.private_anon", [PC_F_KIND_FIRST + 1] = "kind.shared_anon",
	[PC_F_KIND_FIRST + 2] = "kind.private_file", [PC_F_KIND_FIRST + 3] = "kind.shared_file",
	[PC_F_KIND_FIRST + 4] = "kind.thp", [PC_F_KIND_FIRST + 5] = "kind.shared_disk",
	[PC_F_KIND_FIRST + 6] = "kind.mthp", [PC_F_KIND_FIRST + 7] = "kind.hugetlb_pmd",
	[PC_F_KIND_FIRST + 8] = "kind.hugetlb_pud",
};

char pc_feature_missing[PC_F_COUNT][512];

const char *pc_feature_name(enum pc_feature f)
{
	return (unsigned)f < PC_F_COUNT && feature_names[f] ? feature_names[f] : "none";
}

enum pc_feature pc_kind_feature(enum pc_kind kind)
{
	int bit = 0;
	while (bit < 9 && !((unsigned)kind & (1u << bit)))
		bit++;
	return (enum pc_feature)(PC_F_KIND_FIRST + bit);
}

static enum pc_feature feature_by_name(const char *name)
{
	for (int f = 1; f < PC_F_COUNT; f++)
		if (feature_names[f] && strcmp(name, feature_names[f]) == 0)
			return (enum pc_feature)f;
	return PC_F_NONE;
}

void pc_feature_arg(int f, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%s", feature_names[f], pc_feature_missing[f]);
}

int pc_feature_parse(const char *arg)
{
	const char *colon = strchr(arg, ':');
	char name[64];
	if (!colon || !colon[1] || (size_t)(colon - arg) >= sizeof(name))
		return EINVAL;
	snprintf(name, sizeof(name), "%.*s", (int)(colon - arg), arg);
	enum pc_feature f = feature_by_name(name);
	const char *c2 = strchr(colon + 1, ':');
	if (f == PC_F_NONE || !c2 || !strchr(c2 + 1, ':'))
		return EINVAL;
	snprintf(pc_feature_missing[f], sizeof(pc_feature_missing[f]), "%s", colon + 1);
	return 0;
}

void pc_features_decide(const struct pc_instance *v, const struct pc_result *r, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++) {
		int f = v[i].probe->proves_feature;
		if (strcmp(r[i].status, "skip") != 0 || pc_feature_missing[f][0])
			continue;
		snprintf(pc_feature_missing[f], sizeof(pc_feature_missing[f]), "%s:%s:%s (%s)",
			 r[i].cls[0] ? r[i].cls : "unsupported", r[i].channel, r[i].reason, v[i].id);
	}
}

uint64_t pc_instance_needs(const struct pc_instance *inst)
{
	uint64_t needs = inst->probe->needs;
	if (inst->kind)
		needs |= PC_FB(pc_kind_feature(inst->kind));
	return needs;
}

int pc_missing_need(const struct pc_instance *inst)
{
	uint64_t needs = pc_instance_needs(inst);
	for (int f = 1; f < PC_F_COUNT; f++)
		if ((needs & PC_FB(f)) && pc_feature_missing[f][0])
			return f;
	return PC_F_NONE;
}

void pc_feature_verdict(int f, char *cls, size_t cls_size, char *channel, size_t ch_size, const char **evidence)
{
	const char *s = pc_feature_missing[f], *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	snprintf(cls, cls_size, "%.*s", c1 ? (int)(c1 - s) : 0, s);
	snprintf(channel, ch_size, "%.*s", c2 ? (int)(c2 - c1 - 1) : 0, c1 ? c1 + 1 : "");
	*evidence = c2 ? c2 + 1 : s;
}

void pc_skip_for_feature(int f, struct pc_result *r)
{
	const char *evidence;
	memset(r, 0, sizeof(*r));
	r->status = "skip";
	pc_feature_verdict(f, r->cls, sizeof(r->cls), r->channel, sizeof(r->channel), &evidence);
	snprintf(r->reason, sizeof(r->reason), "needs %s, which this system lacks: %s", feature_names[f], evidence);
	snprintf(r->feature, sizeof(r->feature), "%s", feature_names[f]);
	r->complete = true;
}

void pc_channels_decide(const struct pc_instance *v, const struct pc_result *r, size_t nchannel)
{
	for (size_t i = 0; i < nchannel; i++) {
		int ch = v[i].probe->proves;
		if (!strcmp(r[i].status, "pass") || pc_distrust[ch][0])
			continue;
		snprintf(pc_distrust[ch], sizeof(pc_distrust[ch]), "%s here (%s: %s)",
			 !strcmp(r[i].status, "skip") ? "missing" : "unreliable", v[i].id, r[i].reason);
	}
}

void pc_isolation_fallback(struct pc_options *o, const char *why)
{
	if (o->isolation_note[0])
		return;
	snprintf(o->isolation_note, sizeof(o->isolation_note), "%s: probes isolated with fork", why);
	fprintf(stderr, "pagelab-conform: %s\n", o->isolation_note);
}

void pc_isolation_note(struct pc_options *o, const char *why)
{
	if (o->isolation_note[0])
		return;
	snprintf(o->isolation_note, sizeof(o->isolation_note), "%s (--isolate=%s kept as asked)", why, o->isolate);
	fprintf(stderr, "pagelab-conform: %s\n", o->isolation_note);
}
