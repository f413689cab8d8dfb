/*
 * fuse-abi: the kernel's FUSE request and reply headers
 * (include/uapi/linux/fuse.h), shared by the transports (session.c via
 * passthrough.c, ring.c).  Debian 12's header predates the parts of the ABI
 * fs/ uses beside these, so each file spells out what it needs.
 */
#pragma once

#include <stdint.h>

struct k_in_header {
	uint32_t len;
	uint32_t opcode;
	uint64_t unique;
	uint64_t nodeid;
	uint32_t uid;
	uint32_t gid;
	uint32_t pid;
	uint16_t total_extlen;
	uint16_t padding;
};
_Static_assert(sizeof(struct k_in_header) == 40, "fuse_in_header");

struct k_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};
_Static_assert(sizeof(struct k_out_header) == 16, "fuse_out_header");
