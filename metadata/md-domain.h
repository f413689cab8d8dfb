/*
 * md-domain: typed view of domain metadata and the pool keys the master
 * domain carries (reference/ovirt-storage-format.md sections 4 and 11).
 *
 * The MdKv stays the source of truth (unknown keys survive); MdDomainInfo is
 * a validated, typed copy of the keys ovstore uses.  To change metadata,
 * md_kv_set() on the dictionary, re-validate with md_domain_parse() and
 * write md_kv_encode()'s text.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "metadata/md-kv.h"

typedef enum MdSdType {
	MD_SD_TYPE_UNKNOWN = 0,
	MD_SD_TYPE_NFS = 1,
	MD_SD_TYPE_FCP = 2,
	MD_SD_TYPE_ISCSI = 3,
	MD_SD_TYPE_LOCALFS = 4,
	MD_SD_TYPE_CIFS = 5,
	MD_SD_TYPE_POSIXFS = 6,
	MD_SD_TYPE_GLUSTERFS = 7,
	MD_SD_TYPE_MAX,
} MdSdType;

typedef enum MdSdClass {
	MD_SD_CLASS_DATA,
	MD_SD_CLASS_ISO,
	MD_SD_CLASS_BACKUP,
	MD_SD_CLASS_MAX,
} MdSdClass;

typedef enum MdSdRole {
	MD_SD_ROLE_REGULAR,
	MD_SD_ROLE_MASTER,
	MD_SD_ROLE_MAX,
} MdSdRole;

typedef struct MdPoolDomain {
	char uuid[37];
	char status[16]; /* "Active" or "Attached" (kept as written) */
} MdPoolDomain;

typedef struct MdDomainInfo {
	int version;	      /* VERSION: 0, 2, 3, 4, 5 */
	char uuid[37];	      /* SDUUID */
	MdSdType type;	      /* TYPE */
	MdSdClass cls;	      /* CLASS */
	MdSdRole role;	      /* ROLE */
	char *description;    /* DESCRIPTION (may be "") */
	char **pools;	      /* POOL_UUID split on ',', blank UUID and "" dropped; g_strv */
	uint32_t block_size;  /* BLOCK_SIZE, 512 when absent (v < 5) */
	uint32_t alignment;   /* ALIGNMENT, 1 MiB when absent (v < 5) */
	char *vg_uuid;	      /* VGUUID, block only, else NULL */
	/* Pool keys; has_pool_keys is false when MASTER_VERSION is absent. */
	bool has_pool_keys;
	int64_t master_version;	 /* MASTER_VERSION */
	char *pool_description;	 /* POOL_DESCRIPTION */
	MdPoolDomain *pool_domains; /* POOL_DOMAINS */
	size_t n_pool_domains;
	int64_t spm_id;	  /* POOL_SPM_ID, -1 none */
	int64_t spm_lver; /* POOL_SPM_LVER, -1 invalid */
	/* Lease parameters (safelease era, kept for oVirt). */
	int io_op_timeout_sec; /* IOOPTIMEOUTSEC */
} MdDomainInfo;

/*
 * Validates the keys ovstore needs: VERSION (known), SDUUID (UUID), TYPE,
 * CLASS, ROLE, BLOCK_SIZE/ALIGNMENT (allowed values, v5), POOL_UUID,
 * pool keys when present.  -EUCLEAN with a missing or bad required key,
 * -EPROTONOSUPPORT for an unknown VERSION.
 */
int md_domain_parse(const MdKv *kv, MdDomainInfo **ret);
void md_domain_info_free(MdDomainInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MdDomainInfo, md_domain_info_free)

const char *md_sd_type_to_string(MdSdType t);
const char *md_sd_class_to_string(MdSdClass c); /* "Data", "Iso", "Backup" */
const char *md_sd_role_to_string(MdSdRole r);	/* "Regular", "Master" */

/* Parameters of a new domain, as `ovstore domain create` knows them. */
typedef struct MdDomainNew {
	const char *uuid;
	MdSdType type;
	MdSdClass cls;
	const char *description;
	uint32_t block_size; /* 512 or 4096 */
	uint32_t alignment;  /* 1 MiB .. 8 MiB */
	const char *remote_path; /* file domains, may be NULL */
	const char *vg_uuid;	 /* block domains, may be NULL */
} MdDomainNew;

/*
 * The key set VDSM writes for a fresh, unattached v5 domain: POOL_UUID=""
 * ROLE=Regular LOCKPOLICY="" and the default lease parameters.
 */
MdKv *md_domain_new_kv(const MdDomainNew *p);

/*
 * Makes kv the master of pool_uuid: ROLE=Master, POOL_UUID, LOCKPOLICY=ON,
 * MASTER_VERSION=master_version, POOL_DESCRIPTION, POOL_DOMAINS=<self>:Active,
 * POOL_SPM_ID=-1, POOL_SPM_LVER=-1.
 */
void md_domain_make_master(MdKv *kv, const char *pool_uuid, const char *pool_description,
			   int64_t master_version);
/* Attaches a regular domain: POOL_UUID=pool_uuid, ROLE=Regular. */
void md_domain_attach(MdKv *kv, const char *pool_uuid);
/* Sets POOL_DOMAINS on a master from the list. */
void md_domain_set_pool_domains(MdKv *kv, const MdPoolDomain *doms, size_t n);
