/*
 * log: the one logger (STYLE.md 7).
 *
 * Messages go to stderr when the process runs in the foreground (CLI
 * commands, `ovstore mount -f`) and to syslog once the daemon detached.
 * "error" means an admin must act; recoverable problems are warnings that
 * end in ", ignoring" or ", retrying".  Debug lines are per class, enabled
 * by OVSTORE_DEBUG=fs,block,... or "all"; every debug line also goes into a
 * bounded in-memory ring that `ovstore status --log` dumps, so enabling
 * debug output is never needed to see recent history.
 *
 * Calling sequence: log_setup() once at start (optional), log_to_syslog()
 * when daemonizing.  All functions are thread-safe.  Writing a line never
 * blocks on a file: stderr is written with one write(2) per line.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

typedef enum LogLevel {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_MAX,
} LogLevel;

typedef enum LogClass {
	LOG_CLASS_NONE = 0,
	LOG_CLASS_FS = 1 << 0,
	LOG_CLASS_METADATA = 1 << 1,
	LOG_CLASS_BLOCK = 1 << 2,
	LOG_CLASS_LEASE = 1 << 3,
	LOG_CLASS_MAILBOX = 1 << 4,
	LOG_CLASS_IO = 1 << 5,
	LOG_CLASS_DOMAIN = 1 << 6,
	LOG_CLASS_ALL = (1 << 7) - 1,
} LogClass;

/* Program name used as the prefix and the syslog ident. */
void log_setup(const char *progname);
/* Parse a class list ("fs,block", "all", "") into a mask; -EINVAL if unknown. */
int log_parse_classes(const char *spec, unsigned *ret_mask);
void log_set_debug_classes(unsigned mask);
bool log_debug_enabled(LogClass cls);
/* From now on write to syslog instead of stderr. */
void log_to_syslog(void);

void log_full(LogLevel level, LogClass cls, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Logs with strerror(-r) appended and returns r (r is -errno). */
int log_full_errno(LogLevel level, int r, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Copy of the debug ring, oldest first, one line per entry. */
char *log_ring_dump(void);

#define log_error(...) log_full(LOG_LEVEL_ERROR, LOG_CLASS_NONE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_LEVEL_WARNING, LOG_CLASS_NONE, __VA_ARGS__)
#define log_notice(...) log_full(LOG_LEVEL_NOTICE, LOG_CLASS_NONE, __VA_ARGS__)
#define log_info(...) log_full(LOG_LEVEL_INFO, LOG_CLASS_NONE, __VA_ARGS__)
#define log_debug(cls, ...)                                                                        \
	do {                                                                                       \
		if (log_debug_enabled(cls))                                                        \
			log_full(LOG_LEVEL_DEBUG, cls, __VA_ARGS__);                               \
	} while (0)
#define log_error_errno(r, ...) log_full_errno(LOG_LEVEL_ERROR, r, __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_LEVEL_WARNING, r, __VA_ARGS__)
