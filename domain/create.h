/*
 * create: `ovstore domain create`, formatting a new storage domain in
 * oVirt's format V5 and putting it in a pool (reference sections 4, 5, 11).
 *
 * A file domain is built in PATH/.<sdUUID>.creating/ and renamed into place
 * as the last step, so a failure or kill -9 at any point leaves no
 * directory that looks like a domain; a leftover .creating directory is
 * removed by the next create in PATH (creates in one PATH are serialised by
 * an flock on PATH/.ovstore-create.lock).
 */
#pragma once

#include <stdbool.h>

#include "metadata/md-domain.h"

typedef struct DomainCreateOptions {
	const char *pool;	 /* pool UUID */
	const char *dir;	 /* PATH for a file domain */
	const char *block;	 /* or DEV[,DEV...] for a block domain */
	char **storage;		 /* where the pool's other domains live (g_strv, may be NULL) */
	MdSdClass cls;		 /* data or iso */
	const char *description; /* may be NULL */
	const char *uuid;	 /* NULL: a new random one */
	unsigned io_timeout;	 /* seconds, written into the lockspace */
} DomainCreateOptions;

/*
 * Creates the domain; returns its UUID in *ret_uuid.  On failure nothing is
 * left behind and *ret_error holds one line for the user.
 */
int dom_create(const DomainCreateOptions *opt, char **ret_uuid, char **ret_error);
