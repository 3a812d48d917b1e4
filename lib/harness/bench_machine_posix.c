/* Google Benchmark's machine fields of the benchmark context on POSIX
 * systems: host name, executable, CPUs and their clock, the governor, the
 * caches sysfs lists, and the load average. */
#include "config.h"
#include "bench_impl.h"
#include "pagelab/os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

void pb_machine_members(struct pl_json *j)
{
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
}
