/* Google Benchmark's machine fields of the benchmark context on Windows:
 * computer name, executable, processors and their nominal clock (the
 * registry's ~MHz), the caches GetLogicalProcessorInformation lists. Windows
 * has no load average (written empty, as Google Benchmark does there). */
#include "config.h"
#include "bench_impl.h"

#include <stdio.h>
#include <windows.h>

#define MAX_INFO 512

static double cpu_mhz(void)
{
	DWORD mhz = 0, size = sizeof(mhz);
	if (RegGetValueA(HKEY_LOCAL_MACHINE, "HARDWARE\\DESCRIPTION\\System\\CentralProcessor\\0", "~MHz", RRF_RT_REG_DWORD,
			 NULL, &mhz, &size) != ERROR_SUCCESS)
		return 0;
	return mhz;
}

static void caches_member(struct pl_json *j)
{
	SYSTEM_LOGICAL_PROCESSOR_INFORMATION info[MAX_INFO];
	DWORD len = sizeof(info);
	static const char *const types[] = {"Unified", "Instruction", "Data", "Trace"};
	pl_json_key(j, "caches");
	pl_json_begin_array(j);
	if (GetLogicalProcessorInformation(info, &len)) {
		for (DWORD i = 0; i < len / sizeof(info[0]); i++) {
			const CACHE_DESCRIPTOR *c = &info[i].Cache;
			/* One entry per cache: the first processor of its mask lists it. */
			if (info[i].Relationship != RelationCache || (info[i].ProcessorMask & 1) == 0)
				continue;
			pl_json_begin_object(j);
			pl_json_kv_str(j, "type", (unsigned)c->Type < 4 ? types[c->Type] : "Unified");
			pl_json_kv_int(j, "level", c->Level);
			pl_json_kv_int(j, "size", (long long)c->Size);
			pl_json_kv_int(j, "num_sharing", __builtin_popcountll(info[i].ProcessorMask));
			pl_json_end_object(j);
		}
	}
	pl_json_end_array(j);
}

void pb_machine_members(struct pl_json *j)
{
	char host[256] = "", exe[4096] = "";
	wchar_t wexe[2048];
	DWORD hlen = sizeof(host);
	if (!GetComputerNameExA(ComputerNameDnsHostname, host, &hlen))
		host[0] = 0;
	pl_json_kv_str(j, "host_name", host);
	DWORD n = GetModuleFileNameW(NULL, wexe, 2048);
	if (n == 0 || n >= 2048 || !WideCharToMultiByte(CP_UTF8, 0, wexe, -1, exe, sizeof(exe), NULL, NULL))
		exe[0] = 0;
	pl_json_kv_str(j, "executable", exe);
	pl_json_kv_int(j, "num_cpus", (long long)GetActiveProcessorCount(ALL_PROCESSOR_GROUPS));
	pl_json_kv_double(j, "mhz_per_cpu", cpu_mhz());
	pl_json_kv_bool(j, "cpu_scaling_enabled", false);
	caches_member(j);
	pl_json_key(j, "load_avg");
	pl_json_begin_array(j);
	pl_json_end_array(j);
}
