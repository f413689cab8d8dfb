/*
 * cmd-domain.c: `ovstore domain create`.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/parse.h"
#include "domain/create.h"
#include "common/banned.h"

typedef struct CreateOptions {
	char *pool;
	char *dir;
	char *block;
	GPtrArray *storage;
	char *cls;
	char *description;
	char *uuid;
	unsigned io_timeout;
} CreateOptions;

static void create_usage(FILE *f)
{
	fprintf(f,
		"usage: ovstore domain create --pool POOL --dir PATH|--block DEV[,DEV...]\n"
		"                             [--storage PATH|DEV]... [--class data|iso]\n"
		"                             [--description TEXT] [--uuid UUID] [--io-timeout S]\n"
		"\n"
		"Formats a new storage domain (oVirt format V5) in PATH/<sdUUID>/ or on DEVs (a new\n"
		"VG named <sdUUID>) and puts it in\n"
		"pool POOL; prints the domain UUID.  When no domain found under PATH or any\n"
		"--storage belongs to POOL, the pool is new and this domain is its master.\n"
		"\n"
		"  --pool POOL          pool UUID\n"
		"  --dir PATH           a directory (local, NFS, any POSIX mount)\n"
		"  --block DEV,...      LUNs (block devices, blank) for a block domain\n"
		"  --storage PATH       where the pool's other domains live (repeatable)\n"
		"  --class data|iso     domain class (default data)\n"
		"  --description TEXT   domain name, at most 50 characters\n"
		"  --uuid UUID          domain UUID (default: a new random one)\n"
		"  --io-timeout S       lease I/O timeout written into the lockspace "
		"(default 10)\n");
}

static int parse_create(int argc, char **argv, CreateOptions *o)
{
	enum { OPT_POOL = 256, OPT_DIR, OPT_BLOCK, OPT_STORAGE, OPT_CLASS, OPT_DESC, OPT_UUID,
	       OPT_IO_TIMEOUT };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "pool", required_argument, NULL, OPT_POOL },
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "block", required_argument, NULL, OPT_BLOCK },
		{ "storage", required_argument, NULL, OPT_STORAGE },
		{ "class", required_argument, NULL, OPT_CLASS },
		{ "description", required_argument, NULL, OPT_DESC },
		{ "uuid", required_argument, NULL, OPT_UUID },
		{ "io-timeout", required_argument, NULL, OPT_IO_TIMEOUT },
		{},
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		uint64_t v;

		switch (c) {
		case 'h':
			create_usage(stdout);
			return 1;
		case OPT_POOL:
			o->pool = optarg;
			break;
		case OPT_DIR:
			o->dir = optarg;
			break;
		case OPT_BLOCK:
			o->block = optarg;
			break;
		case OPT_STORAGE:
			g_ptr_array_add(o->storage, optarg);
			break;
		case OPT_CLASS:
			o->cls = optarg;
			break;
		case OPT_DESC:
			o->description = optarg;
			break;
		case OPT_UUID:
			o->uuid = optarg;
			break;
		case OPT_IO_TIMEOUT:
			if (parse_u64_range(optarg, 1, 300, &v) < 0) {
				log_error("--io-timeout: '%s' is not 1 to 300 seconds", optarg);
				return -EINVAL;
			}
			o->io_timeout = (unsigned)v;
			break;
		default:
			log_error("domain create: unknown or incomplete option '%s' (see --help)",
				  argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("domain create: unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int domain_create(int argc, char **argv)
{
	g_autoptr(GPtrArray) storage = g_ptr_array_new();
	CreateOptions o = { .storage = storage, .io_timeout = 10 };
	DomainCreateOptions dco = { 0 };
	g_autofree char *uuid = NULL;
	g_autofree char *error = NULL;
	int r;

	r = parse_create(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : 1;
	if (!o.pool) {
		log_error("domain create: --pool is required");
		return 1;
	}
	if (!!o.dir == !!o.block) {
		log_error("domain create: give exactly one of --dir and --block");
		return 1;
	}
	dco.cls = MD_SD_CLASS_DATA;
	if (o.cls && strcmp(o.cls, "iso") == 0) {
		dco.cls = MD_SD_CLASS_ISO;
	} else if (o.cls && strcmp(o.cls, "data") != 0) {
		log_error("domain create: --class must be 'data' or 'iso', not '%s'", o.cls);
		return 1;
	}
	g_ptr_array_add(storage, NULL);
	dco.pool = o.pool;
	dco.dir = o.dir;
	dco.block = o.block;
	dco.storage = (char **)storage->pdata;
	dco.description = o.description;
	dco.uuid = o.uuid;
	dco.io_timeout = o.io_timeout;
	r = dom_create(&dco, &uuid, &error);
	if (r < 0) {
		log_error("domain create: %s", error ? error : g_strerror(-r));
		return 1;
	}
	printf("%s\n", uuid);
	return 0;
}

int cmd_domain(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return domain_create(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: ovstore domain create ...  (ovstore domain create --help)\n");
		return 0;
	}
	log_error("domain: unknown or missing subcommand (only 'create')");
	return 1;
}
