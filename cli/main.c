/*
 * main.c: the `ovstore` binary; dispatches from a {name, fn} table like
 * git's commands[] (STYLE.md 2).  When argv[1] is not a command it is
 * mount.fuse3 running `ovstore SOURCE MOUNTPOINT -o OPTIONS` for
 * `mount -t fuse.ovstore`: translated to `ovstore mount ...`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "cli/cli.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/mountopts.h"
#include "config.h"
#include "common/banned.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "domain", cmd_domain, "create storage domains" },
	{ "mount", cmd_mount, "run the daemon: serve the storage as a tree" },
	{ "status", cmd_status, "show what a mount serves" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ovstore COMMAND [ARGS...]\n\n"
		   "oVirt-style virtualization storage as a FUSE tree:\n"
		   "  MOUNT/<pool>/<domain>/<image>/<volume>\n\ncommands:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n`ovstore COMMAND --help` for a command's options; "
		   "`ovstore --list-fault-points` for test fault points.\n");
}

static int run_as_mount_helper(int argc, char **argv)
{
	MountArgs args = { 0 };
	g_auto(GStrv) nargv = NULL;
	g_autofree char *error = NULL;
	int r;

	r = mountopts_parse_args(argc, argv, &args, &error);
	if (r == 0)
		r = mountopts_translate_full(args.source, args.mountpoint, args.options, argv[0],
					     &nargv, &error);
	mountopts_args_release(&args);
	if (r < 0) {
		log_error("%s", error ? error : "bad mount arguments");
		return 1;
	}
	return cmd_mount((int)g_strv_length(nargv) - 1, nargv + 1);
}

int main(int argc, char **argv)
{
	const char *debug = getenv("OVSTORE_DEBUG");
	unsigned mask = 0;

	log_setup("ovstore");
	if (debug && log_parse_classes(debug, &mask) < 0) {
		log_error("OVSTORE_DEBUG: unknown class in '%s' (fs, metadata, block, lease, "
			  "mailbox, io, domain, all)", debug);
		return 1;
	}
	log_set_debug_classes(mask);
	if (fault_setup() < 0)
		return 1;
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("ovstore %s\n", OVSTORE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--list-fault-points") == 0) {
		for (const char *const *p = fault_point_names(); *p; p++)
			printf("%s\n", *p);
		return 0;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	if (argv[1][0] != '-' && argc >= 3)
		return run_as_mount_helper(argc, argv);
	log_error("unknown command '%s' (see ovstore --help)", argv[1]);
	return 1;
}
