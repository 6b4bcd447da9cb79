#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

/* A longer message is cut; no caller needs more than a few hundred bytes. */
#define LOG_LINE_MAX 4096

static int log_level = LOG_INFO;
static enum log_format log_format_selected = LOG_FORMAT_TEXT;
static bool log_to_journal;
static bool log_interactive;

static bool stderr_is_journal(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long device, inode;
	struct stat st;

	if (!stream || sscanf(stream, "%llu:%llu", &device, &inode) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == device &&
	       (unsigned long long)st.st_ino == inode;
}

void log_setup(void)
{
	log_to_journal = stderr_is_journal();
	log_interactive = !log_to_journal && isatty(STDERR_FILENO);
}

void log_set_level(int level)
{
	if (level < LOG_EMERG)
		level = LOG_EMERG;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	log_level = level;
}

int log_get_level(void)
{
	return log_level;
}

void log_set_format(enum log_format format)
{
	log_format_selected = format;
}

bool log_is_interactive(void)
{
	return log_interactive;
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
		return "notice";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/* Appends text to a JSON string body, escaping what JSON requires. */
static size_t json_escape(char *out, size_t size, const char *text)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p && n + 7 < size; p++) {
		if (*p == '"' || *p == '\\') {
			out[n++] = '\\';
			out[n++] = (char)*p;
		} else if (*p < 0x20) {
			n += (size_t)snprintf(out + n, size - n, "\\u%04x", *p);
		} else {
			out[n++] = (char)*p;
		}
	}
	out[n] = '\0';
	return n;
}

/* Replaces control characters so that one message stays one line. */
static void flatten_controls(char *text)
{
	for (unsigned char *p = (unsigned char *)text; *p; p++)
		if (*p < 0x20 && *p != '\t')
			*p = ' ';
}

static void log_write(int level, const char *message)
{
	char line[LOG_LINE_MAX * 2];
	char prefix[8] = "";
	int n;

	if (level < LOG_EMERG)
		level = LOG_EMERG;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	if (log_to_journal)
		snprintf(prefix, sizeof(prefix), "<%d>", level);

	if (log_format_selected == LOG_FORMAT_JSON) {
		char escaped[LOG_LINE_MAX * 2 - 128];
		char stamp[32];
		struct timespec now;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		json_escape(escaped, sizeof(escaped), message);
		n = snprintf(line, sizeof(line),
			     "%s{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"message\":\"%s\"}\n",
			     prefix, stamp, now.tv_nsec / 1000000L, level_name(level), escaped);
	} else {
		char copy[LOG_LINE_MAX];
		const char *label = "";

		snprintf(copy, sizeof(copy), "%s", message);
		flatten_controls(copy);
		if (level <= LOG_ERR)
			label = "error: ";
		else if (level == LOG_WARNING)
			label = "warning: ";
		else if (level == LOG_DEBUG)
			label = "debug: ";
		n = snprintf(line, sizeof(line), "%s%s%s\n", prefix, label, copy);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	/* One write per line keeps lines whole when several threads log. */
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

__attribute__((format(printf, 3, 0)))
static void log_vmsg(int level, const char *suffix, const char *format, va_list args)
{
	char message[LOG_LINE_MAX];
	int n;

	if (level > log_level)
		return;
	n = vsnprintf(message, sizeof(message), format, args);
	if (n < 0)
		return;
	if (suffix && (size_t)n < sizeof(message))
		snprintf(message + n, sizeof(message) - (size_t)n, ": %s", suffix);
	log_write(level, message);
}

void log_msg(int level, const char *format, ...)
{
	va_list args;
	int saved = errno;

	va_start(args, format);
	log_vmsg(level, NULL, format, args);
	va_end(args);
	errno = saved;
}

int log_errno(int level, int r, const char *format, ...)
{
	va_list args;
	int saved = errno;

	va_start(args, format);
	log_vmsg(level, mlb_strerror(r), format, args);
	va_end(args);
	errno = saved;
	return r;
}
