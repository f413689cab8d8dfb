/*
 * md-qcow2: the qcow2 header fields ovstore follows (QEMU
 * docs/interop/qcow2.txt): magic, version, virtual size, cluster size,
 * backing file name and backing format (header extension 0xE2792ACA).
 *
 * All fields are big-endian on disk.  The parser takes the first bytes of
 * the image (at least the first cluster, or as much as the header
 * references) and never reads outside the buffer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */
#define MD_QCOW2_BACKING_MAX 1023  /* QEMU's limit on the name */
/* QEMU's cluster size bounds: 512 B .. 2 MiB */
#define MD_QCOW2_MIN_CLUSTER_BITS 9
#define MD_QCOW2_MAX_CLUSTER_BITS 21

/* Incompatible feature bits (header offset 72). */
#define MD_QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define MD_QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define MD_QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define MD_QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define MD_QCOW2_INCOMPAT_EXTL2 (1ull << 4)

typedef struct MdQcow2Header {
	uint32_t version;	       /* 2 or 3 */
	uint64_t backing_file_offset; /* 0: no backing file */
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;		       /* virtual size in bytes */
	uint32_t crypt_method;
	uint64_t incompatible_features; /* v3, else 0 */
	uint32_t header_length;		/* v3, else 72 */
	bool has_backing;
	char backing_name[MD_QCOW2_BACKING_MAX + 1];
	char backing_format[17]; /* "" when the extension is absent */
	bool has_data_file;	 /* external data file extension or bit */
} MdQcow2Header;

/* true when buf starts with the qcow2 magic (len >= 4). */
bool md_qcow2_has_magic(const void *buf, size_t len);

/*
 * Parses the header.  -EUCLEAN: bad magic, a field out of QEMU's bounds, a
 * backing name or an extension outside the first cluster.
 * -EPROTONOSUPPORT: a version other than 2/3, or an unknown incompatible
 * feature bit.
 * -ENODATA: buf is too short for what the header references (call again
 * with more bytes).
 */
int md_qcow2_parse(const void *buf, size_t len, MdQcow2Header *ret);

/*
 * Rewrites the backing file name in the header held in buf (the first
 * cluster of the image, len >= cluster size): the name is written at the
 * current backing_file_offset, or right after the header extensions when
 * there is none, and backing_file_offset/size updated.  The backing format
 * extension is left as is.  A NULL or "" name removes the backing file.
 * -ENOSPC when the name does not fit in the first cluster (or in len);
 * -ENAMETOOLONG above MD_QCOW2_BACKING_MAX; md_qcow2_parse()'s errors when
 * buf is not a valid header, and -ENODATA when buf is too short to finish
 * the header.  buf is unchanged on error.
 */
int md_qcow2_set_backing(void *buf, size_t len, const char *name);
