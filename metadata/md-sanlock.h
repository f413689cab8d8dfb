/*
 * md-sanlock: the leader record sanlock keeps in the first sector of a paxos
 * resource (reference 9.3), read without asking sanlock, e.g. to see
 * whether the SPM lease (SDM) is free and which version it is at.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_SANLOCK_LEADER_SIZE 200   /* bytes used of the sector */
#define MD_SANLOCK_PAXOS_MAGIC 0x06152010u

typedef struct {
	uint64_t owner_id;         /* host id of the last owner */
	uint64_t owner_generation;
	uint64_t lver;             /* lease version: +1 at each acquisition */
	uint64_t timestamp;        /* 0 once released */
	char resource[49];         /* resource name, NUL terminated */
} MdSanlockLeader;

/*
 * Parses the paxos leader record at the start of buf.  0 on success;
 * -EUCLEAN for another magic (a delta lease, a cleared resource, never
 * formatted) or a checksum that does not match (torn or corrupt sector);
 * -EINVAL when len < MD_SANLOCK_LEADER_SIZE.
 */
int md_sanlock_leader_parse(const void *buf, size_t len, MdSanlockLeader *ret);

/* Whether the leader says nobody holds the resource (timestamp 0). */
static inline bool md_sanlock_leader_free(const MdSanlockLeader *l)
{
	return l->timestamp == 0;
}
