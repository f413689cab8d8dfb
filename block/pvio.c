/*
 * pvio.c: LV I/O on the PV devices through extent maps (pvio.h).
 */
#include "block/pvio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/banned.h"

typedef struct PvIo {
	LvIo io; /* first: an LvIo* is a PvIo* */
	size_t n;
	int *fd;  /* per PV index: O_RDWR */
	int *dfd; /* per PV index: O_RDWR | O_DIRECT */
} PvIo;

static PvIo *pv_io(LvIo *io)
{
	return (PvIo *)io;
}

static int fd_of(PvIo *p, uint32_t pv, bool direct)
{
	if (pv >= p->n)
		return -1; /* a map built over other devices: EBADF below */
	return direct ? p->dfd[pv] : p->fd[pv];
}

static ssize_t do_io(PvIo *p, const ExtMap *map, bool write, bool direct, char *buf, size_t len,
		     uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ExtMapPiece piece;
		int fd;
		ssize_t k;
		int r = blk_extmap_lookup(map, off + done, len - done, &piece);

		if (r < 0)
			return r;
		fd = fd_of(p, piece.pv, direct);
		if (write)
			k = pwrite(fd, buf + done, (size_t)piece.len, (off_t)piece.offset);
		else
			k = pread(fd, buf + done, (size_t)piece.len, (off_t)piece.offset);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return ov_errno();
		}
		if (k == 0)
			return -EIO; /* a PV shorter than its extents */
		done += (size_t)k;
	}
	return (ssize_t)done;
}

static ssize_t pv_pread(LvIo *io, const ExtMap *map, bool direct, void *buf, size_t len,
			uint64_t off)
{
	return do_io(pv_io(io), map, false, direct, buf, len, off);
}

static ssize_t pv_pwrite(LvIo *io, const ExtMap *map, bool direct, const void *buf, size_t len,
			 uint64_t off)
{
	return do_io(pv_io(io), map, true, direct, (char *)buf, len, off);
}

static int write_zeros(int fd, uint64_t off, uint64_t len)
{
	const size_t chunk = 1024 * 1024;
	void *z = ov_aligned_alloc(chunk);
	int r = 0;

	memset(z, 0, chunk);
	while (len > 0) {
		size_t n = (size_t)MIN(len, (uint64_t)chunk);
		ssize_t k = pwrite(fd, z, n, (off_t)off);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = ov_errno();
			break;
		}
		if (k == 0) {
			r = -EIO;
			break;
		}
		off += (uint64_t)k;
		len -= (uint64_t)k;
	}
	ov_aligned_free(z);
	return r;
}

/*
 * Whole sectors with BLKZEROOUT (the kernel drops their cached pages; zeros
 * written with O_DIRECT where the device refuses it), a partial sector at
 * either end written through the page cache.
 */
static int zero_piece(PvIo *p, const ExtMapPiece *piece)
{
	int fd = fd_of(p, piece->pv, false), dfd = fd_of(p, piece->pv, true);
	uint64_t end = piece->offset + piece->len;
	uint64_t a = (piece->offset + 511) / 512 * 512;
	uint64_t b = end / 512 * 512;
	int r;

	if (a >= b)
		return write_zeros(fd, piece->offset, piece->len);
	if (a > piece->offset && (r = write_zeros(fd, piece->offset, a - piece->offset)) < 0)
		return r;
	{
		uint64_t range[2] = { a, b - a };

		if (ioctl(fd, BLKZEROOUT, range) < 0 && (r = write_zeros(dfd, a, b - a)) < 0)
			return r;
	}
	if (end > b && (r = write_zeros(fd, b, end - b)) < 0)
		return r;
	return 0;
}

static int pv_zero(LvIo *io, const ExtMap *map, uint64_t off, uint64_t len)
{
	PvIo *p = pv_io(io);
	uint64_t done = 0;

	while (done < len) {
		ExtMapPiece piece;
		int r = blk_extmap_lookup(map, off + done, len - done, &piece);

		if (r < 0)
			return r;
		r = zero_piece(p, &piece);
		if (r < 0)
			return r;
		done += piece.len;
	}
	return 0;
}

static int pv_sync(LvIo *io, bool datasync)
{
	PvIo *p = pv_io(io);

	for (size_t i = 0; i < p->n; i++) {
		if ((datasync ? fdatasync(p->fd[i]) : fsync(p->fd[i])) < 0)
			return ov_errno();
	}
	return 0;
}

static int pv_target(LvIo *io, const ExtMap *map, bool direct, size_t len, uint64_t off,
		     int *ret_fd, uint64_t *ret_off)
{
	PvIo *p = pv_io(io);
	ExtMapPiece piece;
	int fd;
	int r = blk_extmap_lookup(map, off, len, &piece);

	if (r < 0)
		return r;
	if (piece.len < len)
		return -EAGAIN; /* crosses a segment or stripe boundary */
	fd = fd_of(p, piece.pv, direct);
	if (fd < 0)
		return -EBADF;
	*ret_fd = fd;
	*ret_off = piece.offset;
	return 0;
}

static void pv_free(LvIo *io)
{
	PvIo *p = pv_io(io);

	for (size_t i = 0; i < p->n; i++) {
		ov_close_fd(p->fd[i]);
		ov_close_fd(p->dfd[i]);
	}
	g_free(p->fd);
	g_free(p->dfd);
	g_free(p);
}

static const LvIoOps pvio_ops = {
	.name = "pv",
	.pread = pv_pread,
	.pwrite = pv_pwrite,
	.zero = pv_zero,
	.sync = pv_sync,
	.target = pv_target,
	.free = pv_free,
};

int blk_pvio_open(const char *const *paths, size_t n, LvIo **ret)
{
	PvIo *p = g_new0(PvIo, 1);
	g_autoptr(LvIo) io = &p->io;

	p->io.ops = &pvio_ops;
	p->fd = g_new(int, n);
	p->dfd = g_new(int, n);
	for (size_t i = 0; i < n; i++)
		p->fd[i] = p->dfd[i] = -1;
	p->n = n;
	for (size_t i = 0; i < n; i++) {
		p->fd[i] = open(paths[i], O_RDWR | O_CLOEXEC);
		if (p->fd[i] < 0)
			return ov_errno();
		p->dfd[i] = open(paths[i], O_RDWR | O_DIRECT | O_CLOEXEC);
		if (p->dfd[i] < 0)
			return ov_errno();
	}
	*ret = g_steal_pointer(&io);
	return 0;
}
