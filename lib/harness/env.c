/* Environment capture (minimal: extended by the benchmark harness work). */
#include "pagelab/env.h"
#include "pagelab/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

int pl_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t n = read(fd, buf, size - 1);
	int e = n < 0 ? errno : 0;
	close(fd);
	if (e)
		return e;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

int pl_sysfs_choice(const char *path, char *buf, size_t size)
{
	char raw[256];
	int e = pl_read_file(path, raw, sizeof(raw));
	if (e)
		return e;
	char *l = strchr(raw, '['), *r = l ? strchr(l, ']') : NULL;
	if (!l || !r)
		return EINVAL;
	snprintf(buf, size, "%.*s", (int)(r - l - 1), l + 1);
	return 0;
}

void pl_env_json_members(struct pl_json *j)
{
	struct utsname u;
	if (uname(&u) == 0) {
		pl_json_kv_str(j, "os", u.sysname);
		pl_json_kv_str(j, "kernel", u.release);
		pl_json_kv_str(j, "kernel_version", u.version);
		pl_json_kv_str(j, "arch", u.machine);
		pl_json_kv_str(j, "hostname", u.nodename);
	}
	pl_json_kv_uint(j, "page_size", pl_page_size());
	pl_json_kv_str(j, "platform", pl_caps()->platform);
}
