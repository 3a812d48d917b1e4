/* Environment capture on Windows: the version Windows reports (RtlGetVersion:
 * no compatibility shim rewrites it), and when the system is Wine, Wine's
 * version and the system under it; the machine name, processors, memory,
 * page files and the large-page size. */
#include "config.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

typedef LONG(WINAPI *rtl_get_version_fn)(OSVERSIONINFOEXW *);
typedef const char *(*wine_get_version_fn)(void);
typedef void (*wine_get_host_version_fn)(const char **sysname, const char **release);

static FARPROC ntdll_export(const char *name)
{
	HMODULE ntdll = GetModuleHandleA("ntdll.dll");
	return ntdll ? GetProcAddress(ntdll, name) : NULL;
}

static const char *arch_name(WORD arch)
{
	switch (arch) {
	case PROCESSOR_ARCHITECTURE_AMD64: return "x86_64";
	case PROCESSOR_ARCHITECTURE_ARM64: return "aarch64";
	case PROCESSOR_ARCHITECTURE_INTEL: return "i686";
	case PROCESSOR_ARCHITECTURE_ARM: return "arm";
	default: return "unknown";
	}
}

static void version_members(struct pl_json *j)
{
	OSVERSIONINFOEXW v = {.dwOSVersionInfoSize = sizeof(v)};
	rtl_get_version_fn get = (rtl_get_version_fn)(void *)ntdll_export("RtlGetVersion");
	char buf[160], csd[128] = "";
	if (!get || get(&v) != 0)
		return;
	pl_json_kv_str(j, "os", "Windows");
	snprintf(buf, sizeof(buf), "%lu.%lu.%lu", v.dwMajorVersion, v.dwMinorVersion, v.dwBuildNumber);
	pl_json_kv_str(j, "kernel", buf);
	if (WideCharToMultiByte(CP_UTF8, 0, v.szCSDVersion, -1, csd, sizeof(csd), NULL, NULL) && csd[0])
		pl_json_kv_str(j, "kernel_version", csd);
	pl_json_kv_str(j, "windows_product", v.wProductType == VER_NT_WORKSTATION ? "workstation" : "server");
}

/* Wine says so through ntdll's wine_get_version; Windows has no such export. */
static void wine_members(struct pl_json *j)
{
	wine_get_version_fn version = (wine_get_version_fn)(void *)ntdll_export("wine_get_version");
	wine_get_host_version_fn host = (wine_get_host_version_fn)(void *)ntdll_export("wine_get_host_version");
	pl_json_kv_str(j, "windows_implementation", version ? "wine" : "microsoft");
	if (!version)
		return;
	pl_json_kv_str(j, "wine_version", version());
	if (host) {
		const char *sysname = NULL, *release = NULL;
		char buf[256];
		host(&sysname, &release);
		snprintf(buf, sizeof(buf), "%s %s", sysname ? sysname : "?", release ? release : "?");
		pl_json_kv_str(j, "wine_host", buf);
	}
}

static void machine_members(struct pl_json *j)
{
	SYSTEM_INFO si;
	char name[256];
	DWORD len = sizeof(name);
	GetNativeSystemInfo(&si);
	pl_json_kv_str(j, "arch", arch_name(si.wProcessorArchitecture));
	if (GetComputerNameExA(ComputerNameDnsHostname, name, &len))
		pl_json_kv_str(j, "hostname", name);
	pl_json_kv_int(j, "online_cpus", (long long)GetActiveProcessorCount(ALL_PROCESSOR_GROUPS));
#if defined(__x86_64__) || defined(__i386__)
	unsigned regs[12];
	for (unsigned i = 0; i < 3; i++)
		__asm__ volatile("cpuid" : "=a"(regs[4 * i]), "=b"(regs[4 * i + 1]), "=c"(regs[4 * i + 2]), "=d"(regs[4 * i + 3])
				 : "a"(0x80000002u + i), "c"(0));
	char brand[49];
	memcpy(brand, regs, 48);
	brand[48] = 0;
	pl_json_kv_str(j, "cpu_model", brand + strspn(brand, " "));
#endif
}

static void memory_members(struct pl_json *j)
{
	MEMORYSTATUSEX ms = {.dwLength = sizeof(ms)};
	if (GlobalMemoryStatusEx(&ms)) {
		pl_json_kv_uint(j, "physical_memory_bytes", ms.ullTotalPhys);
		pl_json_kv_uint(j, "commit_limit_bytes", ms.ullTotalPageFile);
	}
	uint64_t page_files;
	if (pl_swap_total(&page_files) == 0)
		pl_json_kv_bool(j, "swap", page_files > 0);
	pl_json_kv_uint(j, "large_page_minimum", GetLargePageMinimum());
}

void pl_env_os_members(struct pl_json *j)
{
	version_members(j);
	wine_members(j);
	machine_members(j);
	memory_members(j);
	pl_json_kv_str(j, "libc", "mingw-w64 (msvcrt/ucrt)");
}
