/*
 * cmd-status.c: `ovstore status MOUNTPOINT [--json] [--log]`.  The daemon
 * answers through the mount: the root's user.ovstore.status attribute holds
 * the JSON, user.ovstore.log the recent debug lines.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/banned.h"

static void status_usage(FILE *f)
{
	fprintf(f, "usage: ovstore status MOUNTPOINT [--json] [--log]\n\n"
		   "Pools, domains (type, class, size, free, state), SPM host, this host id.\n"
		   "  --json   one JSON object (see the man page for its members)\n"
		   "  --log    the daemon's recent debug lines\n");
}

/* The value is live (counters move between calls): size it, then retry on ERANGE. */
static int read_attr(const char *path, const char *name, char **ret)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		ssize_t n = getxattr(path, name, NULL, 0);
		g_autofree char *buf = NULL;
		size_t cap;

		if (n < 0)
			return -errno;
		cap = (size_t)n + 4096;
		buf = g_malloc(cap + 1);
		n = getxattr(path, name, buf, cap);
		if (n < 0 && errno == ERANGE)
			continue;
		if (n < 0)
			return -errno;
		buf[n] = '\0';
		*ret = g_steal_pointer(&buf);
		return 0;
	}
	return -ERANGE;
}

static char *human(gint64 bytes)
{
	return g_format_size_full((guint64)MAX(bytes, 0), G_FORMAT_SIZE_IEC_UNITS);
}

static void print_text(JsonObject *root)
{
	JsonArray *pools = json_object_get_array_member(root, "pools");
	JsonObject *req = json_object_get_object_member(root, "requests");
	JsonArray *problems = json_object_get_array_member(root, "problems");

	printf("host %" G_GINT64_FORMAT " (lease %s), passthrough %s, daemon served %" G_GINT64_FORMAT
	       " reads and %" G_GINT64_FORMAT " writes\n",
	       json_object_get_int_member(root, "host_id"),
	       json_object_get_string_member(root, "lease"),
	       json_object_get_boolean_member(root, "passthrough") ? "available" : "off",
	       json_object_get_int_member(req, "read"), json_object_get_int_member(req, "write"));
	for (guint i = 0; pools && i < json_array_get_length(pools); i++) {
		JsonObject *p = json_array_get_object_element(pools, i);
		JsonArray *doms = json_object_get_array_member(p, "domains");
		JsonNode *spm = json_object_get_member(p, "spm");

		printf("pool %s: ", json_object_get_string_member(p, "uuid"));
		if (JSON_NODE_HOLDS_NULL(spm))
			printf("no SPM\n");
		else
			printf("SPM host %" G_GINT64_FORMAT "%s\n", json_node_get_int(spm),
			       json_object_get_boolean_member(p, "is_spm") ? " (this host)" : "");
		for (guint j = 0; doms && j < json_array_get_length(doms); j++) {
			JsonObject *d = json_array_get_object_element(doms, j);
			g_autofree char *size = human(json_object_get_int_member(d, "size"));
			g_autofree char *free_ = human(json_object_get_int_member(d, "free"));
			JsonArray *corrupt = json_object_get_array_member(d, "corrupt");

			printf("  domain %s  %s %s %s  size %s free %s  %s  %" G_GINT64_FORMAT
			       " images %" G_GINT64_FORMAT " volumes\n",
			       json_object_get_string_member(d, "uuid"),
			       json_object_get_string_member(d, "type"),
			       json_object_get_string_member(d, "class"),
			       json_object_get_string_member(d, "role"), size, free_,
			       json_object_get_string_member(d, "state"),
			       json_object_get_int_member(d, "images"),
			       json_object_get_int_member(d, "volumes"));
			for (guint k = 0; corrupt && k < json_array_get_length(corrupt); k++)
				printf("    corrupt volume record: %s\n",
				       json_array_get_string_element(corrupt, k));
		}
	}
	for (guint i = 0; problems && i < json_array_get_length(problems); i++) {
		JsonObject *pr = json_array_get_object_element(problems, i);

		printf("not mounted: %s: %s\n", json_object_get_string_member(pr, "path"),
		       json_object_get_string_member(pr, "error"));
	}
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "log", no_argument, NULL, 'l' },
		{},
	};
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *text = NULL;
	const char *mp;
	bool json = false, log = false;
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			status_usage(stdout);
			return 0;
		case 'j':
			json = true;
			break;
		case 'l':
			log = true;
			break;
		default:
			log_error("status: unknown option '%s' (see --help)", argv[optind - 1]);
			return 1;
		}
	}
	if (optind != argc - 1) {
		log_error("status: give exactly one MOUNTPOINT");
		return 1;
	}
	mp = argv[optind];
	r = read_attr(mp, log ? "user.ovstore.log" : "user.ovstore.status", &text);
	if (r < 0) {
		if (r == -ENODATA || r == -ENOTSUP || r == -EOPNOTSUPP)
			log_error("status: '%s' is not an ovstore mount", mp);
		else
			log_error("status: '%s': %s", mp, g_strerror(-r));
		return 1;
	}
	if (log || json) {
		printf("%s%s", text, log || g_str_has_suffix(text, "\n") ? "" : "\n");
		return 0;
	}
	parser = json_parser_new();
	if (!json_parser_load_from_data(parser, text, -1, &err) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
		log_error("status: '%s' answered something that is not JSON", mp);
		return 1;
	}
	print_text(json_node_get_object(json_parser_get_root(parser)));
	return 0;
}
