#include "common/mountopts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <glib.h>

#include "common/parse.h"
#include "common/banned.h"

/* CONTRACT.md "Words": host ids are 1..2000 (sanlock's maximum). */
#define HOST_ID_MAX 2000
/* An I/O timeout above an hour is a typo, not a setting. */
#define IO_TIMEOUT_MAX 3600

/*
 * Options mount(8) and /etc/fstab use for their own bookkeeping (mount(8)
 * "FILESYSTEM-INDEPENDENT MOUNT OPTIONS"): FUSE would refuse them as unknown.
 * "rw" is the default and dropped too; "ro" is a real mount flag and passed.
 */
static const char *const dropped_names[] = {
	"_netdev", "nofail", "auto", "noauto", "defaults", "rw",
	"user",	   "nouser", "users", "owner", "group",
};
static const char *const dropped_prefixes[] = {
	"x-", "comment=", "user=", "helper=", "uhelper=",
};

static int fail(char **ret_error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static int fail(char **ret_error, const char *fmt, ...)
{
	va_list ap;

	if (ret_error) {
		va_start(ap, fmt);
		*ret_error = g_strdup_vprintf(fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/*
 * Splits s at every sep that is neither escaped by a backslash nor inside
 * double quotes.  Tokens keep their escapes and quotes, so passed-on options
 * reach fuse_opt exactly as written.  Empty tokens are kept.
 */
static int split_raw(const char *s, char sep, GPtrArray **ret)
{
	g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func(g_free);
	const char *start = s;
	bool quoted = false;

	for (const char *p = s;; p++) {
		if (*p == '\\' && p[1]) {
			p++;
		} else if (*p == '"') {
			quoted = !quoted;
		} else if (*p == '\0' || (*p == sep && !quoted)) {
			if (*p == '\0' && quoted)
				return -EINVAL;
			g_ptr_array_add(tokens, g_strndup(start, (gsize)(p - start)));
			if (*p == '\0')
				break;
			start = p + 1;
		}
	}
	*ret = g_steal_pointer(&tokens);
	return 0;
}

/* The value as the user meant it: escapes resolved, quotes removed. */
static char *unescape(const char *s)
{
	GString *out = g_string_sized_new(strlen(s));

	for (const char *p = s; *p; p++) {
		if (*p == '\\' && p[1])
			g_string_append_c(out, *++p);
		else if (*p != '"')
			g_string_append_c(out, *p);
	}
	return g_string_free(out, FALSE);
}

static bool is_dropped(const char *opt)
{
	for (size_t i = 0; i < G_N_ELEMENTS(dropped_names); i++)
		if (strcmp(opt, dropped_names[i]) == 0)
			return true;
	for (size_t i = 0; i < G_N_ELEMENTS(dropped_prefixes); i++)
		if (g_str_has_prefix(opt, dropped_prefixes[i]))
			return true;
	return false;
}

/* For "key=value" returns value, for "key" alone "", otherwise NULL. */
static const char *option_value(const char *opt, const char *key)
{
	size_t n = strlen(key);

	if (strncmp(opt, key, n) != 0)
		return NULL;
	if (opt[n] == '=')
		return opt + n + 1;
	if (opt[n] == '\0')
		return "";
	return NULL;
}

static int add_storage_list(GPtrArray *storage, const char *raw, char **ret_error)
{
	g_autoptr(GPtrArray) parts = NULL;

	if (split_raw(raw, ':', &parts) < 0)
		return fail(ret_error, "unterminated quote in storage='%s'", raw);
	for (guint i = 0; i < parts->len; i++) {
		g_autofree char *path = unescape(parts->pdata[i]);

		if (!*path)
			return fail(ret_error, "empty path in storage='%s'", raw);
		g_ptr_array_add(storage, g_steal_pointer(&path));
	}
	return 0;
}

static int parse_number_option(const char *key, const char *raw, uint64_t max, char **ret_val,
			       char **ret_error)
{
	g_autofree char *val = unescape(raw);
	uint64_t v;

	if (parse_u64_range(val, 1, max, &v) < 0)
		return fail(ret_error, "bad %s '%s', expected 1..%" PRIu64, key, val, max);
	*ret_val = g_strdup_printf("%" PRIu64, v);
	return 0;
}

int mountopts_translate_full(const char *source, const char *mountpoint, const char *options,
			     const char *ovstore_path, char ***ret_argv, char **ret_error)
{
	g_autoptr(GPtrArray) storage = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) tokens = NULL;
	g_autoptr(GPtrArray) argv = NULL;
	g_autoptr(GString) rest = g_string_new(NULL);
	g_autofree char *lease = NULL;
	g_autofree char *host_id = NULL;
	g_autofree char *io_timeout = NULL;
	int r;

	g_assert(ret_argv);

	if (!mountpoint || !*mountpoint)
		return fail(ret_error, "no mountpoint given");
	if (source && *source && strcmp(source, "none") != 0 && strcmp(source, "ovstore") != 0)
		g_ptr_array_add(storage, g_strdup(source));

	if (split_raw(options ? options : "", ',', &tokens) < 0)
		return fail(ret_error, "unterminated quote in options '%s'", options);
	for (guint i = 0; i < tokens->len; i++) {
		const char *opt = tokens->pdata[i];
		const char *val;

		if (!*opt || is_dropped(opt))
			continue;
		if ((val = option_value(opt, "lease"))) {
			g_autofree char *l = unescape(val);

			if (strcmp(l, "local") != 0 && strcmp(l, "sanlock") != 0)
				return fail(ret_error, "unknown lease '%s', expected local or sanlock",
					    l);
			g_free(lease);
			lease = g_steal_pointer(&l);
		} else if ((val = option_value(opt, "host_id"))) {
			g_clear_pointer(&host_id, g_free);
			r = parse_number_option("host_id", val, HOST_ID_MAX, &host_id, ret_error);
			if (r < 0)
				return r;
		} else if ((val = option_value(opt, "io_timeout"))) {
			g_clear_pointer(&io_timeout, g_free);
			r = parse_number_option("io_timeout", val, IO_TIMEOUT_MAX, &io_timeout,
						ret_error);
			if (r < 0)
				return r;
		} else if ((val = option_value(opt, "storage"))) {
			r = add_storage_list(storage, val, ret_error);
			if (r < 0)
				return r;
		} else {
			if (rest->len)
				g_string_append_c(rest, ',');
			g_string_append(rest, opt);
		}
	}

	argv = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(argv, g_strdup(ovstore_path && *ovstore_path ? ovstore_path : "ovstore"));
	g_ptr_array_add(argv, g_strdup("mount"));
	for (guint i = 0; i < storage->len; i++) {
		g_ptr_array_add(argv, g_strdup("--storage"));
		g_ptr_array_add(argv, g_strdup(storage->pdata[i]));
	}
	if (lease) {
		g_ptr_array_add(argv, g_strdup("--lease"));
		g_ptr_array_add(argv, g_steal_pointer(&lease));
	}
	if (host_id) {
		g_ptr_array_add(argv, g_strdup("--host-id"));
		g_ptr_array_add(argv, g_steal_pointer(&host_id));
	}
	if (io_timeout) {
		g_ptr_array_add(argv, g_strdup("--io-timeout"));
		g_ptr_array_add(argv, g_steal_pointer(&io_timeout));
	}
	if (rest->len) {
		g_ptr_array_add(argv, g_strdup("-o"));
		g_ptr_array_add(argv, g_strdup(rest->str));
	}
	/* mount(8) passes a canonical absolute path; anything else is guarded. */
	if (mountpoint[0] == '-')
		g_ptr_array_add(argv, g_strdup("--"));
	g_ptr_array_add(argv, g_strdup(mountpoint));
	g_ptr_array_add(argv, NULL);

	g_ptr_array_set_free_func(argv, NULL);
	*ret_argv = (char **)g_ptr_array_free(g_steal_pointer(&argv), FALSE);
	return 0;
}

int mountopts_translate(const char *source, const char *mountpoint, const char *options,
			const char *ovstore_path, char ***ret_argv)
{
	return mountopts_translate_full(source, mountpoint, options, ovstore_path, ret_argv, NULL);
}

static void append_option(char **options, const char *more)
{
	char *joined;

	if (!*options) {
		*options = g_strdup(more);
		return;
	}
	joined = g_strconcat(*options, ",", more, NULL);
	g_free(*options);
	*options = joined;
}

static int set_type(MountArgs *a, const char *type, char **ret_error)
{
	if (strcmp(type, "ovstore") != 0 && strcmp(type, "fuse.ovstore") != 0)
		return fail(ret_error, "unsupported filesystem type '%s', expected ovstore", type);
	g_free(a->type);
	a->type = g_strdup(type);
	return 0;
}

/* One argument starting with '-': a cluster like "-fv", "-oOPTS" or "-o" OPTS. */
static int parse_flag_cluster(MountArgs *a, int argc, char *const *argv, int *i,
			      char **ret_error)
{
	const char *arg = argv[*i];

	for (const char *c = arg + 1; *c; c++) {
		const char *val;

		switch (*c) {
		case 'f':
			a->flags |= MOUNT_ARGS_FAKE;
			continue;
		case 'v':
			a->flags |= MOUNT_ARGS_VERBOSE;
			continue;
		case 'n':
			a->flags |= MOUNT_ARGS_NO_MTAB;
			continue;
		case 's':
			a->flags |= MOUNT_ARGS_SLOPPY;
			continue;
		case 'h':
			a->flags |= MOUNT_ARGS_HELP;
			continue;
		case 'V':
			a->flags |= MOUNT_ARGS_VERSION;
			continue;
		case 'o':
		case 't':
		case 'N':
			break;
		default:
			return fail(ret_error, "unknown option '-%c'", *c);
		}
		/* Takes a value: the rest of this argument, or the next one. */
		if (c[1]) {
			val = c + 1;
		} else if (*i + 1 < argc) {
			val = argv[++*i];
		} else {
			return fail(ret_error, "option '-%c' needs a value", *c);
		}
		if (*c == 'o')
			append_option(&a->options, val);
		else if (*c == 't')
			return set_type(a, val, ret_error);
		else
			return fail(ret_error, "mount namespaces (-N) are not supported");
		return 0;
	}
	return 0;
}

int mountopts_parse_args(int argc, char *const *argv, MountArgs *ret, char **ret_error)
{
	MountArgs a = { 0 };
	const char *pos[2] = { NULL, NULL };
	int npos = 0;
	bool flags_done = false;
	int r = 0;

	for (int i = 1; i < argc && r >= 0; i++) {
		const char *arg = argv[i];

		if (!flags_done && strcmp(arg, "--") == 0) {
			flags_done = true;
		} else if (!flags_done && strcmp(arg, "--help") == 0) {
			a.flags |= MOUNT_ARGS_HELP;
		} else if (!flags_done && strcmp(arg, "--version") == 0) {
			a.flags |= MOUNT_ARGS_VERSION;
		} else if (!flags_done && arg[0] == '-' && arg[1] == '-') {
			r = fail(ret_error, "unknown option '%s'", arg);
		} else if (!flags_done && arg[0] == '-' && arg[1]) {
			r = parse_flag_cluster(&a, argc, argv, &i, ret_error);
		} else if (npos < 2) {
			pos[npos++] = arg;
		} else {
			r = fail(ret_error, "unexpected argument '%s'", arg);
		}
	}
	if (r >= 0 && !(a.flags & (MOUNT_ARGS_HELP | MOUNT_ARGS_VERSION))) {
		if (npos == 0)
			r = fail(ret_error, "no mountpoint given");
		else if (npos == 1 && !*pos[0])
			r = fail(ret_error, "empty mountpoint");
		else if (npos == 2 && !*pos[1])
			r = fail(ret_error, "empty mountpoint");
	}
	if (r < 0) {
		mountopts_args_release(&a);
		return r;
	}
	if (npos == 2) {
		a.source = g_strdup(pos[0]);
		a.mountpoint = g_strdup(pos[1]);
	} else if (npos == 1) {
		a.mountpoint = g_strdup(pos[0]);
	}
	*ret = a;
	return 0;
}

void mountopts_args_release(MountArgs *args)
{
	if (!args)
		return;
	g_clear_pointer(&args->source, g_free);
	g_clear_pointer(&args->mountpoint, g_free);
	g_clear_pointer(&args->options, g_free);
	g_clear_pointer(&args->type, g_free);
	args->flags = 0;
}

static bool needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (const char *p = s; *p; p++)
		if (!g_ascii_isalnum(*p) && !strchr("_-+=/.,:@%", *p))
			return true;
	return false;
}

char *mountopts_argv_to_string(char *const *argv)
{
	GString *out = g_string_new(NULL);

	for (char *const *a = argv; a && *a; a++) {
		if (out->len)
			g_string_append_c(out, ' ');
		if (needs_quotes(*a)) {
			g_autofree char *q = g_shell_quote(*a);

			g_string_append(out, q);
		} else {
			g_string_append(out, *a);
		}
	}
	return g_string_free(out, FALSE);
}
