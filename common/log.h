/*
 * Diagnostics. Every message mlboot prints for a person goes through
 * log_msg(), to stderr; results go to stdout and never through here.
 *
 * Levels are syslog priorities (LOG_ERR ... LOG_DEBUG). The default level is
 * LOG_INFO; each -v raises it one step and each -q lowers it one step.
 * When stderr is the systemd journal (JOURNAL_STREAM names the device and
 * inode of stderr), each line starts with a "<N>" priority prefix that
 * journald reads. With --log-format json each line is one JSON object.
 *
 * Never pass a secret (token, key, password, *-data field) to these
 * functions: nothing here can recognise one.
 */
#ifndef MLBOOT_COMMON_LOG_H
#define MLBOOT_COMMON_LOG_H

#include <stdbool.h>
#include <syslog.h>

enum log_format {
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON,
};

/* Reads the environment (JOURNAL_STREAM, NO_COLOR) once at start-up. */
void log_setup(void);
void log_set_level(int level);
int log_get_level(void);
void log_set_format(enum log_format format);
/* Whether stderr is a terminal and not the journal: progress bars and colour. */
bool log_is_interactive(void);

void log_msg(int level, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Logs the message followed by ": " and the description of r, then returns
 * r, so that "return log_errno(LOG_ERR, r, ...)" logs and propagates.
 */
int log_errno(int level, int r, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
