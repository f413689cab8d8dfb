/*
 * pvio: the LvIo backend on the PV devices themselves (block/lvio.h).
 *
 * Each PV is opened twice, O_RDWR and O_RDWR | O_DIRECT (both O_CLOEXEC),
 * once, for the life of the LvIo.  An I/O is split along the LV's extent
 * map (blk_extmap_lookup()) and each piece is one pread/pwrite on the PV
 * that holds it: the O_DIRECT fd for direct I/O, the buffered one
 * otherwise.  Zeroing uses BLKZEROOUT over whole sectors (the kernel drops
 * the cached pages it covers) and writes zeros where the device refuses
 * it, or for a partial sector at either end (through the page cache).
 * sync is fsync/fdatasync of every PV's buffered fd, which flushes the
 * device's write cache for the O_DIRECT writes too.  target gives the PV
 * fd (O_DIRECT or not, as the I/O) and the offset on it of a range that
 * lies in one piece, so an asynchronous engine can do it there itself.
 *
 * The PV index of a map piece is the position of the device in paths: open
 * with the paths in the order the maps were built with (an LvmCtx's,
 * blk_lvm_pv_path()).  Regular files work too (BLKZEROOUT then falls back
 * to writing zeros), which the unit tests use.
 */
#pragma once

#include <stddef.h>

#include "block/lvio.h"

/* Opens paths[0..n) read-write; -errno of the first that fails to open. */
int blk_pvio_open(const char *const *paths, size_t n, LvIo **ret);
