/*
 * Result codes shared by every module.
 *
 * Functions return 0 on success and a negative number on failure: either a
 * negative errno value (-ENOENT, -ENOMEM, ...) or one of the MLB_E* codes
 * below, which name the failures the command line reports with their own
 * exit status. Only main() turns a result into an exit status, through
 * mlb_exit_code(); docs/exit-codes.md lists the mapping.
 */
#ifndef MLBOOT_COMMON_ERROR_H
#define MLBOOT_COMMON_ERROR_H

#define MLB_EFAILED      (-1001)  /* a check or a step failed: exit 1 */
#define MLB_EUSAGE       (-1002)  /* bad command line: exit 2 */
#define MLB_EINPUT       (-1003)  /* invalid input file or data: exit 3 */
#define MLB_EINTEGRITY   (-1004)  /* checksum or signature mismatch: exit 4 */
#define MLB_EUNREACHABLE (-1005)  /* a host or the API server did not respond: exit 5 */
#define MLB_EDENIED      (-1006)  /* TLS trust or credentials rejected: exit 6 */

enum mlb_exit {
	MLB_EXIT_OK = 0,
	MLB_EXIT_FAILED = 1,
	MLB_EXIT_USAGE = 2,
	MLB_EXIT_INPUT = 3,
	MLB_EXIT_INTEGRITY = 4,
	MLB_EXIT_UNREACHABLE = 5,
	MLB_EXIT_DENIED = 6,
};

/* Returns a short description of a result code (MLB_E* or negative errno). */
const char *mlb_strerror(int r);

/* Maps a result code to the process exit status; 0 maps to 0. */
int mlb_exit_code(int r);

#endif
