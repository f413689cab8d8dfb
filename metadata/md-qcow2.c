/*
 * md-qcow2: the qcow2 header fields ovstore follows.  See md-qcow2.h and
 * QEMU docs/interop/qcow2.txt.
 *
 * Header (big-endian):
 *   0  magic            4  version          8  backing_file_offset
 *   16 backing_file_size 20 cluster_bits    24 size
 *   32 crypt_method     36 l1_size          40 l1_table_offset
 *   48 refcount_table_offset 56 refcount_table_clusters
 *   60 nb_snapshots     64 snapshots_offset (v2 ends at 72)
 *   72 incompatible_features 80 compatible_features 88 autoclear_features
 *   96 refcount_order   100 header_length   (v3: >= 104)
 * Header extensions follow the header (v2: at 72; v3: at header_length):
 * {u32 type, u32 length, data padded to 8 bytes}, ended by type 0.  Like
 * QEMU's qcow2_read_extensions() the walk stops at backing_file_offset when
 * there is a backing file, else at the end of the first cluster.
 */
#include "metadata/md-qcow2.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "common/log.h"

#include "common/banned.h"

#define V2_HEADER_LEN 72
#define V3_HEADER_LEN 104

#define EXT_END 0x00000000u
#define EXT_BACKING_FORMAT 0xe2792acau
#define EXT_DATA_FILE 0x44415441u

/* Bits we know; anything else is a feature we cannot honour. */
#define INCOMPAT_KNOWN                                                                             \
	(MD_QCOW2_INCOMPAT_DIRTY | MD_QCOW2_INCOMPAT_CORRUPT | MD_QCOW2_INCOMPAT_DATA_FILE |      \
	 MD_QCOW2_INCOMPAT_COMPRESSION | MD_QCOW2_INCOMPAT_EXTL2)

#define QCOW_CRYPT_LUKS 2

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

bool md_qcow2_has_magic(const void *buf, size_t len)
{
	return buf && len >= 4 && get_be32(buf) == MD_QCOW2_MAGIC;
}

static int corrupt(const char *what)
{
	log_debug(LOG_CLASS_METADATA, "qcow2 header: %s", what);
	return -EUCLEAN;
}

/*
 * The parse, plus where the header extensions end: *ret_ext_end is the
 * offset just past the end-of-extensions marker, or 0 when the walk reached
 * its limit without one (then nothing may be appended); *ret_walk_end is
 * where the walk stopped, i.e. where the next extension would start.
 */
static int parse(const uint8_t *b, size_t len, MdQcow2Header *h, uint64_t *ret_ext_end,
		 uint64_t *ret_walk_end)
{
	uint64_t cluster_size, ext_limit, off;
	uint64_t ext_end = 0;

	memset(h, 0, sizeof(*h));
	if (!b || len < 4)
		return -ENODATA;
	if (get_be32(b) != MD_QCOW2_MAGIC)
		return corrupt("bad magic");
	if (len < 8)
		return -ENODATA;
	h->version = get_be32(b + 4);
	if (h->version != 2 && h->version != 3) {
		log_debug(LOG_CLASS_METADATA, "qcow2 header: unsupported version %u", h->version);
		return -EPROTONOSUPPORT;
	}
	if (len < V2_HEADER_LEN)
		return -ENODATA;
	h->backing_file_offset = get_be64(b + 8);
	h->backing_file_size = get_be32(b + 16);
	h->cluster_bits = get_be32(b + 20);
	h->size = get_be64(b + 24);
	h->crypt_method = get_be32(b + 32);
	h->header_length = V2_HEADER_LEN;

	if (h->cluster_bits < MD_QCOW2_MIN_CLUSTER_BITS ||
	    h->cluster_bits > MD_QCOW2_MAX_CLUSTER_BITS)
		return corrupt("cluster_bits out of range");
	cluster_size = 1ull << h->cluster_bits;
	if (h->size > INT64_MAX)
		return corrupt("virtual size too large");
	if (h->crypt_method > QCOW_CRYPT_LUKS)
		return corrupt("unknown encryption method");

	if (h->version == 3) {
		if (len < V3_HEADER_LEN)
			return -ENODATA;
		h->incompatible_features = get_be64(b + 72);
		h->header_length = get_be32(b + 100);
		if (h->header_length < V3_HEADER_LEN || h->header_length % 8 != 0)
			return corrupt("bad header_length");
		if (h->header_length > cluster_size)
			return corrupt("header_length exceeds the cluster size");
		if (h->incompatible_features & ~INCOMPAT_KNOWN) {
			log_debug(LOG_CLASS_METADATA,
				  "qcow2 header: unknown incompatible features 0x%llx",
				  (unsigned long long)(h->incompatible_features & ~INCOMPAT_KNOWN));
			return -EPROTONOSUPPORT;
		}
		if (len < h->header_length)
			return -ENODATA;
	}
	h->has_data_file = (h->incompatible_features & MD_QCOW2_INCOMPAT_DATA_FILE) != 0;

	if (h->backing_file_offset) {
		if (h->backing_file_size > MD_QCOW2_BACKING_MAX)
			return corrupt("backing file name too long");
		if (h->backing_file_offset < h->header_length ||
		    h->backing_file_offset > cluster_size ||
		    h->backing_file_size > cluster_size - h->backing_file_offset)
			return corrupt("backing file name outside the first cluster");
		ext_limit = h->backing_file_offset;
	} else {
		ext_limit = cluster_size;
	}

	for (off = h->header_length; off < ext_limit;) {
		uint32_t type, elen;

		if (ext_limit - off < 8)
			return corrupt("truncated header extension");
		if (len < off + 8)
			return -ENODATA;
		type = get_be32(b + off);
		elen = get_be32(b + off + 4);
		off += 8;
		if (elen > ext_limit - off)
			return corrupt("header extension too large");
		if (type == EXT_END) {
			ext_end = off;
			break;
		}
		if (len < off + elen)
			return -ENODATA;
		switch (type) {
		case EXT_BACKING_FORMAT:
			if (elen >= sizeof(h->backing_format) || memchr(b + off, '\0', elen))
				return corrupt("bad backing format extension");
			memcpy(h->backing_format, b + off, elen);
			h->backing_format[elen] = '\0';
			break;
		case EXT_DATA_FILE:
			h->has_data_file = true;
			break;
		default:
			break;
		}
		off += ((uint64_t)elen + 7) & ~7ull;
	}

	if (h->backing_file_offset && h->backing_file_size) {
		if (len < h->backing_file_offset + h->backing_file_size)
			return -ENODATA;
		if (memchr(b + h->backing_file_offset, '\0', h->backing_file_size))
			return corrupt("NUL in backing file name");
		memcpy(h->backing_name, b + h->backing_file_offset, h->backing_file_size);
		h->backing_name[h->backing_file_size] = '\0';
		h->has_backing = true;
	}
	if (ret_ext_end)
		*ret_ext_end = ext_end;
	if (ret_walk_end)
		*ret_walk_end = off;
	return 0;
}

int md_qcow2_parse(const void *buf, size_t len, MdQcow2Header *ret)
{
	MdQcow2Header h;
	int r = parse(buf, len, &h, NULL, NULL);

	if (r < 0)
		return r;
	*ret = h;
	return 0;
}

int md_qcow2_set_backing(void *buf, size_t len, const char *name)
{
	uint8_t *b = buf;
	MdQcow2Header h;
	uint64_t ext_end = 0, walk_end = 0, off, limit;
	size_t nlen = name ? strlen(name) : 0;
	int r;

	r = parse(b, len, &h, &ext_end, &walk_end);
	if (r < 0)
		return r;
	if (nlen > MD_QCOW2_BACKING_MAX)
		return -ENAMETOOLONG;
	limit = MIN((uint64_t)len, 1ull << h.cluster_bits);

	if (nlen == 0) {
		if (!h.backing_file_offset)
			return 0;
		/*
		 * Without a backing file the extension walk runs to the end of
		 * the cluster, so it needs an end marker where the walk now
		 * stops (old v2 images put the name right after the header).
		 */
		if (ext_end == 0 && (walk_end > limit || limit - walk_end < 8))
			return -ENODATA;
		memset(b + h.backing_file_offset, 0, h.backing_file_size);
		if (ext_end == 0)
			memset(b + walk_end, 0, 8);
		put_be64(b + 8, 0);
		put_be32(b + 16, 0);
		return 0;
	}
	if (h.backing_file_offset)
		off = h.backing_file_offset;
	else if (ext_end != 0)
		off = ext_end;
	else
		return -ENOSPC;
	if (off > limit || nlen > limit - off)
		return -ENOSPC;
	/* Clear the old name: nothing stale stays behind a shorter one. */
	if (h.backing_file_offset)
		memset(b + h.backing_file_offset, 0, h.backing_file_size);
	/*
	 * Appending after the end marker: its length must become 0, as QEMU
	 * writes it, or the walk (now bounded by the name) would overrun.
	 */
	if (!h.backing_file_offset)
		put_be32(b + off - 4, 0);
	memcpy(b + off, name, nlen);
	put_be64(b + 8, off);
	put_be32(b + 16, (uint32_t)nlen);
	return 0;
}
