#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/banned.h"

#define RING_LINES 1024

static const char *log_prog = "ovstore";
static unsigned debug_mask;
static bool use_syslog;

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static char *ring[RING_LINES]; /* protected by ring_lock */
static unsigned ring_next;     /* protected by ring_lock */

static const struct {
	const char *name;
	LogClass cls;
} classes[] = {
	{ "fs", LOG_CLASS_FS },		{ "metadata", LOG_CLASS_METADATA },
	{ "block", LOG_CLASS_BLOCK },	{ "lease", LOG_CLASS_LEASE },
	{ "mailbox", LOG_CLASS_MAILBOX }, { "io", LOG_CLASS_IO },
	{ "domain", LOG_CLASS_DOMAIN }, { "all", LOG_CLASS_ALL },
};

void log_setup(const char *progname)
{
	if (progname)
		log_prog = progname;
}

int log_parse_classes(const char *spec, unsigned *ret_mask)
{
	g_auto(GStrv) parts = NULL;
	unsigned mask = 0;

	if (!spec || !*spec) {
		*ret_mask = 0;
		return 0;
	}
	parts = g_strsplit(spec, ",", -1);
	for (char **p = parts; *p; p++) {
		bool found = false;

		if (!**p)
			continue;
		for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
			if (strcmp(*p, classes[i].name) == 0) {
				mask |= classes[i].cls;
				found = true;
			}
		}
		if (!found)
			return -EINVAL;
	}
	*ret_mask = mask;
	return 0;
}

void log_set_debug_classes(unsigned mask)
{
	__atomic_store_n(&debug_mask, mask, __ATOMIC_RELAXED);
}

bool log_debug_enabled(LogClass cls)
{
	return (__atomic_load_n(&debug_mask, __ATOMIC_RELAXED) & cls) != 0;
}

void log_to_syslog(void)
{
	openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	use_syslog = true;
}

static const char *level_name(LogLevel level)
{
	static const char *const names[LOG_LEVEL_MAX] = { "error", "warning", "notice", "info",
							  "debug" };
	return level < LOG_LEVEL_MAX ? names[level] : "?";
}

static void ring_push(const char *line)
{
	struct timespec ts;
	char *entry;

	clock_gettime(CLOCK_REALTIME, &ts);
	entry = g_strdup_printf("%lld.%06ld %s", (long long)ts.tv_sec, ts.tv_nsec / 1000, line);
	pthread_mutex_lock(&ring_lock);
	g_free(ring[ring_next]);
	ring[ring_next] = entry;
	ring_next = (ring_next + 1) % RING_LINES;
	pthread_mutex_unlock(&ring_lock);
}

char *log_ring_dump(void)
{
	GString *out = g_string_new(NULL);

	pthread_mutex_lock(&ring_lock);
	for (unsigned i = 0; i < RING_LINES; i++) {
		const char *line = ring[(ring_next + i) % RING_LINES];

		if (line) {
			g_string_append(out, line);
			g_string_append_c(out, '\n');
		}
	}
	pthread_mutex_unlock(&ring_lock);
	return g_string_free(out, FALSE);
}

static void emit(LogLevel level, const char *msg)
{
	static const int prio[LOG_LEVEL_MAX] = { LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO,
						 LOG_DEBUG };
	g_autofree char *line = NULL;
	ssize_t r;

	ring_push(msg);
	if (use_syslog) {
		syslog(prio[level], "%s", msg);
		return;
	}
	/* Debug and info lines carry their level; the others say what they are. */
	line = g_strdup_printf("%s: %s%s%s\n", log_prog,
			       level == LOG_LEVEL_NOTICE ? "" : level_name(level),
			       level == LOG_LEVEL_NOTICE ? "" : ": ", msg);
	/* One write per line so lines from threads never interleave. */
	r = write(STDERR_FILENO, line, strlen(line));
	(void)r;
}

void log_full(LogLevel level, LogClass cls, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	(void)cls;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	emit(level, msg);
}

int log_full_errno(LogLevel level, int r, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	g_autofree char *full = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	full = g_strdup_printf("%s: %s", msg, g_strerror(r < 0 ? -r : r));
	emit(level, full);
	return r;
}
