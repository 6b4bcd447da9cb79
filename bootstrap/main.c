#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libssh2.h>

#include "common.h"
#include "commands.h"

struct cli_settings cli_settings = { .progress = true };

static const struct command commands[] = {
	{ "help",      cmd_help,      "show the commands, or the help of one" },
	{ "version",   cmd_version,   "print the version, libraries and build flags" },
	{ "keygen",    cmd_keygen,    "create an Ed25519 key pair for signing bundles" },
	{ "bundle",    cmd_bundle,    "build, verify, inspect or unpack an air-gapped bundle" },
	{ "preflight", cmd_preflight, "check the cluster before an install; changes nothing" },
	{ "install",   cmd_install,   "install the bundle's platform; re-runs go on where the last stopped" },
	{ "status",    cmd_status,    "show what the install journal records as done, failed or pending" },
	{ "check",     cmd_check,     "check that the installed platform works; one report of every check" },
};

static const char main_usage[] =
	"usage: mlboot [-v | -q] [--log-format text|json] [--no-progress] COMMAND [ARGS]\n";

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static const char help_usage[] =
	"usage: mlboot help [COMMAND]\n"
	"\n"
	"Without COMMAND, lists the commands and the global options; with it,\n"
	"shows the help of that command, as 'mlboot COMMAND --help' does.\n";

int cmd_help(int argc, char **argv)
{
	const struct command *command;

	if (argc > 2)
		return cli_usage_error("help", "too many arguments");
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(help_usage, stdout);
		return 0;
	}
	if (argc == 2) {
		char help_option[] = "--help";
		char *help_argv[] = { argv[1], help_option, NULL };

		command = command_find(argv[1]);
		if (!command) {
			log_error("unknown command '%s'", argv[1]);
			log_notice("run 'mlboot help' for the list of commands");
			return MLB_EUSAGE;
		}
		if (command->run == cmd_help)
			argc = 1;
		else
			return command->run(2, help_argv);
	}
	printf("%s\nCommands:\n", main_usage);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	printf("\nGlobal options:\n"
	       "  -v, --verbose        more detail on stderr; repeat for more\n"
	       "  -q, --quiet          less detail on stderr; repeat for errors only\n"
	       "  --log-format FORMAT  text (default) or json, one object a line\n"
	       "  --no-progress        no progress bars, even on a terminal\n"
	       "\nRun 'mlboot COMMAND --help' for the options of a command.\n"
	       "Exit status: 0 success, 1 a check or step failed, 2 usage error,\n"
	       "3 invalid input, 4 integrity failure, 5 unreachable, 6 access denied.\n");
	return 0;
}

/*
 * Takes the global options out of argv wherever they stand before "--", so
 * that "mlboot preflight -v" works like "mlboot -v preflight". Returns the
 * new argc, or a negative result for a bad global option.
 */
static int take_global_options(int argc, char **argv)
{
	int level = LOG_INFO, kept = 1;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *format = NULL;

		if (strcmp(arg, "--") == 0) {
			while (i < argc)
				argv[kept++] = argv[i++];
			break;
		}
		if (strcmp(arg, "--verbose") == 0) {
			level++;
		} else if (strcmp(arg, "--quiet") == 0) {
			level--;
		} else if (arg[0] == '-' && arg[1] && strspn(arg + 1, "v") == strlen(arg + 1)) {
			level += (int)strlen(arg + 1);
		} else if (arg[0] == '-' && arg[1] && strspn(arg + 1, "q") == strlen(arg + 1)) {
			level -= (int)strlen(arg + 1);
		} else if (strcmp(arg, "--no-progress") == 0) {
			cli_settings.progress = false;
		} else if (strncmp(arg, "--log-format=", 13) == 0) {
			format = arg + 13;
		} else if (strcmp(arg, "--log-format") == 0) {
			if (i + 1 >= argc) {
				log_error("option '--log-format' requires a value: text or json");
				return MLB_EUSAGE;
			}
			format = argv[++i];
		} else {
			argv[kept++] = argv[i];
			continue;
		}
		if (format) {
			if (strcmp(format, "json") == 0) {
				log_set_format(LOG_FORMAT_JSON);
			} else if (strcmp(format, "text") == 0) {
				log_set_format(LOG_FORMAT_TEXT);
			} else {
				log_error("invalid log format '%s': use text or json", format);
				return MLB_EUSAGE;
			}
		}
	}
	/* The floor keeps errors visible whatever number of -q is given. */
	log_set_level(level < LOG_ERR ? LOG_ERR : level);
	argv[kept] = NULL;
	return kept;
}

int main(int argc, char **argv)
{
	const struct command *command;
	int r;

	log_setup();
	r = take_global_options(argc, argv);
	if (r < 0)
		return mlb_exit_code(r);
	argc = r;
	if (!log_is_interactive())
		cli_settings.progress = false;

	if (argc < 2) {
		fputs(main_usage, stderr);
		fputs("Run 'mlboot help' for the list of commands.\n", stderr);
		return MLB_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(1, argv + 1);
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(1, argv + 1);

	command = command_find(argv[1]);
	if (!command) {
		log_error("unknown command '%s'; run 'mlboot help' for the list", argv[1]);
		return MLB_EXIT_USAGE;
	}

	/* Libraries that keep global state are set up once, before any thread. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_error("failed to initialise libcurl");
		return MLB_EXIT_FAILED;
	}
	if (libssh2_init(0) != 0) {
		log_error("failed to initialise libssh2");
		curl_global_cleanup();
		return MLB_EXIT_FAILED;
	}
	r = command->run(argc - 1, argv + 1);
	libssh2_exit();
	curl_global_cleanup();
	return mlb_exit_code(r);
}
