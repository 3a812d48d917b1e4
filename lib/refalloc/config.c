/* refalloc configuration: names, parsing, the environment, and reporting.
 * Nothing here allocates: it runs while the allocator itself starts. */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const release_names[] = {"none", "release", "release_zero", "reusable", "decommit"};
static const char *const init_names[] = {"none", "zero", "pattern"};
static const char *const via_names[] = {"auto", "memset", "refpage"};

#define NAMES(a) (sizeof(a) / sizeof((a)[0]))

static int parse_name(const char *s, const char *const *names, size_t n, int *out)
{
	for (size_t i = 0; s && i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return EINVAL;
}

const char *ra_release_name(enum ra_release r)
{
	return (unsigned)r < NAMES(release_names) ? release_names[r] : "?";
}

const char *ra_init_name(enum ra_init i)
{
	return (unsigned)i < NAMES(init_names) ? init_names[i] : "?";
}

const char *ra_via_name(enum ra_pattern_via v)
{
	return (unsigned)v < NAMES(via_names) ? via_names[v] : "?";
}

int ra_release_parse(const char *s, enum ra_release *out)
{
	int v;
	int e = parse_name(s, release_names, NAMES(release_names), &v);
	if (!e)
		*out = (enum ra_release)v;
	return e;
}

int ra_init_parse(const char *s, enum ra_init *out)
{
	int v;
	int e = parse_name(s, init_names, NAMES(init_names), &v);
	if (!e)
		*out = (enum ra_init)v;
	return e;
}

int ra_via_parse(const char *s, enum ra_pattern_via *out)
{
	int v;
	int e = parse_name(s, via_names, NAMES(via_names), &v);
	if (!e)
		*out = (enum ra_pattern_via)v;
	return e;
}

void ra_config_default(struct ra_config *c)
{
	c->release = RA_RELEASE_ZERO;
	c->init = RA_INIT_NONE;
	c->via = RA_PATTERN_AUTO;
	c->pattern = 0xAA;
	c->retain = (size_t)1 << 20;
	c->stats_at_exit = false;
}

/* One line on stderr with write(2): stdio may allocate, and we may be malloc. */
void ra_warn(const char *msg, const char *detail)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "refalloc: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		return;
}

_Noreturn void ra_die(const char *what, const void *p)
{
	char addr[32];
	snprintf(addr, sizeof(addr), "%p", p);
	ra_warn(what, addr);
	abort();
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return EINVAL;
	*out = (size_t)v;
	return 0;
}

static int env_enum(const char *var, int (*parse)(const char *, int *), int *out)
{
	const char *s = getenv(var);
	if (!s || !*s)
		return 0;
	if (parse(s, out) == 0)
		return 0;
	ra_warn("ignoring malformed environment variable", var);
	return EINVAL;
}

static int parse_release_int(const char *s, int *out)
{
	return parse_name(s, release_names, NAMES(release_names), out);
}

static int parse_init_int(const char *s, int *out)
{
	return parse_name(s, init_names, NAMES(init_names), out);
}

static int parse_via_int(const char *s, int *out)
{
	return parse_name(s, via_names, NAMES(via_names), out);
}

static int env_numbers(struct ra_config *c)
{
	int e = 0;
	size_t v;
	const char *s = getenv("REFALLOC_PATTERN");
	if (s && *s) {
		if (parse_size(s, &v) == 0 && v <= 255)
			c->pattern = (unsigned char)v;
		else
			e = EINVAL, ra_warn("ignoring malformed environment variable", "REFALLOC_PATTERN");
	}
	s = getenv("REFALLOC_RETAIN");
	if (s && *s) {
		if (parse_size(s, &v) == 0)
			c->retain = v;
		else
			e = EINVAL, ra_warn("ignoring malformed environment variable", "REFALLOC_RETAIN");
	}
	s = getenv("REFALLOC_STATS");
	if (s && *s)
		c->stats_at_exit = strcmp(s, "0") != 0;
	return e;
}

int ra_config_from_env(struct ra_config *c)
{
	ra_config_default(c);
	int r = (int)c->release, i = (int)c->init, v = (int)c->via;
	int e = env_enum("REFALLOC_RELEASE", parse_release_int, &r);
	e |= env_enum("REFALLOC_INIT", parse_init_int, &i);
	e |= env_enum("REFALLOC_PATTERN_VIA", parse_via_int, &v);
	e |= env_numbers(c);
	c->release = (enum ra_release)r;
	c->init = (enum ra_init)i;
	c->via = (enum ra_pattern_via)v;
	return e ? EINVAL : 0;
}
