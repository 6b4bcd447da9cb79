/*
 * The install journal: an append-only record of the steps of an install,
 * kept in the state folder so that a re-run skips what is done and goes on
 * where a crash or a power cut stopped it.
 *
 * The folder contains:
 *   journal  one JSON object a line: {"time","step","digest","event","message"}
 *            where event is "start", "done" or "failed"; each line is written
 *            with one write() and fdatasync()ed before the step goes on;
 *   lock     flock()ed by the running install, with its pid inside.
 *
 * A step is done when its last record is "done" with the digest of the same
 * inputs; a step whose inputs changed, or that started and never finished,
 * runs again. A line cut short by a power cut is dropped when the journal
 * is opened, since its step was never confirmed.
 */
#ifndef MLBOOT_BOOTSTRAP_JOURNAL_H
#define MLBOOT_BOOTSTRAP_JOURNAL_H

#include <stdbool.h>
#include <time.h>

enum journal_event {
	JOURNAL_START,
	JOURNAL_DONE,
	JOURNAL_FAILED,
};

/* The latest state of one step, as read from the journal. */
struct journal_step {
	char *name;
	char *digest;
	enum journal_event event;
	time_t started;          /* 0 when no start was recorded */
	time_t finished;         /* time of the last done or failed record */
	char *message;           /* of the last failed record; NULL otherwise */
	unsigned runs;           /* how many times the step started */
};

struct journal {
	char *folder;
	int fd;                  /* the journal, opened for appending */
	int lock_fd;
	struct journal_step *steps;
	size_t count;
	size_t capacity;
};

/*
 * Opens (creating) the journal in folder and takes the lock. Returns
 * -EBUSY, after logging the holder's pid, when another process has it.
 */
int journal_open(const char *folder, struct journal **out);
/* Reads the journal of folder without taking the lock, for status. */
int journal_read(const char *folder, struct journal **out);
void journal_close(struct journal *journal);

/* Whether step finished with these inputs. */
bool journal_is_done(const struct journal *journal, const char *step, const char *digest);
const struct journal_step *journal_find(const struct journal *journal, const char *step);
/* Appends a record and makes it durable before returning. message may be NULL. */
int journal_record(struct journal *journal, const char *step, const char *digest,
		   enum journal_event event, const char *message);
const char *journal_event_name(enum journal_event event);

#endif
