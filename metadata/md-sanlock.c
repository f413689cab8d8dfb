/*
 * md-sanlock: sanlock's paxos leader record.  See md-sanlock.h.
 *
 * Little-endian (reference 9.3): 0 magic, 4 version, 8 flags, 12 sector
 * size, 16 num_hosts, 24 max_hosts, 32 owner id, 40 owner generation,
 * 48 lver, 56 lockspace name (48), 104 resource name (48), 152 timestamp,
 * 168 checksum over bytes 0..167 (CRC-32C, seed 0xfffffffe, no final
 * xor, as sanlock computes it).
 */
#include "metadata/md-sanlock.h"

#include <errno.h>
#include <string.h>

#include "metadata/md-bytes.h"
#include "metadata/md-journal.h"

#include "common/banned.h"

#define L_MAGIC 0
#define L_OWNER_ID 32
#define L_OWNER_GEN 40
#define L_LVER 48
#define L_RESOURCE 104
#define L_NAME_SIZE 48
#define L_TIMESTAMP 152
#define L_CHECKSUM 168

int md_sanlock_leader_parse(const void *buf, size_t len, MdSanlockLeader *ret)
{
	const uint8_t *p = buf;

	if (len < MD_SANLOCK_LEADER_SIZE)
		return -EINVAL;
	if (md_get_le32(p + L_MAGIC) != MD_SANLOCK_PAXOS_MAGIC)
		return -EUCLEAN;
	if (md_get_le32(p + L_CHECKSUM) != ~md_crc32c(1, p, L_CHECKSUM))
		return -EUCLEAN;
	memset(ret, 0, sizeof(*ret));
	ret->owner_id = md_get_le64(p + L_OWNER_ID);
	ret->owner_generation = md_get_le64(p + L_OWNER_GEN);
	ret->lver = md_get_le64(p + L_LVER);
	ret->timestamp = md_get_le64(p + L_TIMESTAMP);
	memcpy(ret->resource, p + L_RESOURCE, L_NAME_SIZE);
	return 0;
}
