#include <string.h>

#include "error.h"

const char *mlb_strerror(int r)
{
	switch (r) {
	case 0:
		return "success";
	case MLB_EFAILED:
		return "a check or step failed";
	case MLB_EUSAGE:
		return "invalid usage";
	case MLB_EINPUT:
		return "invalid input";
	case MLB_EINTEGRITY:
		return "integrity check failed";
	case MLB_EUNREACHABLE:
		return "host or API server unreachable";
	case MLB_EDENIED:
		return "TLS verification or authentication failed";
	default:
		return strerror(r < 0 ? -r : r);
	}
}

int mlb_exit_code(int r)
{
	switch (r) {
	case 0:
		return MLB_EXIT_OK;
	case MLB_EUSAGE:
		return MLB_EXIT_USAGE;
	case MLB_EINPUT:
		return MLB_EXIT_INPUT;
	case MLB_EINTEGRITY:
		return MLB_EXIT_INTEGRITY;
	case MLB_EUNREACHABLE:
		return MLB_EXIT_UNREACHABLE;
	case MLB_EDENIED:
		return MLB_EXIT_DENIED;
	default:
		return MLB_EXIT_FAILED;
	}
}
