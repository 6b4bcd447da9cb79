#include <stdarg.h>
#include <stdio.h>

#include "common.h"
#include "commands.h"

int cli_usage_error(const char *command, const char *format, ...)
{
	char message[1024];
	va_list args;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	log_error("%s", message);
	log_notice("run 'mlboot %s --help' for usage", command);
	return MLB_EUSAGE;
}
