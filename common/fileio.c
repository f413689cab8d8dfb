#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "common/cleanup.h"
#include "common/fault.h"
#include "common/banned.h"

int file_read_all(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
	g_auto(OvFd) fd = -1;
	g_autofree char *buf = NULL;
	size_t len = 0;
	struct stat st;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ov_errno();
	if (fstat(fd, &st) < 0)
		return ov_errno();
	if ((size_t)st.st_size > max)
		return -EFBIG;
	buf = g_malloc(max + 1);
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ov_errno();
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	*ret_buf = g_steal_pointer(&buf);
	*ret_len = len;
	return 0;
}

int fsync_dir(int dirfd)
{
	return fsync(dirfd) < 0 ? ov_errno() : 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ov_errno();
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int file_write_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
		      const char *fault_tmp, const char *fault_rename)
{
	g_autofree char *tmp = g_strconcat(name, ".new", NULL);
	g_auto(OvFd) fd = -1;
	int r;

	if (fault_tmp && (r = fault_point(fault_tmp)) < 0)
		return r;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return ov_errno();
	r = write_all(fd, buf, len);
	if (r == 0 && fchmod(fd, mode) < 0)
		r = ov_errno();
	if (r == 0 && fsync(fd) < 0)
		r = ov_errno();
	if (r == 0 && fault_rename)
		r = fault_point(fault_rename);
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = ov_errno();
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return r;
	}
	return fsync_dir(dirfd);
}

int file_create_sized(int dirfd, const char *name, off_t size, mode_t mode)
{
	g_auto(OvFd) fd = -1;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, mode);
	if (fd < 0)
		return ov_errno();
	if (fchmod(fd, mode) < 0 || ftruncate(fd, size) < 0 || fsync(fd) < 0)
		return ov_errno();
	return 0;
}

void *ov_aligned_alloc(size_t size)
{
	void *p = NULL;

	if (posix_memalign(&p, OV_DIRECT_ALIGN, size ? size : OV_DIRECT_ALIGN) != 0)
		g_error("out of memory allocating %zu aligned bytes", size);
	return p;
}

#define OV_HUGE_SIZE (2u * 1024 * 1024)

void *ov_huge_alloc(size_t size)
{
	size_t len = (size + OV_HUGE_SIZE - 1) / OV_HUGE_SIZE * OV_HUGE_SIZE;
	void *p = NULL;

	if (len == 0)
		len = OV_HUGE_SIZE;
	if (posix_memalign(&p, OV_HUGE_SIZE, len) != 0)
		g_error("out of memory allocating %zu aligned bytes", len);
	/* advice only: with THP off (or "never") the buffer keeps small pages */
	(void)madvise(p, len, MADV_HUGEPAGE);
	return p;
}

void ov_aligned_free(void *p)
{
	free(p);
}
