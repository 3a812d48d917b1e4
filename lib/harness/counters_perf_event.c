/* The perf_event counter back-end (Linux): one counter per event and thread,
 * enabled and disabled together with prctl, scaled for multiplexing.
 * Software events (page faults ...) need no hardware PMU. Event names are
 * encoded by libpfm4 when counters_pfm.c is built in, else by the table of
 * perf(1)'s generic events below. */
#include "config.h"
#include "counters_impl.h"
#include "pagelab/env.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
	const char *name;
	uint32_t type;
	uint64_t config;
} generic_events[] = {
	{"page-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS},
	{"minor-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MIN},
	{"major-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MAJ},
	{"context-switches", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES},
	{"cpu-migrations", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS},
	{"cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES},
	{"instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS},
	{"cache-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES},
	{"branch-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES},
	{"dTLB-loads", PERF_TYPE_HW_CACHE, PERF_COUNT_HW_CACHE_DTLB | (PERF_COUNT_HW_CACHE_OP_READ << 8) |
						   (PERF_COUNT_HW_CACHE_RESULT_ACCESS << 16)},
	{"dTLB-load-misses", PERF_TYPE_HW_CACHE, PERF_COUNT_HW_CACHE_DTLB | (PERF_COUNT_HW_CACHE_OP_READ << 8) |
							 (PERF_COUNT_HW_CACHE_RESULT_MISS << 16)},
	{"iTLB-load-misses", PERF_TYPE_HW_CACHE, PERF_COUNT_HW_CACHE_ITLB | (PERF_COUNT_HW_CACHE_OP_READ << 8) |
							 (PERF_COUNT_HW_CACHE_RESULT_MISS << 16)},
};
#define NGENERIC (sizeof(generic_events) / sizeof(generic_events[0]))

static const struct pl_perf_encoder *encoder;
static bool encoder_ready;
static struct perf_event_attr slot_attr[PL_COUNTERS_MAX];

struct perf_state {
	int n;
	int fd[PL_COUNTERS_MAX];
	uint64_t base[PL_COUNTERS_MAX][3]; /* value, time enabled, time running */
};

void pl_perf_set_encoder(const struct pl_perf_encoder *enc)
{
	encoder = enc;
}

static int perf_open(struct perf_event_attr *attr)
{
	attr->size = sizeof(*attr);
	attr->disabled = 1;
	attr->inherit = 0;
	attr->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	long fd = syscall(SYS_perf_event_open, attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

/* From the generic table: "name", "name:u" (user only) or "name:k" (kernel only). */
static int encode_generic(const char *name, struct perf_event_attr *attr)
{
	const char *colon = strchr(name, ':');
	size_t len = colon ? (size_t)(colon - name) : strlen(name);
	for (size_t i = 0; i < NGENERIC; i++) {
		if (strlen(generic_events[i].name) != len || strncmp(generic_events[i].name, name, len) != 0)
			continue;
		memset(attr, 0, sizeof(*attr));
		attr->type = generic_events[i].type;
		attr->config = generic_events[i].config;
		if (colon && strcmp(colon, ":u") == 0)
			attr->exclude_kernel = attr->exclude_hv = 1;
		else if (colon && strcmp(colon, ":k") == 0)
			attr->exclude_user = attr->exclude_hv = 1;
		else if (colon)
			return EINVAL;
		return 0;
	}
	return ENOENT;
}

static int encode(const char *name, struct perf_event_attr *attr)
{
	if (encoder && !encoder_ready)
		encoder_ready = encoder->init() == 0;
	if (encoder && encoder_ready && encoder->encode(name, attr) == 0)
		return 0;
	return encode_generic(name, attr);
}

/* Why perf_event_open refused an event, in words for the results file. */
static void open_reason(int err, const struct perf_event_attr *attr, char *buf, size_t len)
{
	char paranoid[32] = "?";
	if (pl_read_file("/proc/sys/kernel/perf_event_paranoid", paranoid, sizeof(paranoid)) != 0)
		snprintf(paranoid, sizeof(paranoid), "unreadable");
	bool hw = attr->type == PERF_TYPE_HARDWARE || attr->type == PERF_TYPE_HW_CACHE || attr->type == PERF_TYPE_RAW;
	if (err == EACCES || err == EPERM)
		snprintf(buf, len, "not permitted (perf_event_paranoid=%s)", paranoid);
	else if (hw && access("/sys/bus/event_source/devices/cpu", F_OK) != 0)
		snprintf(buf, len, "no hardware PMU");
	else if (err == ENOENT || err == EOPNOTSUPP || err == ENODEV)
		snprintf(buf, len, "not supported by this PMU (%s)", strerror(err));
	else if (err == ENOSYS)
		snprintf(buf, len, "perf_event_open not supported by this kernel");
	else
		snprintf(buf, len, "perf_event_open: %s", strerror(err));
}

/* Usable when a software event opens (it needs no PMU). */
static int pe_usable(void)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_PAGE_FAULTS;
	int fd = perf_open(&attr);
	if (fd < 0)
		return -fd;
	close(fd);
	return 0;
}

static bool pe_knows(const char *name)
{
	struct perf_event_attr attr;
	return encode(name, &attr) == 0;
}

static int pe_prepare(int i, const char *name, char *reason, size_t len)
{
	int e = encode(name, &slot_attr[i]);
	if (e) {
		snprintf(reason, len, "cannot encode it: %s", strerror(e));
		return e;
	}
	struct perf_event_attr probe = slot_attr[i];
	int fd = perf_open(&probe);
	if (fd < 0) {
		open_reason(-fd, &probe, reason, len);
		return -fd;
	}
	close(fd);
	return 0;
}

static const char *pe_describe(void)
{
	return encoder && encoder_ready ? "perf_event+libpfm4" : "perf_event";
}

static void pe_close(void *state)
{
	struct perf_state *st = state;
	for (int i = 0; i < st->n; i++)
		if (st->fd[i] >= 0)
			close(st->fd[i]);
	free(st);
}

static int pe_open(const int *active, int n, void **state)
{
	struct perf_state *st = calloc(1, sizeof(*st));
	if (!st)
		return ENOMEM;
	for (int i = 0; i < n; i++) {
		struct perf_event_attr attr = slot_attr[active[i]];
		st->fd[i] = perf_open(&attr);
		st->n = i + 1;
		if (st->fd[i] < 0) {
			int e = -st->fd[i];
			st->fd[i] = -1;
			pe_close(st);
			return e;
		}
	}
	*state = st;
	return 0;
}

static int perf_read(int fd, uint64_t v[3])
{
	ssize_t n = read(fd, v, 3 * sizeof(uint64_t));
	if (n < 0)
		return errno;
	return n == 3 * (ssize_t)sizeof(uint64_t) ? 0 : EIO;
}

/* Every counter of the calling thread on or off at once. */
static int perf_switch(bool on)
{
	return prctl(on ? PR_TASK_PERF_EVENTS_ENABLE : PR_TASK_PERF_EVENTS_DISABLE, 0, 0, 0, 0) == 0 ? 0 : errno;
}

static int pe_begin(void *state)
{
	struct perf_state *st = state;
	for (int i = 0; i < st->n; i++) {
		int e = perf_read(st->fd[i], st->base[i]);
		if (e)
			return e;
	}
	return perf_switch(true);
}

static int pe_pause(void *state)
{
	(void)state;
	return perf_switch(false);
}

static int pe_resume(void *state)
{
	(void)state;
	return perf_switch(true);
}

static int pe_end(void *state, double *values)
{
	struct perf_state *st = state;
	int e = perf_switch(false);
	for (int i = 0; i < st->n && !e; i++) {
		uint64_t now[3];
		if ((e = perf_read(st->fd[i], now)) != 0)
			break;
		double v = (double)(now[0] - st->base[i][0]);
		double enabled = (double)(now[1] - st->base[i][1]);
		double running = (double)(now[2] - st->base[i][2]);
		/* Multiplexed: scale by time enabled over time counted. */
		if (running > 0 && running < enabled)
			v *= enabled / running;
		values[i] = running == 0 && enabled > 0 ? NAN : v;
	}
	return e;
}

static const struct pl_counter_backend perf_backend = {
	.source = "perf", .priority = 2, .usable = pe_usable, .knows = pe_knows, .prepare = pe_prepare,
	.describe = pe_describe, .open = pe_open, .close = pe_close, .begin = pe_begin, .pause = pe_pause,
	.resume = pe_resume, .end = pe_end,
};

__attribute__((constructor)) static void register_perf_event(void)
{
	pl_counters_register(&perf_backend);
}
