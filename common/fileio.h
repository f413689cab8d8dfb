/*
 * fileio: small-file helpers for metadata files on file domains, and the
 * one aligned allocator for O_DIRECT buffers.
 *
 * file_write_atomic() is the "write NAME.new, fsync, rename over NAME,
 * fsync the directory" sequence that oVirt relies on for dom_md/metadata
 * and <vol>.meta: a reader sees the old or the new content, never a mix,
 * and after it returns the new content is durable.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Reads at most max bytes of dirfd/path; -EFBIG when the file is larger. */
int file_read_all(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len);
/*
 * Atomically replaces dirfd/name with buf.  fault_tmp/fault_rename (may be
 * NULL) are fault points fired before writing the temporary file and before
 * renaming it.
 */
int file_write_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
		      const char *fault_tmp, const char *fault_rename);
int fsync_dir(int dirfd);
/* Creates or truncates dirfd/name to size bytes (sparse), mode, durable. */
int file_create_sized(int dirfd, const char *name, off_t size, mode_t mode);

/* Memory aligned for O_DIRECT (4096 bytes, enough for any logical block size). */
#define OV_DIRECT_ALIGN 4096
void *ov_aligned_alloc(size_t size);
void ov_aligned_free(void *p);
/*
 * A data buffer of the FUSE path (1 MiB requests): 2 MiB-aligned and offered to
 * transparent huge pages, so that the kernel's copy to and from /dev/fuse and
 * an O_DIRECT bio walk one physically contiguous folio rather than 256 pages.
 * Falls back to small pages by itself; freed with ov_aligned_free().
 */
void *ov_huge_alloc(size_t size);
