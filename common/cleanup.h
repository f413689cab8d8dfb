/*
 * cleanup: automatic cleanup helpers GLib 2.74 lacks (STYLE.md 4).
 *
 *   g_auto(OvFd) fd = -1;          closed when it goes out of scope
 *   return g_steal_fd(&fd);        hand it out (ov_steal_fd below)
 *
 * Functions return -errno; ov_errno() turns a failed libc call's errno into
 * that form without ever yielding 0 by accident.
 */
#pragma once

#include <errno.h>
#include <unistd.h>
#include <glib.h>

typedef int OvFd;

static inline void ov_close_fd(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		(void)close(fd);
		errno = saved;
	}
}

G_DEFINE_AUTO_CLEANUP_FREE_FUNC(OvFd, ov_close_fd, -1)

static inline int ov_steal_fd(int *fdp)
{
	int fd = *fdp;
	*fdp = -1;
	return fd;
}

/* -errno of the last failed call, never 0. */
static inline int ov_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}
