/* This program's path and the world it runs in, on Linux: /proc/self/exe,
 * uname, TracerPid, the executable mappings and the auxiliary vector. */
#include "config.h"
#include "pagelab/os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#ifdef HAVE_SYS_AUXV_H
#include <sys/auxv.h>
#endif

int pl_self_path(const char *argv0, char *out, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", out, size - 1);
	if (n > 0 && (size_t)n < size - 1) {
		out[n] = 0;
		return 0;
	}
	if (!realpath(argv0, out))
		return errno;
	return 0;
}

static bool traced(void)
{
	char buf[8192];
	const char *at;
	if (pl_read_file("/proc/self/status", buf, sizeof(buf)) != 0 || !(at = strstr(buf, "TracerPid:")))
		return false;
	return strtol(at + 10, NULL, 10) != 0;
}

/* Append name to the space-separated set in out unless it is there already. */
static void add_name(char *out, size_t size, const char *name)
{
	size_t n = strlen(name), len = strlen(out);
	for (const char *p = out; (p = strstr(p, name)) != NULL; p += n)
		if ((p == out || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
			return;
	if (len + n + 2 < size)
		snprintf(out + len, size - len, "%s%s", len ? " " : "", name);
}

static int cmp_word(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort the space-separated words of s in place: a set's text must not depend on where each
 * object happened to be mapped (address order changes between two runs of one program). */
static void sort_words(char *s, size_t size)
{
	char copy[2048], *words[128], *save = NULL;
	size_t n = 0, len = 0;
	snprintf(copy, sizeof(copy), "%s", s);
	for (char *w = strtok_r(copy, " ", &save); w && n < 128; w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	qsort(words, n, sizeof(words[0]), cmp_word);
	s[0] = 0;
	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(s + len, size - len, "%s%s", i ? " " : "", words[i]);
}

/* The base names of the files with executable mappings, and [vdso]: a tool that instruments
 * the process maps its own code here. */
static void code_mappings(char *out, size_t size)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4352];
	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char perms[8] = "", path[4096] = "";
		if (sscanf(line, "%*s %7s %*s %*s %*s %4095s", perms, path) < 1 || !strchr(perms, 'x') || !path[0])
			continue;
		const char *base = strrchr(path, '/');
		add_name(out, size, base ? base + 1 : path);
	}
	fclose(f);
	sort_words(out, size);
}

int pl_world(char *out, size_t size)
{
	struct utsname u;
	char code[2048];
	if (uname(&u) != 0)
		return errno;
	code_mappings(code, sizeof(code));
	int n = snprintf(out, size, "%s %s %s; traced %s; code %s", u.sysname, u.release, u.machine,
			 traced() ? "yes" : "no", code);
#ifdef HAVE_SYS_AUXV_H
	if (n > 0 && (size_t)n < size) {
		const char *plat = (const char *)getauxval(AT_PLATFORM);
		n += snprintf(out + n, size - (size_t)n, "; hwcap %#lx; platform %s", getauxval(AT_HWCAP),
			      plat ? plat : "-");
	}
#endif
	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}
