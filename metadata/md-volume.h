/*
 * md-volume: the volume metadata record (reference section 7): text lines
 * "KEY=VALUE\n" sorted by key, ending with "EOF\n", at most 512 bytes.
 * File domains store it as <vol>.meta, block domains in a metadata-LV slot
 * padded with NUL to 512 bytes.
 *
 * v5 writes CAP (bytes) and SEQ; v4 and older write SIZE (512-byte sectors)
 * and MTIME=0.  Decoding accepts both (CAP wins).  Pure functions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_VOLUME_RECORD_SIZE 512
#define MD_VOLUME_NAME_MAX 64
/* What the tree accepts for user.ovstore.description (CONTRACT.md). */
#define MD_VOLUME_DESCRIPTION_MAX 200
/* GEN wraps to 0 after 999 (reference section 16). */
#define MD_VOLUME_GEN_MODULO 1000

typedef enum MdVolFormat {
	MD_VOL_FORMAT_RAW,
	MD_VOL_FORMAT_COW,
	MD_VOL_FORMAT_MAX,
} MdVolFormat;

typedef enum MdVolType {
	MD_VOL_TYPE_PREALLOCATED,
	MD_VOL_TYPE_SPARSE,
	MD_VOL_TYPE_UNKNOWN,
	MD_VOL_TYPE_MAX,
} MdVolType;

typedef enum MdVolRole {
	MD_VOL_ROLE_LEAF,
	MD_VOL_ROLE_INTERNAL,
	MD_VOL_ROLE_SHARED,
	MD_VOL_ROLE_MAX,
} MdVolRole;

typedef enum MdLegality {
	MD_LEGALITY_LEGAL,
	MD_LEGALITY_ILLEGAL,
	MD_LEGALITY_FAKE,
	MD_LEGALITY_MAX,
} MdLegality;

typedef struct MdVolume {
	uint64_t capacity;   /* CAP, or SIZE * 512 */
	int64_t ctime;	     /* CTIME */
	char description[MD_VOLUME_RECORD_SIZE]; /* DESCRIPTION (UTF-8) */
	char disktype[8];    /* DISKTYPE, e.g. "DATA" (kept as written) */
	char domain[37];     /* DOMAIN */
	char image[MD_VOLUME_NAME_MAX + 1];  /* IMAGE */
	char parent[MD_VOLUME_NAME_MAX + 1]; /* PUUID; "" for the blank UUID */
	MdVolFormat format;  /* FORMAT: RAW, COW */
	MdVolType type;	     /* TYPE */
	MdVolRole role;	     /* VOLTYPE */
	MdLegality legality; /* LEGALITY */
	uint32_t generation; /* GEN, 0..999, missing = 0 */
	uint32_t seq;	     /* SEQ, missing = 0 */
} MdVolume;

/*
 * Decodes a record (trailing NULs stripped, stops at the first "EOF" line).
 * -ENODATA: an empty area (all NUL) or one cleared by old VDSM (key NONE).
 * -EUCLEAN: undecodable line, a missing required key (DOMAIN, IMAGE, PUUID,
 * capacity, FORMAT, TYPE, VOLTYPE, DISKTYPE, DESCRIPTION, LEGALITY, CTIME)
 * or a value out of its domain.
 */
int md_volume_decode(const char *buf, size_t len, MdVolume *ret);
/*
 * Encodes for a domain of the given version into buf (not NUL padded);
 * -ERANGE when the record would exceed MD_VOLUME_RECORD_SIZE or buflen.
 */
int md_volume_encode(const MdVolume *vol, int domain_version, char *buf, size_t buflen,
		     size_t *ret_len);

const char *md_vol_format_to_string(MdVolFormat f); /* "RAW", "COW" */
const char *md_vol_type_to_string(MdVolType t);	    /* "PREALLOCATED", "SPARSE", "UNKNOWN" */
const char *md_vol_role_to_string(MdVolRole r);	    /* "LEAF", "INTERNAL", "SHARED" */
const char *md_legality_to_string(MdLegality l);    /* "LEGAL", "ILLEGAL", "FAKE" */
