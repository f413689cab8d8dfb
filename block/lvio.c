/*
 * lvio.c: the dispatch of an LvIo to its backend (lvio.h), with the checks
 * every backend shares.
 */
#include "block/lvio.h"

#include <errno.h>

#include "common/banned.h"

/* The range inside the map; len 0 is fine. */
static int check_range(const ExtMap *map, size_t len, uint64_t off)
{
	uint64_t size = blk_extmap_size(map);

	if (off > size || (uint64_t)len > size - off)
		return -ERANGE;
	return 0;
}

ssize_t blk_lvio_pread(LvIo *io, const ExtMap *map, bool direct, void *buf, size_t len,
		       uint64_t off)
{
	int r = check_range(map, len, off);

	if (r < 0)
		return r;
	if (len == 0)
		return 0;
	return io->ops->pread(io, map, direct, buf, len, off);
}

ssize_t blk_lvio_pwrite(LvIo *io, const ExtMap *map, bool direct, const void *buf, size_t len,
			uint64_t off)
{
	int r = check_range(map, len, off);

	if (r < 0)
		return r;
	if (len == 0)
		return 0;
	return io->ops->pwrite(io, map, direct, buf, len, off);
}

int blk_lvio_zero(LvIo *io, const ExtMap *map, uint64_t off, uint64_t len)
{
	uint64_t size = blk_extmap_size(map);

	if (off > size || len > size - off)
		return -ERANGE;
	if (len == 0)
		return 0;
	return io->ops->zero(io, map, off, len);
}

int blk_lvio_target(LvIo *io, const ExtMap *map, bool direct, size_t len, uint64_t off,
		    int *ret_fd, uint64_t *ret_off)
{
	int r = check_range(map, len, off);

	if (r < 0)
		return r;
	if (!io->ops->target)
		return -EAGAIN;
	return io->ops->target(io, map, direct, len, off, ret_fd, ret_off);
}

int blk_lvio_sync(LvIo *io, bool datasync)
{
	return io->ops->sync(io, datasync);
}

const char *blk_lvio_name(const LvIo *io)
{
	return io->ops->name;
}

void blk_lvio_free(LvIo *io)
{
	if (io)
		io->ops->free(io);
}
