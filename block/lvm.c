/*
 * lvm: the one lvm runner.  See lvm.h.
 *
 * Running a command:
 *   1. arguments are checked here (names, tags, sizes, devices of the ctx)
 *      so lvm never sees an option-like or foreign argument;
 *   2. `lvm CMD --config CFG ARGS` is spawned with GLib, which closes every
 *      fd but 0-2 in the child (lvm warns about each leaked fd and closes
 *      it), stdin from /dev/null (lvm never prompts: a question is
 *      answered "no" and the command fails), stdout and stderr on pipes
 *      that are close-on-exec in this process, so a concurrent spawn from
 *      another thread does not inherit them;
 *   3. both pipes and a pidfd of the child are polled until the child has
 *      exited and both pipes are at EOF, or the deadline passes: then the
 *      child is killed with SIGKILL and reaped, and the call fails with
 *      -ETIMEDOUT.  The child is always reaped here (never left a zombie);
 *   4. exit status and stderr are mapped to -errno by
 *      blk_lvm_map_error(), the only place that knows lvm's messages.
 *
 * Nothing here takes a lock of ours across a run: concurrent commands on
 * one VG are serialised by lvm's own VG lock (a file lock in
 * /run/lock/lvm), and a command that waits too long for it times out.
 *
 * The per-thread "last error" mirrors errno: it is what the caller puts in
 * its one error line, and it is only meaningful right after a failure.
 */
#include "block/lvm-int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"

#include "common/banned.h"

#define SECTOR 512u
#define MIB (1024u * 1024u)
/* lvm's NAME_LEN is 128 including the NUL. */
#define LVM_NAME_MAX 127
/* No lvm limit; a bound well above what domain metadata needs. */
#define LVM_TAG_MAX 4096
#define MAX_STDOUT (64u * MIB)
#define MAX_STDERR (1u * MIB)
#define MSG_SIZE 512

struct LvmCtx {
	char **paths;	 /* as given; NULL-terminated */
	dev_t *rdevs;	 /* st_rdev of each path */
	size_t n_pvs;
	char *config;	 /* the --config string */
	bool activation; /* global/activation in config */
	unsigned timeout_ms;
};

/* The tools, found once. */

/* The system's copy first (we run as root: PATH is not to be trusted), then PATH. */
static const char *find_tool(const char *name)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };

	for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
		char *path = g_build_filename(dirs[i], name, NULL);

		if (access(path, X_OK) == 0)
			return path;
		g_free(path);
	}
	return g_find_program_in_path(name);
}

/* Paths of lvm and blkid, or NULL; leaked on purpose (process lifetime). */
static const char *tool_path(int which)
{
	static gsize once;
	static const char *paths[2];

	if (g_once_init_enter(&once)) {
		paths[0] = find_tool("lvm");
		paths[1] = find_tool("blkid");
		g_once_init_leave(&once, 1);
	}
	return paths[which];
}

#define LVM_TOOL 0
#define BLKID_TOOL 1

static bool probe_dm(void)
{
	g_autofree char *misc = NULL;
	int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		(void)close(fd);
		return true;
	}
	/* No node (yet) but a driver lvm would make a node for? */
	if (errno == ENOENT && g_file_get_contents("/proc/misc", &misc, NULL, NULL)) {
		g_auto(GStrv) lines = g_strsplit(misc, "\n", -1);

		for (char **l = lines; *l; l++)
			if (g_str_has_suffix(*l, " device-mapper"))
				return true;
	}
	return false;
}

bool blk_dm_available(void)
{
	static gsize once;
	static bool dm;

	if (g_once_init_enter(&once)) {
		dm = probe_dm();
		log_debug(LOG_CLASS_BLOCK, "device-mapper %s; lvm runs with activation %s",
			  dm ? "available" : "not available", dm ? "enabled" : "disabled");
		g_once_init_leave(&once, 1);
	}
	return dm;
}

/* Per-thread result of the last run. */

typedef struct LastRun {
	char *err;	     /* whole stderr, or NULL */
	char msg[MSG_SIZE]; /* one line */
} LastRun;

static void last_run_free(gpointer p)
{
	LastRun *l = p;

	g_free(l->err);
	g_free(l);
}

static GPrivate last_run_key = G_PRIVATE_INIT(last_run_free);

static LastRun *last_run(void)
{
	LastRun *l = g_private_get(&last_run_key);

	if (!l) {
		l = g_new0(LastRun, 1);
		g_private_set(&last_run_key, l);
	}
	return l;
}

const char *blk_lvm_last_error(void)
{
	return last_run()->msg;
}

const char *blk_lvm_last_stderr(void)
{
	LastRun *l = last_run();

	return l->err ? l->err : "";
}

static void last_reset(void)
{
	LastRun *l = last_run();

	g_clear_pointer(&l->err, g_free);
	l->msg[0] = '\0';
}

/* Sets the message and returns r, for failures found before or after a run. */
static int G_GNUC_PRINTF(2, 3) fail(int r, const char *fmt, ...)
{
	LastRun *l = last_run();
	va_list ap;

	va_start(ap, fmt);
	g_vsnprintf(l->msg, sizeof(l->msg), fmt, ap);
	va_end(ap);
	log_debug(LOG_CLASS_BLOCK, "lvm: %s", l->msg);
	return r;
}

/* Argument checks (lvm2 lib/misc/lvm-string.c rules). */

static bool name_valid(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len == 0 || len > LVM_NAME_MAX || n[0] == '-')
		return false;
	if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isalnum(n[i]) && !strchr("+_.-", n[i]))
			return false;
	return true;
}

static bool tag_valid(const char *t)
{
	size_t len = t ? strlen(t) : 0;

	if (len == 0 || len > LVM_TAG_MAX || t[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isalnum(t[i]) && !strchr("_+.-/=!:&#", t[i]))
			return false;
	return true;
}

/* Characters we accept in device paths: enough for /dev/disk/by-*, safe in a regex. */
static bool path_valid(const char *p)
{
	size_t len = p ? strlen(p) : 0;

	if (len < 2 || len >= PATH_MAX || p[0] != '/' || strstr(p, "/../") ||
	    g_str_has_suffix(p, "/.."))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isalnum(p[i]) && !strchr("/_.+:-", p[i]))
			return false;
	return true;
}

static int check_name(const char *what, const char *n)
{
	if (!name_valid(n))
		return fail(-EINVAL, "invalid %s name '%s'", what, n ? n : "");
	return 0;
}

static int check_tags(const char *const *tags, size_t *ret_n)
{
	size_t n = 0;

	for (; tags && tags[n]; n++)
		if (!tag_valid(tags[n]))
			return fail(-EINVAL, "invalid LVM tag '%s'", tags[n]);
	if (ret_n)
		*ret_n = n;
	return 0;
}

static int check_size(const char *what, uint64_t size)
{
	if (size == 0 || size % SECTOR != 0)
		return fail(-EINVAL, "invalid %s %" PRIu64 " (not a positive multiple of 512)",
			    what, size);
	return 0;
}

/* The ctx. */

/* "a|^PATH$|" with '.' and '+' as bracket expressions (lvm's regex). */
static void add_accept(GString *f, const char *path)
{
	g_string_append(f, "\"a|^");
	for (const char *p = path; *p; p++) {
		if (*p == '.' || *p == '+')
			g_string_append_printf(f, "[%c]", *p);
		else
			g_string_append_c(f, *p);
	}
	g_string_append(f, "$|\", ");
}

static char *build_config(LvmCtx *ctx)
{
	g_autoptr(GString) f = g_string_new("[");

	for (size_t i = 0; i < ctx->n_pvs; i++) {
		g_autofree char *real = realpath(ctx->paths[i], NULL);

		add_accept(f, ctx->paths[i]);
		if (real && strcmp(real, ctx->paths[i]) != 0 && path_valid(real))
			add_accept(f, real);
	}
	g_string_append(f, "\"r|.*|\"]");

	return g_strdup_printf("devices { filter=%s global_filter=%s use_devicesfile=0"
			       " obtain_device_list_from_udev=0"
			       " external_device_info_source=\"none\" hints=\"none\""
			       " multipath_component_detection=0 md_component_detection=0"
			       " scan_lvs=0 }"
			       " global { activation=%d use_lvmlockd=0 use_lvmpolld=0"
			       " notify_dbus=0 }"
			       " activation { monitoring=0 }"
			       " backup { backup=0 archive=0 }"
			       " log { syslog=0 }"
			       " report { list_item_separator=\",\" }",
			       f->str, f->str, ctx->activation ? 1 : 0);
}

int blk_lvm_new(const char *const *paths, size_t n_paths, LvmCtx **ret)
{
	g_autoptr(LvmCtx) ctx = NULL;

	last_reset();
	if (!paths || n_paths == 0 || n_paths > BLK_LVM_MAX_PVS)
		return fail(-EINVAL, "a block domain needs 1 to %d devices", BLK_LVM_MAX_PVS);
	if (!tool_path(LVM_TOOL))
		return fail(-ENOENT, "lvm is not installed");

	ctx = g_new0(LvmCtx, 1);
	ctx->paths = g_new0(char *, n_paths + 1);
	ctx->rdevs = g_new0(dev_t, n_paths);
	ctx->timeout_ms = BLK_LVM_TIMEOUT_MS;
	ctx->activation = blk_dm_available();
	for (size_t i = 0; i < n_paths; i++) {
		struct stat st;

		if (!path_valid(paths[i]))
			return fail(-EINVAL, "invalid device path '%s'", paths[i] ? paths[i] : "");
		if (stat(paths[i], &st) < 0)
			return fail(ov_errno(), "cannot use device '%s': %s", paths[i],
				    g_strerror(errno));
		if (!S_ISBLK(st.st_mode))
			return fail(-ENOTBLK, "'%s' is not a block device", paths[i]);
		for (size_t j = 0; j < i; j++)
			if (ctx->rdevs[j] == st.st_rdev)
				return fail(-EINVAL, "device '%s' given twice", paths[i]);
		ctx->paths[i] = g_strdup(paths[i]);
		ctx->rdevs[i] = st.st_rdev;
		ctx->n_pvs = i + 1;
	}
	ctx->config = build_config(ctx);
	*ret = g_steal_pointer(&ctx);
	return 0;
}

void blk_lvm_free(LvmCtx *ctx)
{
	if (!ctx)
		return;
	g_strfreev(ctx->paths);
	g_free(ctx->rdevs);
	g_free(ctx->config);
	g_free(ctx);
}

void blk_lvm_set_timeout(LvmCtx *ctx, unsigned timeout_ms)
{
	ctx->timeout_ms = timeout_ms ? timeout_ms : BLK_LVM_TIMEOUT_MS;
}

size_t blk_lvm_n_pvs(const LvmCtx *ctx)
{
	return ctx->n_pvs;
}

const char *blk_lvm_pv_path(const LvmCtx *ctx, size_t i)
{
	return i < ctx->n_pvs ? ctx->paths[i] : NULL;
}

bool blk_lvm_activation(const LvmCtx *ctx)
{
	return ctx->activation;
}

int blk_lvm_pv_index(const LvmCtx *ctx, const char *name)
{
	struct stat st;

	if (!name)
		return -ENODEV;
	for (size_t i = 0; i < ctx->n_pvs; i++)
		if (strcmp(ctx->paths[i], name) == 0)
			return (int)i;
	/* Another name of one of our devices (lvm may prefer another alias). */
	if (name[0] != '/' || stat(name, &st) < 0 || !S_ISBLK(st.st_mode))
		return -ENODEV;
	for (size_t i = 0; i < ctx->n_pvs; i++)
		if (ctx->rdevs[i] == st.st_rdev)
			return (int)i;
	return -ENODEV;
}

/* Spawning. */

/* A growing buffer, always NUL-terminated. */
typedef struct Buf {
	char *data;
	size_t len;
	size_t cap;
} Buf;

static void buf_append(Buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = MAX(b->cap * 2, b->len + n + 1);
		b->data = g_realloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

typedef struct Output {
	Buf out;
	Buf err;
	int exit_code; /* -1: killed by a signal */
	int signal;
} Output;

static void output_release(Output *o)
{
	g_free(o->out.data);
	g_free(o->err.data);
	memset(o, 0, sizeof(*o));
}

static int pidfd_for(GPid pid)
{
#ifdef SYS_pidfd_open
	/* pidfds are always close-on-exec. */
	return (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Reads what is there; false at EOF or on an error. */
static bool drain(int fd, Buf *buf, size_t max, bool *overflow)
{
	uint8_t chunk[65536];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	if (buf->len + (size_t)n > max)
		*overflow = true;
	else
		buf_append(buf, chunk, (size_t)n);
	return true;
}

static int64_t ms_left(int64_t deadline)
{
	int64_t left = deadline - g_get_monotonic_time();

	return left <= 0 ? 0 : (left + 999) / 1000;
}

/*
 * Runs argv (absolute program path) and collects its output.  0 when it ran
 * to its end (whatever its exit status), -ETIMEDOUT when it was killed at
 * the deadline, -EFBIG when stdout exceeded MAX_STDOUT, -errno when it
 * could not be started.
 */
static int spawn_capture(const char *what, const char *const *argv, unsigned timeout_ms,
			 Output *ret)
{
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) envp = g_get_environ();
	g_auto(OvFd) out_fd = -1;
	g_auto(OvFd) err_fd = -1;
	g_auto(OvFd) pid_fd = -1;
	Output o = { 0 };
	int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
	bool exited = false, timed_out = false, overflow = false, err_overflow = false;
	int status = 0;
	GPid pid;

	/* lvm's messages are what blk_lvm_map_error() matches: keep them English. */
	envp = g_environ_setenv(envp, "LC_ALL", "C", TRUE);
	envp = g_environ_unsetenv(envp, "LVM_SUPPRESS_FD_WARNINGS");
	if (!g_spawn_async_with_pipes_and_fds(NULL, argv, (const char *const *)envp,
					      G_SPAWN_DO_NOT_REAP_CHILD |
						      G_SPAWN_STDIN_FROM_DEV_NULL |
						      G_SPAWN_CLOEXEC_PIPES,
					      NULL, NULL, -1, -1, -1, NULL, NULL, 0, &pid, NULL,
					      &out_fd, &err_fd, &error)) {
		output_release(&o);
		return fail(-EIO, "cannot run %s: %s", what, error->message);
	}
	pid_fd = pidfd_for(pid);
	buf_append(&o.out, "", 0);
	buf_append(&o.err, "", 0);

	while (out_fd >= 0 || err_fd >= 0 || (!exited && pid_fd >= 0)) {
		struct pollfd pfd[3];
		int n = 0, io = -1, ie = -1, ip = -1;
		int64_t left = ms_left(deadline);
		int pr;

		if (left == 0) {
			timed_out = true;
			break;
		}
		if (out_fd >= 0) {
			io = n;
			pfd[n++] = (struct pollfd){ .fd = out_fd, .events = POLLIN };
		}
		if (err_fd >= 0) {
			ie = n;
			pfd[n++] = (struct pollfd){ .fd = err_fd, .events = POLLIN };
		}
		if (!exited && pid_fd >= 0) {
			ip = n;
			pfd[n++] = (struct pollfd){ .fd = pid_fd, .events = POLLIN };
		}
		pr = poll(pfd, (nfds_t)n, (int)MIN(left, INT_MAX));
		if (pr < 0 && errno != EINTR)
			break;
		if (pr <= 0)
			continue;
		if (io >= 0 && pfd[io].revents &&
		    !drain(out_fd, &o.out, MAX_STDOUT, &overflow))
			ov_close_fd(ov_steal_fd(&out_fd));
		if (ie >= 0 && pfd[ie].revents &&
		    !drain(err_fd, &o.err, MAX_STDERR, &err_overflow))
			ov_close_fd(ov_steal_fd(&err_fd));
		if (ip >= 0 && pfd[ip].revents)
			exited = true;
	}

	/* Reap it (without a pidfd: poll with a short sleep, up to the deadline). */
	while (!timed_out) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			/* Someone else reaped it (SIGCHLD ignored?): no status to trust. */
			int r = ov_errno();

			output_release(&o);
			return fail(r, "cannot get the exit status of %s: %s", what,
				    g_strerror(-r));
		}
		if (w == 0) {
			if (ms_left(deadline) == 0) {
				timed_out = true;
				break;
			}
			g_usleep(1000);
		}
	}
	if (timed_out) {
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		output_release(&o);
		return fail(-ETIMEDOUT, "%s did not finish in %u ms", what, timeout_ms);
	}

	if (WIFEXITED(status)) {
		o.exit_code = WEXITSTATUS(status);
	} else {
		o.exit_code = -1;
		o.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	}
	if (overflow) {
		output_release(&o);
		return fail(-EFBIG, "output of %s exceeds %u bytes", what, MAX_STDOUT);
	}
	*ret = o;
	return 0;
}

/* Error mapping: the one place that knows lvm's messages. */

static const struct {
	const char *needle; /* lowercase */
	int err;
} error_rules[] = {
	{ "already exists", EEXIST },
	{ "rejected by filter", ENODEV },
	{ "ignored by filtering", ENODEV },
	{ "insufficient free space", ENOSPC },
	{ "insufficient suitable", ENOSPC },
	{ "insufficient allocatable", ENOSPC },
	{ "matches existing size", EALREADY },
	{ "not larger than existing size", EINVAL },
	{ "not smaller than existing size", EINVAL },
	{ "signature detected", EBUSY },
	{ "aborted wiping", EBUSY },
	{ "can't initialize physical volume", EBUSY },
	{ "is already in volume group", EBUSY },
	{ "exclusively", EBUSY },
	{ "in use", EBUSY },
	{ "not found", ENOENT },
	{ "failed to find", ENOENT },
};

static bool is_noise(const char *line)
{
	return !*line || g_str_has_prefix(line, "WARNING:") ||
	       strstr(line, "leaked on lvm invocation");
}

int blk_lvm_map_error(int exit_code, const char *err, char *msg, size_t msg_size)
{
	g_auto(GStrv) lines = g_strsplit(err ? err : "", "\n", -1);
	const char *first = NULL, *first_warning = NULL;
	int r = 0;

	if (exit_code == 0) {
		if (msg_size)
			msg[0] = '\0';
		return 0;
	}
	for (char **l = lines; *l; l++) {
		g_strstrip(*l);
		if (!is_noise(*l)) {
			g_autofree char *lower = g_ascii_strdown(*l, -1);

			if (!first)
				first = *l;
			for (size_t i = 0; r == 0 && i < G_N_ELEMENTS(error_rules); i++)
				if (strstr(lower, error_rules[i].needle))
					r = -error_rules[i].err;
			if (r)
				break;
		} else if (!first_warning && **l && !strstr(*l, "leaked on lvm invocation") &&
			   !strstr(*l, "Activation disabled") && !strstr(*l, "NOT backed up")) {
			first_warning = *l;
		}
	}
	if (!first)
		first = first_warning;
	if (first)
		g_snprintf(msg, msg_size, "%s", first);
	else if (exit_code < 0)
		g_snprintf(msg, msg_size, "lvm was killed");
	else
		g_snprintf(msg, msg_size, "lvm failed with exit status %d", exit_code);

	/* lvm2 tools/errors.h: 2 no such command, 3 invalid command line. */
	if (exit_code == 2 || exit_code == 3)
		return -EINVAL;
	return r ? r : -EIO;
}

/* Commands. */

typedef GPtrArray Cmd;

static Cmd *cmd_new(LvmCtx *ctx, const char *command)
{
	Cmd *c = g_ptr_array_new_with_free_func(g_free);

	g_ptr_array_add(c, g_strdup(tool_path(LVM_TOOL)));
	g_ptr_array_add(c, g_strdup(command));
	g_ptr_array_add(c, g_strdup("--config"));
	g_ptr_array_add(c, g_strdup(ctx->config));
	return c;
}

static void G_GNUC_PRINTF(2, 3) cmd_add(Cmd *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_ptr_array_add(c, g_strdup_vprintf(fmt, ap));
	va_end(ap);
}

static void cmd_add_tags(Cmd *c, const char *option, const char *const *tags)
{
	for (size_t i = 0; tags && tags[i]; i++) {
		cmd_add(c, "%s", option);
		cmd_add(c, "%s", tags[i]);
	}
}

/* The command for debug lines: everything but the program and the config. */
static char *cmd_describe(Cmd *c)
{
	g_autoptr(GString) s = g_string_new(c->pdata[1]);

	for (guint i = 4; i < c->len; i++)
		g_string_append_printf(s, " %s", (const char *)c->pdata[i]);
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/*
 * Runs c (consumed); on success *ret_out (may be NULL) gets stdout.
 * Records stderr and the message for blk_lvm_last_*().
 */
static int cmd_run(LvmCtx *ctx, Cmd *c, char **ret_out)
{
	g_autoptr(GPtrArray) cmd = c;
	g_autofree char *what = cmd_describe(cmd);
	g_autofree char *name = g_strdup_printf("lvm %s", (const char *)cmd->pdata[1]);
	int64_t start = g_get_monotonic_time();
	Output o = { 0 };
	LastRun *l;
	int r;

	last_reset();
	g_ptr_array_add(cmd, NULL);
	r = spawn_capture(name, (const char *const *)cmd->pdata, ctx->timeout_ms, &o);
	if (r < 0) {
		log_debug(LOG_CLASS_BLOCK, "lvm %s: %s", what, blk_lvm_last_error());
		return r;
	}
	l = last_run();
	l->err = g_steal_pointer(&o.err.data);
	r = blk_lvm_map_error(o.exit_code, l->err, l->msg, sizeof(l->msg));
	if (o.exit_code < 0)
		g_snprintf(l->msg, sizeof(l->msg), "%s was killed by signal %d", name, o.signal);
	log_debug(LOG_CLASS_BLOCK, "lvm %s: exit %d%s%s (%" PRId64 " ms)", what, o.exit_code,
		  r < 0 ? ": " : "", l->msg, (g_get_monotonic_time() - start) / 1000);
	if (r >= 0 && ret_out)
		*ret_out = g_steal_pointer(&o.out.data);
	output_release(&o);
	return r;
}

static int check_dev(LvmCtx *ctx, const char *dev, const char **ret_path)
{
	int idx = blk_lvm_pv_index(ctx, dev);

	if (idx < 0)
		return fail(-ENODEV, "device '%s' is not one of the domain's devices",
			    dev ? dev : "");
	*ret_path = ctx->paths[idx];
	return 0;
}

/* Reports. */

static Cmd *report_cmd(LvmCtx *ctx, const char *command, const char *fields)
{
	Cmd *c = cmd_new(ctx, command);

	cmd_add(c, "--reportformat");
	cmd_add(c, "json");
	cmd_add(c, "--units");
	cmd_add(c, "b");
	cmd_add(c, "--nosuffix");
	cmd_add(c, "-o");
	cmd_add(c, "%s", fields);
	return c;
}

/* Parses stdout; a parse failure names the command in the message. */
static int parse_report(const char *command, const char *out,
			int (*parse)(const char *, size_t, GPtrArray **), GPtrArray **ret)
{
	int r = parse(out, strlen(out), ret);

	if (r < 0)
		return fail(r, "cannot parse the output of lvm %s", command);
	return 0;
}

int blk_pv_list(LvmCtx *ctx, GPtrArray **ret)
{
	g_autofree char *out = NULL;
	int r = cmd_run(ctx, report_cmd(ctx, "pvs", BLK_PVS_FIELDS), &out);

	if (r < 0)
		return r;
	return parse_report("pvs", out, blk_report_parse_pvs, ret);
}

static int vg_report(LvmCtx *ctx, const char *vg, GPtrArray **ret)
{
	g_autofree char *out = NULL;
	Cmd *c;
	int r;

	last_reset();
	if (vg && (r = check_name("VG", vg)) < 0)
		return r;
	c = report_cmd(ctx, "vgs", BLK_VGS_FIELDS);
	if (vg)
		cmd_add(c, "%s", vg);
	r = cmd_run(ctx, c, &out);
	if (r < 0)
		return r;
	return parse_report("vgs", out, blk_report_parse_vgs, ret);
}

int blk_vg_list(LvmCtx *ctx, GPtrArray **ret)
{
	return vg_report(ctx, NULL, ret);
}

int blk_vg_get(LvmCtx *ctx, const char *vg, BlkVg **ret)
{
	g_autoptr(GPtrArray) vgs = NULL;
	int r = vg_report(ctx, vg, &vgs);

	if (r < 0)
		return r;
	for (guint i = 0; i < vgs->len; i++) {
		BlkVg *v = vgs->pdata[i];

		if (strcmp(v->name, vg) == 0) {
			*ret = g_ptr_array_steal_index(vgs, i);
			return 0;
		}
	}
	return fail(-ENOENT, "Volume group \"%s\" not found", vg);
}

static int lv_report(LvmCtx *ctx, const char *vg, const char *lv, GPtrArray **ret)
{
	g_autofree char *out = NULL;
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_name("VG", vg)) < 0 || (lv && (r = check_name("LV", lv)) < 0))
		return r;
	c = report_cmd(ctx, "lvs", BLK_LVS_FIELDS);
	cmd_add(c, "--segments");
	if (lv)
		cmd_add(c, "%s/%s", vg, lv);
	else
		cmd_add(c, "%s", vg);
	r = cmd_run(ctx, c, &out);
	if (r < 0)
		return r;
	return parse_report("lvs", out, blk_report_parse_lvs, ret);
}

int blk_lv_list(LvmCtx *ctx, const char *vg, GPtrArray **ret)
{
	return lv_report(ctx, vg, NULL, ret);
}

int blk_lv_get(LvmCtx *ctx, const char *vg, const char *lv, BlkLv **ret)
{
	g_autoptr(GPtrArray) lvs = NULL;
	int r = lv_report(ctx, vg, lv, &lvs);

	if (r < 0)
		return r;
	for (guint i = 0; i < lvs->len; i++) {
		BlkLv *l = lvs->pdata[i];

		if (strcmp(l->name, lv) == 0 && strcmp(l->vg_name, vg) == 0) {
			*ret = g_ptr_array_steal_index(lvs, i);
			return 0;
		}
	}
	return fail(-ENOENT, "Failed to find logical volume \"%s/%s\"", vg, lv);
}

/* PVs. */

/*
 * Refuses a device that is in use or carries any signature, before
 * pvcreate gets a chance to ask "Wipe it?" (and, answered "no" from
 * /dev/null, fail with a less clear message) or to overwrite it.
 */
static int check_unused(LvmCtx *ctx, const char *dev)
{
	const char *blkid = tool_path(BLKID_TOOL);
	const char *argv[] = { blkid, "-p", "-o", "export", dev, NULL };
	g_auto(GStrv) lines = NULL;
	const char *type = NULL, *pttype = NULL;
	Output o = { 0 };
	int fd, r;

	/* O_EXCL on a block device fails with EBUSY while it is mounted or held. */
	fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (fd < 0) {
		r = ov_errno();
		if (r == -EBUSY)
			return fail(-EBUSY, "device '%s' is in use", dev);
		return fail(r, "cannot open device '%s': %s", dev, g_strerror(-r));
	}
	(void)close(fd);

	if (!blkid)
		return fail(-ENOENT, "blkid is not installed");
	r = spawn_capture("blkid", argv, ctx->timeout_ms, &o);
	if (r < 0)
		return r;
	/* blkid -p: 0 found something, 2 nothing, 8 ambivalent result. */
	switch (o.exit_code) {
	case 2:
		output_release(&o);
		return 0;
	case 8:
		output_release(&o);
		return fail(-EBUSY, "device '%s' carries several signatures, refusing to use it",
			    dev);
	case 0:
		break;
	default:
		lines = g_strsplit(o.err.data, "\n", 2);
		r = fail(-EIO, "cannot probe device '%s' for signatures: %s", dev,
			 lines[0] && *lines[0] ? g_strstrip(lines[0]) : "blkid failed");
		output_release(&o);
		return r;
	}

	lines = g_strsplit(o.out.data, "\n", -1);
	for (char **l = lines; *l; l++) {
		if (g_str_has_prefix(*l, "TYPE="))
			type = *l + strlen("TYPE=");
		else if (g_str_has_prefix(*l, "PTTYPE="))
			pttype = *l + strlen("PTTYPE=");
	}
	if (type && strcmp(type, "LVM2_member") == 0)
		r = fail(-EBUSY, "device '%s' is already an LVM physical volume", dev);
	else if (type)
		r = fail(-EBUSY, "device '%s' has a '%s' signature, refusing to use it", dev, type);
	else if (pttype)
		r = fail(-EBUSY, "device '%s' has a '%s' partition table, refusing to use it", dev,
			 pttype);
	else
		r = fail(-EBUSY, "device '%s' carries a signature, refusing to use it", dev);
	output_release(&o);
	return r;
}

int blk_pv_create(LvmCtx *ctx, const char *dev, uint64_t metadata_size, unsigned copies,
		  bool metadata_ignore)
{
	const char *path = NULL;
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_dev(ctx, dev, &path)) < 0 ||
	    (r = check_size("metadata size", metadata_size)) < 0)
		return r;
	if (copies < 1 || copies > 2)
		return fail(-EINVAL, "invalid number of metadata copies %u", copies);
	r = check_unused(ctx, path);
	if (r < 0)
		return r;

	c = cmd_new(ctx, "pvcreate");
	cmd_add(c, "--metadatasize");
	cmd_add(c, "%" PRIu64 "b", metadata_size);
	cmd_add(c, "--metadatacopies");
	cmd_add(c, "%u", copies);
	cmd_add(c, "--metadataignore");
	cmd_add(c, "%s", metadata_ignore ? "y" : "n");
	cmd_add(c, "%s", path);
	return cmd_run(ctx, c, NULL);
}

int blk_pv_set_metadata_ignore(LvmCtx *ctx, const char *dev, bool ignore)
{
	const char *path = NULL;
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_dev(ctx, dev, &path)) < 0)
		return r;
	c = cmd_new(ctx, "pvchange");
	cmd_add(c, "--metadataignore");
	cmd_add(c, "%s", ignore ? "y" : "n");
	cmd_add(c, "%s", path);
	return cmd_run(ctx, c, NULL);
}

int blk_pv_remove(LvmCtx *ctx, const char *dev)
{
	const char *path = NULL;
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_dev(ctx, dev, &path)) < 0)
		return r;
	c = cmd_new(ctx, "pvremove");
	cmd_add(c, "%s", path);
	return cmd_run(ctx, c, NULL);
}

/* VGs. */

int blk_vg_create(LvmCtx *ctx, const char *vg, const char *const *devs, size_t n_devs,
		  uint64_t extent_size, const char *const *tags)
{
	g_autofree const char **paths = g_new0(const char *, n_devs ? n_devs : 1);
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_name("VG", vg)) < 0 || (r = check_tags(tags, NULL)) < 0)
		return r;
	if (extent_size < MIB || (extent_size & (extent_size - 1)) != 0)
		return fail(-EINVAL, "invalid extent size %" PRIu64
			    " (a power of two of at least 1 MiB)", extent_size);
	if (!devs || n_devs == 0)
		return fail(-EINVAL, "a VG needs at least one device");
	for (size_t i = 0; i < n_devs; i++)
		if ((r = check_dev(ctx, devs[i], &paths[i])) < 0)
			return r;

	c = cmd_new(ctx, "vgcreate");
	cmd_add(c, "--setautoactivation");
	cmd_add(c, "n");
	cmd_add(c, "--physicalextentsize");
	cmd_add(c, "%" PRIu64 "b", extent_size);
	cmd_add_tags(c, "--addtag", tags);
	cmd_add(c, "%s", vg);
	for (size_t i = 0; i < n_devs; i++)
		cmd_add(c, "%s", paths[i]);
	return cmd_run(ctx, c, NULL);
}

int blk_vg_remove(LvmCtx *ctx, const char *vg)
{
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_name("VG", vg)) < 0)
		return r;
	c = cmd_new(ctx, "vgremove");
	cmd_add(c, "-f");
	cmd_add(c, "%s", vg);
	return cmd_run(ctx, c, NULL);
}

static int change_tags(LvmCtx *ctx, const char *command, char *target, const char *const *add,
		       const char *const *del)
{
	g_autofree char *t = target;
	size_t n_add = 0, n_del = 0;
	Cmd *c;
	int r;

	if ((r = check_tags(add, &n_add)) < 0 || (r = check_tags(del, &n_del)) < 0)
		return r;
	if (n_add + n_del == 0)
		return 0;
	c = cmd_new(ctx, command);
	cmd_add_tags(c, "--deltag", del);
	cmd_add_tags(c, "--addtag", add);
	cmd_add(c, "%s", t);
	return cmd_run(ctx, c, NULL);
}

int blk_vg_change_tags(LvmCtx *ctx, const char *vg, const char *const *add,
		       const char *const *del)
{
	int r;

	last_reset();
	if ((r = check_name("VG", vg)) < 0)
		return r;
	return change_tags(ctx, "vgchange", g_strdup(vg), add, del);
}

/* LVs. */

static int check_vg_lv(const char *vg, const char *lv)
{
	int r;

	if ((r = check_name("VG", vg)) < 0 || (r = check_name("LV", lv)) < 0)
		return r;
	return 0;
}

int blk_lv_create(LvmCtx *ctx, const char *vg, const char *lv, uint64_t size,
		  const char *const *tags, const char *dev)
{
	const char *path = NULL;
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_vg_lv(vg, lv)) < 0 || (r = check_size("LV size", size)) < 0 ||
	    (r = check_tags(tags, NULL)) < 0 || (dev && (r = check_dev(ctx, dev, &path)) < 0))
		return r;

	/* VDSM's options (reference 6.1), plus no activation and no zeroing. */
	c = cmd_new(ctx, "lvcreate");
	cmd_add(c, "--contiguous");
	cmd_add(c, "n");
	cmd_add(c, "--wipesignatures");
	cmd_add(c, "n");
	cmd_add(c, "--zero");
	cmd_add(c, "n");
	cmd_add(c, "--activate");
	cmd_add(c, "n");
	cmd_add(c, "--size");
	cmd_add(c, "%" PRIu64 "b", size);
	cmd_add(c, "--name");
	cmd_add(c, "%s", lv);
	cmd_add_tags(c, "--addtag", tags);
	cmd_add(c, "%s", vg);
	if (path)
		cmd_add(c, "%s", path);
	return cmd_run(ctx, c, NULL);
}

static int resize(LvmCtx *ctx, const char *command, const char *vg, const char *lv,
		  uint64_t size)
{
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_vg_lv(vg, lv)) < 0 || (r = check_size("LV size", size)) < 0)
		return r;
	c = cmd_new(ctx, command);
	if (strcmp(command, "lvreduce") == 0)
		cmd_add(c, "-f");
	cmd_add(c, "--size");
	cmd_add(c, "%" PRIu64 "b", size);
	cmd_add(c, "%s/%s", vg, lv);
	return cmd_run(ctx, c, NULL);
}

int blk_lv_extend(LvmCtx *ctx, const char *vg, const char *lv, uint64_t size)
{
	int r = resize(ctx, "lvextend", vg, lv, size);

	/* Already that size: what a retried extension finds. */
	if (r == -EALREADY) {
		last_run()->msg[0] = '\0';
		return 0;
	}
	return r;
}

int blk_lv_reduce(LvmCtx *ctx, const char *vg, const char *lv, uint64_t size)
{
	int r = resize(ctx, "lvreduce", vg, lv, size);

	if (r == -EALREADY) {
		last_run()->msg[0] = '\0';
		return 0;
	}
	return r;
}

int blk_lv_remove(LvmCtx *ctx, const char *vg, const char *lv)
{
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_vg_lv(vg, lv)) < 0)
		return r;
	c = cmd_new(ctx, "lvremove");
	cmd_add(c, "-f");
	cmd_add(c, "%s/%s", vg, lv);
	return cmd_run(ctx, c, NULL);
}

int blk_lv_change_tags(LvmCtx *ctx, const char *vg, const char *lv, const char *const *add,
		       const char *const *del)
{
	int r;

	last_reset();
	if ((r = check_vg_lv(vg, lv)) < 0)
		return r;
	return change_tags(ctx, "lvchange", g_strdup_printf("%s/%s", vg, lv), add, del);
}

int blk_lv_rename(LvmCtx *ctx, const char *vg, const char *old_name, const char *new_name)
{
	Cmd *c;
	int r;

	last_reset();
	if ((r = check_vg_lv(vg, old_name)) < 0 || (r = check_name("LV", new_name)) < 0)
		return r;
	c = cmd_new(ctx, "lvrename");
	cmd_add(c, "%s", vg);
	cmd_add(c, "%s", old_name);
	cmd_add(c, "%s", new_name);
	return cmd_run(ctx, c, NULL);
}
