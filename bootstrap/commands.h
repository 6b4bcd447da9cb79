/*
 * The command line: one function per command, each in its own file under
 * bootstrap/ with its own option table and usage text. Each returns 0 or a
 * negative result code (common/error.h); main() maps it to the exit status.
 * argv[0] is the command name; getopt_long() may be used from optind = 1.
 */
#ifndef MLBOOT_BOOTSTRAP_COMMANDS_H
#define MLBOOT_BOOTSTRAP_COMMANDS_H

#include <stdbool.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Global settings from the options main() reads before the command runs. */
struct cli_settings {
	bool progress;   /* progress bars allowed (--no-progress clears) */
};
extern struct cli_settings cli_settings;

/*
 * Reports a bad command line: logs "error: MESSAGE" and a hint naming
 * "mlboot COMMAND --help", and returns MLB_EUSAGE.
 */
int cli_usage_error(const char *command, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_bundle(int argc, char **argv);
int cmd_preflight(int argc, char **argv);
int cmd_install(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_check(int argc, char **argv);

#endif
