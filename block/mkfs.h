/*
 * mkfs: oVirt's master LV holds an ext3 file system (reference section 6:
 * `mkfs -q -j -E nodiscard`).  With no device-mapper the LV is no device
 * of its own: mke2fs writes it at the LV's byte offset on its PV
 * (`-E offset=`), the bytes an activated /dev/<vg>/master would show.
 */
#pragma once

#include <stdint.h>

/*
 * Makes an ext3 file system of size bytes at offset of dev.  -errno when
 * mke2fs cannot be run (ENOENT: not installed) or fails (EIO, its stderr
 * logged).
 */
int blk_mkfs_ext3(const char *dev, uint64_t offset, uint64_t size);
