/* Benchmark counters: the event list, the choice of back-end, and the
 * per-thread API of include/pagelab/counters.h. The back-ends (perf_event,
 * getrusage) are in counters_<backend>.c, registered at start-up. */
#include "config.h"
#include "counters_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BACKENDS 4

static const struct pl_counter_backend *backends[MAX_BACKENDS];
static int nbackends;

struct event {
	char name[64];
	bool available;
	char reason[128];
};

static struct {
	int n; /* requested */
	struct event ev[PL_COUNTERS_MAX];
	int nactive; /* available, measured */
	int active[PL_COUNTERS_MAX];
	const struct pl_counter_backend *src; /* NULL: none */
} cfg;

struct pl_counters {
	const struct pl_counter_backend *src; /* the source it was opened with */
	void *state;
};

void pl_counters_register(const struct pl_counter_backend *b)
{
	if (nbackends < MAX_BACKENDS)
		backends[nbackends++] = b;
}

static const struct pl_counter_backend *find_source(const char *source, bool usable_only)
{
	const struct pl_counter_backend *best = NULL;
	for (int i = 0; i < nbackends; i++) {
		const struct pl_counter_backend *b = backends[i];
		if ((source && strcmp(source, b->source) != 0) || (usable_only && b->usable() != 0))
			continue;
		if (!best || b->priority > best->priority)
			best = b;
	}
	return best;
}

static int choose_source(const char *source, char *err, size_t errlen)
{
	bool automatic = !source || strcmp(source, "auto") == 0;
	cfg.src = find_source(automatic ? NULL : source, true);
	if (cfg.src)
		return 0;
	if (automatic)
		snprintf(err, errlen, "no counter source is usable on this system");
	else if (find_source(source, false))
		snprintf(err, errlen, "counter source %s is unusable here: %s", source, strerror(find_source(source, false)->usable()));
	else
		snprintf(err, errlen, "unknown counter source '%s' (auto, perf, rusage)", source);
	return EINVAL;
}

/* perf(1)'s generic event names, optionally with :u (user) or :k (kernel):
 * accepted everywhere, counted where a back-end can. */
static bool generic_name(const char *name)
{
	static const char *const names[] = {"page-faults", "minor-faults", "major-faults", "context-switches",
					    "cpu-migrations", "cycles", "instructions", "cache-misses",
					    "branch-misses", "dTLB-loads", "dTLB-load-misses", "iTLB-load-misses"};
	const char *colon = strchr(name, ':');
	size_t len = colon ? (size_t)(colon - name) : strlen(name);
	if (colon && strcmp(colon, ":u") != 0 && strcmp(colon, ":k") != 0)
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0)
			return true;
	return false;
}

static bool known_anywhere(const char *name)
{
	for (int i = 0; i < nbackends; i++)
		if (backends[i]->knows(name))
			return true;
	return generic_name(name);
}

static int add_event(const char *name, char *err, size_t errlen)
{
	if (cfg.n >= PL_COUNTERS_MAX || strlen(name) >= sizeof(cfg.ev[0].name)) {
		snprintf(err, errlen, "too many counters or name too long: '%s'", name);
		return EINVAL;
	}
	if (!known_anywhere(name)) {
		snprintf(err, errlen, "unknown counter '%s' (try e.g. page-faults, minor-faults, cycles:u)", name);
		return EINVAL;
	}
	struct event *ev = &cfg.ev[cfg.n];
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->name, sizeof(ev->name), "%s", name);
	if (!cfg.src->knows(name))
		snprintf(ev->reason, sizeof(ev->reason), "%s cannot count it", cfg.src->describe());
	else
		ev->available = cfg.src->prepare(cfg.n, name, ev->reason, sizeof(ev->reason)) == 0;
	cfg.n++;
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
		cfg.src = NULL;
		return 0;
	}
	char buf[1024];
	bool extra = strcmp(list, PL_COUNTERS_DEFAULT) == 0 && cfg.src->default_extra;
	snprintf(buf, sizeof(buf), "%s%s%s", list, extra ? "," : "", extra ? cfg.src->default_extra : "");
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
	return cfg.src ? cfg.src->describe() : "none";
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
	c->src = cfg.src;
	int e = cfg.src && cfg.nactive ? cfg.src->open(cfg.active, cfg.nactive, &c->state) : 0;
	if (e) {
		free(c);
		return e;
	}
	*out = c;
	return 0;
}

void pl_counters_close(struct pl_counters *c)
{
	if (!c)
		return;
	if (c->state)
		c->src->close(c->state);
	free(c);
}

int pl_counters_begin(struct pl_counters *c)
{
	return c->state ? c->src->begin(c->state) : 0;
}

int pl_counters_pause(struct pl_counters *c)
{
	return c->state ? c->src->pause(c->state) : 0;
}

int pl_counters_resume(struct pl_counters *c)
{
	return c->state ? c->src->resume(c->state) : 0;
}

int pl_counters_end(struct pl_counters *c, double *values)
{
	return c->state ? c->src->end(c->state, values) : 0;
}
