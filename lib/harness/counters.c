/* Benchmark counters: perf_event (names encoded by libpfm4 when built with
 * it), getrusage as the fallback. See include/pagelab/counters.h. */
#include "config.h"
#include "pagelab/counters.h"
#include "pagelab/env.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#ifdef HAVE_PERF_EVENT
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif
#ifdef HAVE_LIBPFM
#include <perfmon/pfmlib_perf_event.h>
#endif

enum source { SRC_NONE, SRC_PERF, SRC_RUSAGE };
enum ru_field { RU_NONE, RU_FAULTS, RU_MINFLT, RU_MAJFLT, RU_CSW };

struct known {
	const char *name;
	int type;      /* PERF_TYPE_*, as a plain int so non-Linux builds compile */
	uint64_t config;
	enum ru_field ru;
};

/* Generic perf events (the names perf(1) uses); values from linux/perf_event.h. */
static const struct known known_events[] = {
	{"page-faults", 1, 2, RU_FAULTS},
	{"minor-faults", 1, 5, RU_MINFLT},
	{"major-faults", 1, 6, RU_MAJFLT},
	{"context-switches", 1, 3, RU_CSW},
	{"cpu-migrations", 1, 4, RU_NONE},
	{"cycles", 0, 0, RU_NONE},
	{"instructions", 0, 1, RU_NONE},
	{"cache-misses", 0, 3, RU_NONE},
	{"branch-misses", 0, 5, RU_NONE},
	{"dTLB-loads", 3, 3 | (0 << 8) | (0 << 16), RU_NONE},
	{"dTLB-load-misses", 3, 3 | (0 << 8) | (1 << 16), RU_NONE},
	{"iTLB-load-misses", 3, 4 | (0 << 8) | (1 << 16), RU_NONE},
};
#define NKNOWN (sizeof(known_events) / sizeof(known_events[0]))

struct event {
	char name[64];
	bool available;
	char reason[128];
	enum ru_field ru;
#ifdef HAVE_PERF_EVENT
	struct perf_event_attr attr;
#endif
};

static struct {
	int n;                 /* requested */
	struct event ev[PL_COUNTERS_MAX];
	int nactive;           /* available, measured */
	int active[PL_COUNTERS_MAX];
	enum source src;
	bool pfm;
} cfg;

struct pl_counters {
	int fd[PL_COUNTERS_MAX];
	uint64_t base[PL_COUNTERS_MAX][3];
	double acc[PL_COUNTERS_MAX];
	struct rusage snap;
};

static const struct known *find_known(const char *name, char *mod, size_t modlen)
{
	const char *colon = strchr(name, ':');
	size_t len = colon ? (size_t)(colon - name) : strlen(name);
	snprintf(mod, modlen, "%s", colon ? colon + 1 : "");
	for (size_t i = 0; i < NKNOWN; i++)
		if (strlen(known_events[i].name) == len && strncmp(known_events[i].name, name, len) == 0)
			return &known_events[i];
	return NULL;
}

#ifdef HAVE_PERF_EVENT
static int perf_open(struct perf_event_attr *attr)
{
	attr->size = sizeof(*attr);
	attr->disabled = 1;
	attr->inherit = 0;
	attr->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	long fd = syscall(SYS_perf_event_open, attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
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

/* Encode name into ev->attr: libpfm4 when present, else the built-in table. */
static int encode(struct event *ev, const struct known *k, const char *mod)
{
	memset(&ev->attr, 0, sizeof(ev->attr));
#ifdef HAVE_LIBPFM
	if (cfg.pfm) {
		pfm_perf_encode_arg_t arg;
		memset(&arg, 0, sizeof(arg));
		arg.attr = &ev->attr;
		arg.size = sizeof(arg);
		int r = pfm_get_os_event_encoding(ev->name, PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT, &arg);
		if (r == PFM_SUCCESS)
			return 0;
		if (!k)
			return r == PFM_ERR_NOTFOUND ? ENOENT : EINVAL;
		memset(&ev->attr, 0, sizeof(ev->attr));
	}
#endif
	if (!k)
		return ENOENT;
	ev->attr.type = (uint32_t)k->type;
	ev->attr.config = k->config;
	if (strcmp(mod, "u") == 0)
		ev->attr.exclude_kernel = ev->attr.exclude_hv = 1;
	else if (strcmp(mod, "k") == 0)
		ev->attr.exclude_user = ev->attr.exclude_hv = 1;
	else if (mod[0])
		return EINVAL;
	return 0;
}

static void probe_perf(struct event *ev)
{
	int fd = perf_open(&ev->attr);
	if (fd < 0) {
		open_reason(-fd, &ev->attr, ev->reason, sizeof(ev->reason));
		return;
	}
	close(fd);
	ev->available = true;
}

/* auto picks perf_event when a software event opens (it needs no PMU). */
static bool perf_usable(void)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_PAGE_FAULTS;
	int fd = perf_open(&attr);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}
#endif

static int add_event(const char *name, char *err, size_t errlen)
{
	if (cfg.n >= PL_COUNTERS_MAX || strlen(name) >= sizeof(cfg.ev[0].name)) {
		snprintf(err, errlen, "too many counters or name too long: '%s'", name);
		return EINVAL;
	}
	struct event *ev = &cfg.ev[cfg.n];
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->name, sizeof(ev->name), "%s", name);
	char mod[32];
	const struct known *k = find_known(name, mod, sizeof(mod));
	ev->ru = k && !mod[0] ? k->ru : RU_NONE;
#ifdef HAVE_PERF_EVENT
	int e = encode(ev, k, mod);
	if (e) {
		snprintf(err, errlen, "unknown counter '%s' (try e.g. page-faults, cycles:u, dTLB-load-misses)", name);
		return EINVAL;
	}
	if (cfg.src == SRC_PERF)
		probe_perf(ev);
#else
	if (!k || (mod[0] && strcmp(mod, "u") && strcmp(mod, "k"))) {
		snprintf(err, errlen, "unknown counter '%s' (try e.g. page-faults, minor-faults)", name);
		return EINVAL;
	}
#endif
	if (cfg.src == SRC_RUSAGE) {
		ev->available = ev->ru != RU_NONE;
		if (!ev->available)
			snprintf(ev->reason, sizeof(ev->reason), "getrusage cannot count it (%s)",
#ifdef HAVE_PERF_EVENT
				 "perf_event not used"
#else
				 "no perf_event on this system"
#endif
			);
	}
	cfg.n++;
	return 0;
}

static int choose_source(const char *source, char *err, size_t errlen)
{
	bool perf = false;
#ifdef HAVE_PERF_EVENT
	perf = perf_usable();
#endif
	if (!source || strcmp(source, "auto") == 0)
		cfg.src = perf ? SRC_PERF : SRC_RUSAGE;
	else if (strcmp(source, "perf") == 0 && perf)
		cfg.src = SRC_PERF;
	else if (strcmp(source, "rusage") == 0)
		cfg.src = SRC_RUSAGE;
	else {
		snprintf(err, errlen, strcmp(source, "perf") == 0 ? "counter source perf: perf_event is unusable here"
								 : "unknown counter source '%s' (auto, perf, rusage)",
			 source);
		return EINVAL;
	}
#ifdef HAVE_LIBPFM
	cfg.pfm = cfg.src == SRC_PERF && pfm_initialize() == PFM_SUCCESS;
#endif
	return 0;
}

int pl_counters_configure(const char *list, const char *source, char *err, size_t errlen)
{
	memset(&cfg, 0, sizeof(cfg));
	int e = choose_source(source, err, errlen);
	if (e)
		return e;
	if (!list || strcmp(list, "default") == 0)
		list = PL_COUNTERS_DEFAULT;
	if (strcmp(list, "none") == 0) {
		cfg.src = SRC_NONE;
		return 0;
	}
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		e = add_event(tok, err, errlen);
		if (e)
			return e;
	}
	for (int i = 0; i < cfg.n; i++)
		if (cfg.ev[i].available)
			cfg.active[cfg.nactive++] = i;
	return 0;
}

int pl_counters_count(void)
{
	return cfg.nactive;
}

const char *pl_counters_name(int i)
{
	return i >= 0 && i < cfg.nactive ? cfg.ev[cfg.active[i]].name : NULL;
}

const char *pl_counters_source(void)
{
	if (cfg.src == SRC_PERF)
		return cfg.pfm ? "perf_event+libpfm4" : "perf_event";
	return cfg.src == SRC_RUSAGE ? "getrusage" : "none";
}

void pl_counters_json_members(struct pl_json *j)
{
	pl_json_kv_str(j, "counter_source", pl_counters_source());
	pl_json_key(j, "counters");
	pl_json_begin_array(j);
	for (int i = 0; i < cfg.nactive; i++)
		pl_json_str(j, pl_counters_name(i));
	pl_json_end_array(j);
	pl_json_key(j, "counters_unavailable");
	pl_json_begin_object(j);
	for (int i = 0; i < cfg.n; i++)
		if (!cfg.ev[i].available)
			pl_json_kv_str(j, cfg.ev[i].name, cfg.ev[i].reason);
	pl_json_end_object(j);
}

int pl_counters_open(struct pl_counters **out)
{
	struct pl_counters *c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	for (int i = 0; i < PL_COUNTERS_MAX; i++)
		c->fd[i] = -1;
#ifdef HAVE_PERF_EVENT
	for (int i = 0; cfg.src == SRC_PERF && i < cfg.nactive; i++) {
		c->fd[i] = perf_open(&cfg.ev[cfg.active[i]].attr);
		if (c->fd[i] < 0) {
			int e = -c->fd[i];
			c->fd[i] = -1;
			pl_counters_close(c);
			return e;
		}
	}
#endif
	*out = c;
	return 0;
}

void pl_counters_close(struct pl_counters *c)
{
	if (!c)
		return;
	for (int i = 0; i < PL_COUNTERS_MAX; i++)
		if (c->fd[i] >= 0)
			close(c->fd[i]);
	free(c);
}

static int thread_rusage(struct rusage *ru)
{
#ifdef RUSAGE_THREAD
	return getrusage(RUSAGE_THREAD, ru) == 0 ? 0 : errno;
#else
	return getrusage(RUSAGE_SELF, ru) == 0 ? 0 : errno;
#endif
}

static double ru_value(const struct rusage *r, enum ru_field f)
{
	switch (f) {
	case RU_FAULTS: return (double)r->ru_minflt + (double)r->ru_majflt;
	case RU_MINFLT: return (double)r->ru_minflt;
	case RU_MAJFLT: return (double)r->ru_majflt;
	case RU_CSW: return (double)r->ru_nvcsw + (double)r->ru_nivcsw;
	default: return 0;
	}
}

#ifdef HAVE_PERF_EVENT
static int perf_read(int fd, uint64_t v[3])
{
	ssize_t n = read(fd, v, 3 * sizeof(uint64_t));
	if (n < 0)
		return errno;
	return n == 3 * (ssize_t)sizeof(uint64_t) ? 0 : EIO;
}

static int perf_switch(bool on)
{
	int r = prctl(on ? PR_TASK_PERF_EVENTS_ENABLE : PR_TASK_PERF_EVENTS_DISABLE, 0, 0, 0, 0);
	return r == 0 ? 0 : errno;
}
#endif

int pl_counters_begin(struct pl_counters *c)
{
	if (cfg.src == SRC_RUSAGE) {
		memset(c->acc, 0, sizeof(c->acc));
		return thread_rusage(&c->snap);
	}
#ifdef HAVE_PERF_EVENT
	if (cfg.src == SRC_PERF && cfg.nactive > 0) {
		for (int i = 0; i < cfg.nactive; i++) {
			int e = perf_read(c->fd[i], c->base[i]);
			if (e)
				return e;
		}
		return perf_switch(true);
	}
#endif
	return 0;
}

int pl_counters_pause(struct pl_counters *c)
{
	if (cfg.src == SRC_RUSAGE) {
		struct rusage now;
		int e = thread_rusage(&now);
		if (e)
			return e;
		for (int i = 0; i < cfg.nactive; i++) {
			enum ru_field f = cfg.ev[cfg.active[i]].ru;
			c->acc[i] += ru_value(&now, f) - ru_value(&c->snap, f);
		}
		return 0;
	}
#ifdef HAVE_PERF_EVENT
	if (cfg.src == SRC_PERF && cfg.nactive > 0)
		return perf_switch(false);
#endif
	return 0;
}

int pl_counters_resume(struct pl_counters *c)
{
	if (cfg.src == SRC_RUSAGE)
		return thread_rusage(&c->snap);
#ifdef HAVE_PERF_EVENT
	if (cfg.src == SRC_PERF && cfg.nactive > 0)
		return perf_switch(true);
#endif
	return 0;
}

int pl_counters_end(struct pl_counters *c, double *values)
{
	int e = pl_counters_pause(c);
	if (e)
		return e;
	for (int i = 0; i < cfg.nactive; i++) {
		values[i] = c->acc[i];
#ifdef HAVE_PERF_EVENT
		if (cfg.src != SRC_PERF)
			continue;
		uint64_t now[3];
		e = perf_read(c->fd[i], now);
		if (e)
			return e;
		double v = (double)(now[0] - c->base[i][0]);
		double enabled = (double)(now[1] - c->base[i][1]);
		double running = (double)(now[2] - c->base[i][2]);
		/* Multiplexed: scale by time enabled over time counted. */
		if (running > 0 && running < enabled)
			v *= enabled / running;
		values[i] = running == 0 && enabled > 0 ? NAN : v;
#endif
	}
	return 0;
}
