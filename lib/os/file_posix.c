/* Files on POSIX: small reads, private temporary directories, atomic replace. */
#include "config.h"
#include "pagelab/os.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pl_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t n = 0;
	int e = 0;
	while (n < size - 1) {
		ssize_t got = read(fd, buf + n, size - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			e = errno;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	if (close(fd) != 0 && e == 0)
		e = errno;
	if (e)
		return e;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

int pl_make_tmpdir(const char *prefix, char *out, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(out, size, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	if (n < 0 || (size_t)n >= size)
		return ENAMETOOLONG;
	return mkdtemp(out) ? 0 : errno;
}

static int remove_error;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	if (remove(path) != 0 && remove_error == 0)
		remove_error = errno;
	return 0;
}

int pl_remove_tree(const char *path)
{
	remove_error = 0;
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return errno ? errno : EIO;
	return remove_error;
}

int pl_replace_file(const char *from, const char *to)
{
	return rename(from, to) == 0 ? 0 : errno;
}

int pl_sync_file(void *stdio_file)
{
	/* Pipes and some file systems cannot sync: that is not a failure to write. */
	if (fsync(fileno((FILE *)stdio_file)) != 0 && errno != EINVAL && errno != EROFS)
		return errno;
	return 0;
}
