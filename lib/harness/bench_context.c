/* The "context" object of the benchmark JSON: Google Benchmark's fields
 * (date, host, CPUs, caches, load) plus pagelab's environment, counters,
 * topology and pinning. Both back-ends write it with this code. */
#include "config.h"
#include "bench_impl.h"
#include "pagelab/counters.h"
#include "pagelab/env.h"
#include "pagelab/topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void date_member(struct pl_json *j)
{
	char buf[64] = "";
	time_t now = time(NULL);
	struct tm tm;
	if (localtime_r(&now, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S%z", &tm) > 0) {
		/* ISO 8601 wants +00:00, strftime gives +0000. */
		size_t n = strlen(buf);
		if (n > 2 && n + 1 < sizeof(buf)) {
			memmove(buf + n - 1, buf + n - 2, 3);
			buf[n - 2] = ':';
		}
	}
	pl_json_kv_str(j, "date", buf);
}

static double cpu_mhz(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return 0;
	char line[512];
	double mhz = 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "cpu MHz", 7) == 0 && sscanf(strchr(line, ':') ? strchr(line, ':') + 1 : "", "%lf", &mhz) == 1)
			break;
	fclose(f);
	return mhz;
}

/* CPUs in a sysfs list such as "0-3,8". */
static int count_cpu_list(const char *s)
{
	int n = 0;
	while (*s) {
		char *end;
		long a = strtol(s, &end, 10), b = a;
		if (end == s)
			break;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		n += (int)(b - a + 1);
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

static void caches_member(struct pl_json *j)
{
	pl_json_key(j, "caches");
	pl_json_begin_array(j);
	for (int i = 0; i < 16; i++) {
		char dir[96], path[160], type[32], level[16], size[32], shared[256];
		snprintf(dir, sizeof(dir), "/sys/devices/system/cpu/cpu0/cache/index%d", i);
		snprintf(path, sizeof(path), "%s/type", dir);
		if (pl_read_file(path, type, sizeof(type)) != 0)
			break;
		snprintf(path, sizeof(path), "%s/level", dir);
		if (pl_read_file(path, level, sizeof(level)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/size", dir);
		if (pl_read_file(path, size, sizeof(size)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/shared_cpu_list", dir);
		if (pl_read_file(path, shared, sizeof(shared)) != 0)
			snprintf(shared, sizeof(shared), "0");
		char *unit;
		long long bytes = strtoll(size, &unit, 10);
		bytes *= *unit == 'K' ? 1024 : *unit == 'M' ? 1024 * 1024 : 1;
		pl_json_begin_object(j);
		pl_json_kv_str(j, "type", type);
		pl_json_kv_int(j, "level", atoi(level));
		pl_json_kv_int(j, "size", bytes);
		pl_json_kv_int(j, "num_sharing", count_cpu_list(shared));
		pl_json_end_object(j);
	}
	pl_json_end_array(j);
}

static void gbench_members(struct pl_json *j)
{
	date_member(j);
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = 0;
	pl_json_kv_str(j, "host_name", host);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	pl_json_kv_str(j, "executable", exe);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pl_json_kv_int(j, "num_cpus", ncpu > 0 ? ncpu : 1);
	pl_json_kv_double(j, "mhz_per_cpu", cpu_mhz());
	char gov[64];
	bool scaling = pl_read_file("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", gov, sizeof(gov)) == 0 &&
		       strcmp(gov, "performance") != 0;
	pl_json_kv_bool(j, "cpu_scaling_enabled", scaling);
	caches_member(j);
	double load[3];
	pl_json_key(j, "load_avg");
	pl_json_begin_array(j);
	for (int i = 0, got = getloadavg(load, 3); i < got; i++)
		pl_json_double(j, load[i]);
	pl_json_end_array(j);
	/* Optimised code is what timings need; assertions (NDEBUG) are beside the point. */
#if defined(__OPTIMIZE__) || defined(NDEBUG)
	pl_json_kv_str(j, "library_build_type", "release");
#else
	pl_json_kv_str(j, "library_build_type", "debug");
#endif
}

void pb_context_members(struct pl_json *j, const char *backend_name)
{
	gbench_members(j);
	pl_env_json_members(j);
	pl_json_kv_str(j, "backend", backend_name);
	pl_json_kv_str(j, "profile", pb_opts.profile == PB_QUICK ? "quick" : "full");
	pl_json_kv_bool(j, "random_interleaving", pb_opts.random_interleaving);
	pl_counters_json_members(j);
	pl_topo_json_members(j);
}
