/* Environment capture, the part that is the same on every OS: the toolchain,
 * the page layer's view, and the hypervisor an x86 CPU reports. The OS's own
 * view (kernel, memory settings, CPU model) is in env_<platform>.c. Anything
 * unreadable is left out, never guessed. */
#include "config.h"
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>


static void toolchain_members(struct pl_json *j)
{
#if defined(__clang__)
	pl_json_kv_str(j, "compiler", "clang " __clang_version__);
#elif defined(__GNUC__)
	pl_json_kv_str(j, "compiler", "gcc " __VERSION__);
#endif
#ifdef PL_BUILD_CFLAGS
	pl_json_kv_str(j, "compiler_flags", PL_BUILD_CFLAGS);
#endif
	pl_json_kv_uint(j, "pointer_bits", sizeof(void *) * 8);
	unsigned one = 1;
	pl_json_kv_str(j, "byte_order", *(unsigned char *)&one ? "little" : "big");
}

#if defined(__x86_64__) || defined(__i386__)
/* The hypervisor's CPUID vendor ("KVMKVMKVM", "TCGTCGTCGTCG" for QEMU TCG ...). */
static int hypervisor_vendor(char *out, size_t len)
{
	unsigned a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	if (!(c & (1u << 31)))
		return ENOENT;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x40000000), "c"(0));
	char v[13];
	memcpy(v, &b, 4);
	memcpy(v + 4, &c, 4);
	memcpy(v + 8, &d, 4);
	v[12] = 0;
	snprintf(out, len, "%s", v);
	return 0;
}

static void cpu_hypervisor_members(struct pl_json *j)
{
	char buf[128] = "";
	if (hypervisor_vendor(buf, sizeof(buf)) == 0)
		pl_json_kv_str(j, "hypervisor", buf[0] ? buf : "present (no vendor)");
	else
		pl_json_kv_str(j, "hypervisor", "none detected");
	if (strstr(buf, "TCG"))
		pl_json_kv_str(j, "emulation", "qemu-tcg");
}
#else
/* Other CPUs have no portable instruction that names a hypervisor: the OS file may tell. */
static void cpu_hypervisor_members(struct pl_json *j)
{
	(void)j;
}
#endif

static void page_layer_members(struct pl_json *j)
{
	const struct pl_caps *c = pl_caps();
	pl_json_kv_str(j, "platform", c->platform);
	pl_json_kv_uint(j, "page_size", c->page_size);
	pl_json_kv_uint(j, "allocation_granularity", c->granularity);
	pl_json_kv_uint(j, "thp_pmd_size", c->huge_page_size);
}

void pl_env_json_members(struct pl_json *j)
{
	pl_env_os_members(j);
	page_layer_members(j);
	toolchain_members(j);
	cpu_hypervisor_members(j);
}
