/*
 * md-xleases: the external leases index (reference section 10) that a new
 * v4+ domain carries in dom_md/xleases (file) or the xleases LV (block).
 * ovstore formats it and validates it; it does not use external leases.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define MD_XLEASES_INDEX_SIZE 253952 /* 62 * 4096 */
#define MD_XLEASES_RECORDS 3960
#define MD_XLEASES_MAGIC 0x12152016u

/*
 * Writes a formatted, empty index (metadata block with state '-', 3960 free
 * records) into buf (MD_XLEASES_INDEX_SIZE bytes).  The index lives at
 * offset `alignment` of the volume.  -EINVAL for a short buffer or a
 * lockspace name that is empty or longer than 48; -ERANGE when mtime does
 * not fit in 10 digits.
 */
int md_xleases_format(const char *sd_uuid, int64_t mtime, void *buf, size_t len);
/*
 * 0 when buf holds a valid index for sd_uuid (NULL: any lockspace);
 * -EPROTONOSUPPORT for an index version other than 0001; -EUCLEAN
 * otherwise; -EINVAL when len < MD_XLEASES_INDEX_SIZE.
 */
int md_xleases_validate(const char *sd_uuid, const void *buf, size_t len);
