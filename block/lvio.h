/*
 * lvio: an LV's bytes, read and written by the daemon itself.
 *
 * lvm runs with activation off here (block/lvm.h), so nothing gives the
 * daemon a /dev/<vg>/<lv> to open.  An LvIo is a VG's data path: the
 * domain opens one when it mounts and does every LV byte through it.  One
 * interface, backends behind it (STYLE.md 1, a const table of function
 * pointers as libfuse's fuse_lowlevel_ops):
 *
 *   pvio.c  the PV block devices themselves, piece by piece along the LV's
 *           extent map (the only backend: this kernel has no device-mapper);
 *   (a libdevmapper backend would load the same map as a table of linear
 *           targets into a dm device and do its I/O there.)
 *
 * An LV is named by its extent map (block/extmap.h): immutable and shared by
 * reference, replaced by a new map when the LV grows.  That is all the PV
 * backend needs, and what a dm backend would load (and may key a device
 * by: a new map is a table reload).
 *
 * Invariants and ownership:
 * - I/O through a map covers [off, off + len) inside the map's size:
 *   -ERANGE otherwise, before any byte moves.
 * - direct: the I/O bypasses the page cache (O_DIRECT); buf, off and len are
 *   then multiples of 512 (the device's logical block size; the caller
 *   checks, the device answers -EINVAL otherwise).  Buffers stay the
 *   caller's; they come from ov_aligned_alloc() (common/fileio.h).
 * - pread/pwrite return len or -errno: a short device is -EIO, never a short
 *   count.  zero leaves [off, off + len) reading as zeros on either path;
 *   sync makes every write and zeroing done before it durable.
 * - Thread-safe: any number of I/Os at once, from any thread.
 *
 * Calling sequence:
 *   1. a backend's open (blk_pvio_open());
 *   2. blk_lvio_pread/pwrite/zero/sync, any number, any thread;
 *   3. blk_lvio_free() once no I/O is under way.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>

#include "block/extmap.h"

typedef struct LvIo LvIo;

/* A backend: every function returns -errno on failure. */
typedef struct LvIoOps {
	const char *name; /* "pv", for logs */
	ssize_t (*pread)(LvIo *io, const ExtMap *map, bool direct, void *buf, size_t len,
			 uint64_t off);
	ssize_t (*pwrite)(LvIo *io, const ExtMap *map, bool direct, const void *buf, size_t len,
			  uint64_t off);
	int (*zero)(LvIo *io, const ExtMap *map, uint64_t off, uint64_t len);
	int (*sync)(LvIo *io, bool datasync);
	/* Optional: where [off, off + len) lies as one piece (see blk_lvio_target). */
	int (*target)(LvIo *io, const ExtMap *map, bool direct, size_t len, uint64_t off,
		      int *ret_fd, uint64_t *ret_off);
	void (*free)(LvIo *io);
} LvIoOps;

/* What every backend's object starts with. */
struct LvIo {
	const LvIoOps *ops;
};

ssize_t blk_lvio_pread(LvIo *io, const ExtMap *map, bool direct, void *buf, size_t len,
		       uint64_t off);
ssize_t blk_lvio_pwrite(LvIo *io, const ExtMap *map, bool direct, const void *buf, size_t len,
			uint64_t off);
int blk_lvio_zero(LvIo *io, const ExtMap *map, uint64_t off, uint64_t len);
/*
 * For an asynchronous engine that does the I/O itself: the fd and the byte
 * offset on it where all of [off, off + len) lies, contiguous, when it does
 * (an LV's extents are large, so nearly every request fits one piece).  The
 * fd stays the LvIo's (valid until blk_lvio_free()); the I/O on it follows
 * the same rules as blk_lvio_pread/pwrite (direct: the O_DIRECT fd, aligned
 * buffers).  -EAGAIN when the range spans pieces or the backend has no fd
 * to give: do it with blk_lvio_pread/pwrite instead.  -ERANGE past the end,
 * -EINVAL for len 0.
 */
int blk_lvio_target(LvIo *io, const ExtMap *map, bool direct, size_t len, uint64_t off,
		    int *ret_fd, uint64_t *ret_off);
/* fsync (datasync: fdatasync) of everything the LvIo wrote. */
int blk_lvio_sync(LvIo *io, bool datasync);
const char *blk_lvio_name(const LvIo *io);
/* NULL is fine. */
void blk_lvio_free(LvIo *io);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LvIo, blk_lvio_free)
