/* Verdict bookkeeping shared by the runner and the probe side: status names,
 * counts, the channels and which of them this run trusts, and the notes on
 * how probes were isolated. No OS calls. */
#include "conform_run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *const pc_status_names[6] = {"pass", "fail", "skip", "xfail", "error", "timeout"};

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
	for (size_t i = 0; i < 6; i++)
		if (strcmp(s, pc_status_names[i]) == 0)
			return pc_status_names[i];
	return NULL;
}

void pc_count(const struct pc_result *r, size_t n, size_t counts[6])
{
	memset(counts, 0, 6 * sizeof(counts[0]));
	for (size_t i = 0; i < n; i++)
		for (int s = 0; s < 6; s++)
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
