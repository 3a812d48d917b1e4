/* Memory-limited groups on Linux: a child of this process's own memory cgroup
 * (the v2 unified hierarchy where the memory controller is delegated to it,
 * else the v1 memory hierarchy), with memory.max or memory.limit_in_bytes set.
 * Only the new child group is written: no existing group's setting changes.
 * Groups left behind by probes that were killed (their pid gone) are removed
 * when the next one is made. */
#include "pl_internal.h"
#include "linux_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GROUP_PREFIX "pagelab-"

struct pl_memlimit {
	char dir[1024];
	bool v2;
};

/* The mount point of the cgroup file system whose mountinfo line matches: "cgroup2", or "cgroup" with "memory". */
static int cgroup_mount(bool v2, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return errno == ENOENT ? ENOTSUP : errno;
	char line[1024], mnt[256], fstype[64], opts[512];
	int e = ENOTSUP;
	while (e && fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
		    sscanf(dash + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		if (v2 ? strcmp(fstype, "cgroup2") == 0 : strcmp(fstype, "cgroup") == 0 && strstr(opts, "memory"))
			e = snprintf(out, size, "%s", mnt) < (int)size ? 0 : ENAMETOOLONG;
	}
	fclose(f);
	return e;
}

/* This process's path in the hierarchy: "0::PATH" (v2) or "N:...memory...:PATH" (v1). */
static int own_path(bool v2, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return errno == ENOENT ? ENOTSUP : errno;
	char line[1024];
	int e = ENOTSUP;
	while (e && fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		line[strcspn(line, ":")] = 0;
		bool match = v2 ? strcmp(line, "0") == 0 && c2 == c1 + 1 : strstr(c1 + 1, "memory") != NULL;
		c2[1 + strcspn(c2 + 1, "\n")] = 0;
		if (match)
			e = snprintf(out, size, "%s", c2 + 1) < (int)size ? 0 : ENAMETOOLONG;
	}
	fclose(f);
	return e;
}

static int write_file(const char *dir, const char *name, const char *value)
{
	char path[1200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t n = write(fd, value, strlen(value));
	int e = n == (ssize_t)strlen(value) ? 0 : n < 0 ? errno : EIO;
	if (close(fd) != 0 && e == 0)
		e = errno;
	return e;
}

/* v2 gives a child memory.max only where the parent delegates the memory controller to its children. */
static bool v2_delegates_memory(const char *parent, bool is_root)
{
	char path[1200], buf[512];
	snprintf(path, sizeof(path), "%s/cgroup.%s", parent, is_root ? "controllers" : "subtree_control");
	if (pl_linux_read(path, buf, sizeof(buf)) != 0)
		return false;
	return strstr(buf, "memory") != NULL && (is_root || access(path, W_OK) == 0);
}

/* The directory new groups go in, and which hierarchy it is; why says what is missing. */
static int parent_group(char *dir, size_t size, bool *v2, const char **why)
{
	char mnt[256], path[512];
	if (cgroup_mount(true, mnt, sizeof(mnt)) == 0 && own_path(true, path, sizeof(path)) == 0) {
		snprintf(dir, size, "%s%s", mnt, strcmp(path, "/") == 0 ? "" : path);
		if (v2_delegates_memory(dir, strcmp(path, "/") == 0)) {
			*v2 = true;
			return 0;
		}
	}
	if (cgroup_mount(false, mnt, sizeof(mnt)) == 0 && own_path(false, path, sizeof(path)) == 0) {
		snprintf(dir, size, "%s%s", mnt, strcmp(path, "/") == 0 ? "" : path);
		*v2 = false;
		return 0;
	}
	*why = "no memory cgroup this process can make a child group in (neither a delegated cgroup v2 memory "
	       "controller nor a cgroup v1 memory hierarchy)";
	return ENOTSUP;
}

/* Empty groups of probes that were killed before removing theirs. */
static void remove_stale(const char *parent)
{
	DIR *d = opendir(parent);
	if (!d)
		return;
	struct dirent *ent;
	while ((ent = readdir(d)) != NULL) {
		if (strncmp(ent->d_name, GROUP_PREFIX, strlen(GROUP_PREFIX)) != 0)
			continue;
		long pid = strtol(ent->d_name + strlen(GROUP_PREFIX), NULL, 10);
		char path[1200];
		snprintf(path, sizeof(path), "%s/%s", parent, ent->d_name);
		if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
			(void)rmdir(path); /* fails, harmlessly, while a process is still in it */
	}
	closedir(d);
}

int pl_memlimit_create(size_t bytes, struct pl_memlimit **out, const char **why)
{
	struct pl_memlimit *m = calloc(1, sizeof(*m));
	char parent[800], limit[32];
	if (!m)
		return ENOMEM;
	int e = parent_group(parent, sizeof(parent), &m->v2, why);
	if (e == 0) {
		remove_stale(parent);
		snprintf(m->dir, sizeof(m->dir), "%s/" GROUP_PREFIX "%ld", parent, (long)getpid());
		if (mkdir(m->dir, 0755) != 0) {
			e = errno == EACCES || errno == EROFS ? EPERM : errno;
			*why = "cannot make a child memory cgroup here (no write access to this process's group)";
		}
	}
	if (e == 0) {
		snprintf(limit, sizeof(limit), "%zu", bytes);
		e = write_file(m->dir, m->v2 ? "memory.max" : "memory.limit_in_bytes", limit);
		if (e)
			(void)rmdir(m->dir);
	}
	if (e) {
		free(m);
		return e;
	}
	*out = m;
	return 0;
}

int pl_memlimit_join(struct pl_memlimit *m)
{
	char pid[32];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	return write_file(m->dir, "cgroup.procs", pid);
}

int pl_memlimit_remove(struct pl_memlimit *m)
{
	int e = 0;
	struct timespec tick = {0, 10 * 1000 * 1000};
	/* A process that just exited can keep the group busy for a moment. */
	for (int tries = 0; tries < 200 && (e = rmdir(m->dir) == 0 ? 0 : errno) == EBUSY; tries++)
		nanosleep(&tick, NULL);
	free(m);
	return e;
}
