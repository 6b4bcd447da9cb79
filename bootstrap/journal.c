#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "journal.h"

/* An estimate: a journal of a whole platform has a few thousand lines, far below this bound. */
#define JOURNAL_MAX_BYTES (64u << 20)
#define JOURNAL_LINE_MAX 8192

const char *journal_event_name(enum journal_event event)
{
	switch (event) {
	case JOURNAL_START:
		return "start";
	case JOURNAL_DONE:
		return "done";
	default:
		return "failed";
	}
}

static int journal_event_parse(const char *name, enum journal_event *out)
{
	if (strcmp(name, "start") == 0)
		*out = JOURNAL_START;
	else if (strcmp(name, "done") == 0)
		*out = JOURNAL_DONE;
	else if (strcmp(name, "failed") == 0)
		*out = JOURNAL_FAILED;
	else
		return -EINVAL;
	return 0;
}

static struct journal_step *journal_step_get(struct journal *journal, const char *name)
{
	struct journal_step *step;

	for (size_t i = 0; i < journal->count; i++)
		if (strcmp(journal->steps[i].name, name) == 0)
			return &journal->steps[i];
	if (journal->count == journal->capacity) {
		size_t capacity = journal->capacity ? journal->capacity * 2 : 32;
		struct journal_step *steps = realloc(journal->steps, capacity * sizeof(*steps));

		if (!steps)
			return NULL;
		journal->steps = steps;
		journal->capacity = capacity;
	}
	step = &journal->steps[journal->count];
	memset(step, 0, sizeof(*step));
	step->name = strdup(name);
	if (!step->name)
		return NULL;
	journal->count++;
	return step;
}

/* Applies one record to the in-memory state of its step. */
static int journal_apply(struct journal *journal, const char *name, const char *digest,
			 enum journal_event event, time_t when, const char *message)
{
	struct journal_step *step = journal_step_get(journal, name);
	char *digest_copy, *message_copy = NULL;

	if (!step)
		return -ENOMEM;
	digest_copy = strdup(digest);
	if (!digest_copy)
		return -ENOMEM;
	if (event == JOURNAL_FAILED && message) {
		message_copy = strdup(message);
		if (!message_copy) {
			free(digest_copy);
			return -ENOMEM;
		}
	}
	free(step->digest);
	step->digest = digest_copy;
	free(step->message);
	step->message = message_copy;
	step->event = event;
	if (event == JOURNAL_START) {
		step->started = when;
		step->runs++;
	} else {
		step->finished = when;
	}
	return 0;
}

static int journal_parse_line(struct journal *journal, const char *path, unsigned line_number,
			      const char *line, size_t len)
{
	struct doc_node *record = NULL;
	struct doc_error error;
	const char *step, *digest, *event_name, *message;
	const struct doc_node *time_node;
	enum journal_event event;
	int r;

	r = doc_parse(line, len, NULL, &record, &error);
	if (r < 0)
		goto invalid;
	step = doc_get_string(record, "step");
	digest = doc_get_string(record, "digest");
	event_name = doc_get_string(record, "event");
	message = doc_get_string(record, "message");
	time_node = doc_get(record, "time");
	if (!step || !digest || !event_name || !time_node || time_node->type != DOC_INT ||
	    journal_event_parse(event_name, &event) < 0) {
		r = MLB_EINPUT;
		goto invalid;
	}
	r = journal_apply(journal, step, digest, event, (time_t)time_node->integer, message);
	doc_free(record);
	return r;

invalid:
	doc_free(record);
	log_error("%s:%u: invalid journal record: move the file aside to start the install afresh",
		  path, line_number);
	return MLB_EINPUT;
}

/*
 * Reads every record. A last line without its newline was cut short by a
 * crash before it was confirmed: when truncate_torn is set it is removed,
 * so the next record starts on a line of its own.
 */
static int journal_load(struct journal *journal, const char *path, bool truncate_torn)
{
	struct buf content = BUF_INIT(JOURNAL_MAX_BYTES);
	size_t start = 0, complete;
	unsigned line_number = 0;
	int r;

	r = file_read_all(path, JOURNAL_MAX_BYTES, &content);
	if (r == -ENOENT) {
		r = 0;
		goto out;
	}
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to read the journal '%s'", path);
		goto out;
	}
	complete = content.len;
	while (complete > 0 && content.data[complete - 1] != '\n')
		complete--;
	if (complete < content.len) {
		log_warning("%s: dropping an unfinished last record (%zu bytes) left by an interrupted run",
			    path, content.len - complete);
		if (truncate_torn && truncate(path, (off_t)complete) < 0) {
			r = log_errno(LOG_ERR, -errno, "failed to truncate '%s'", path);
			goto out;
		}
	}
	while (start < complete) {
		char *newline = memchr(content.data + start, '\n', complete - start);
		size_t len = (size_t)(newline - (content.data + start));

		line_number++;
		if (len > 0) {
			r = journal_parse_line(journal, path, line_number, content.data + start, len);
			if (r < 0)
				goto out;
		}
		start += len + 1;
	}
	r = 0;
out:
	buf_release(&content);
	return r;
}

static struct journal *journal_new(const char *folder)
{
	struct journal *journal = calloc(1, sizeof(*journal));

	if (!journal)
		return NULL;
	journal->fd = -1;
	journal->lock_fd = -1;
	journal->folder = strdup(folder);
	if (!journal->folder) {
		free(journal);
		return NULL;
	}
	return journal;
}

static int journal_lock(struct journal *journal)
{
	char path[PATH_MAX], pid_text[32];
	int n;

	snprintf(path, sizeof(path), "%s/lock", journal->folder);
	journal->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (journal->lock_fd < 0)
		return log_errno(LOG_ERR, -errno, "failed to open the lock file '%s'", path);
	if (flock(journal->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t got;

		if (errno != EWOULDBLOCK)
			return log_errno(LOG_ERR, -errno, "failed to lock '%s'", path);
		got = pread(journal->lock_fd, pid_text, sizeof(pid_text) - 1, 0);
		pid_text[got > 0 ? got : 0] = '\0';
		pid_text[strcspn(pid_text, "\n")] = '\0';
		log_error("the lock '%s' is taken by another mlboot install (pid %s): wait for it to finish or stop it",
			  path, pid_text[0] ? pid_text : "unknown");
		return -EBUSY;
	}
	n = snprintf(pid_text, sizeof(pid_text), "%ld\n", (long)getpid());
	if (ftruncate(journal->lock_fd, 0) < 0 || pwrite(journal->lock_fd, pid_text, (size_t)n, 0) != n)
		return log_errno(LOG_ERR, -errno, "failed to write the pid into '%s'", path);
	return 0;
}

int journal_open(const char *folder, struct journal **out)
{
	struct journal *journal = NULL;
	char path[PATH_MAX];
	int r;

	r = file_mkdir_parents(folder, 0755);
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to create the state folder '%s'", folder);
		goto out;
	}
	journal = journal_new(folder);
	if (!journal) {
		r = -ENOMEM;
		goto out;
	}
	r = journal_lock(journal);
	if (r < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/journal", folder);
	r = journal_load(journal, path, true);
	if (r < 0)
		goto out;
	journal->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (journal->fd < 0) {
		r = log_errno(LOG_ERR, -errno, "failed to open the journal '%s'", path);
		goto out;
	}
	*out = journal;
	journal = NULL;
	r = 0;
out:
	journal_close(journal);
	return r;
}

int journal_read(const char *folder, struct journal **out)
{
	struct journal *journal = journal_new(folder);
	char path[PATH_MAX];
	int r;

	if (!journal)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/journal", folder);
	r = journal_load(journal, path, false);
	if (r < 0) {
		journal_close(journal);
		return r;
	}
	*out = journal;
	return 0;
}

void journal_close(struct journal *journal)
{
	if (!journal)
		return;
	if (journal->fd >= 0)
		close(journal->fd);
	/* Closing the descriptor releases the flock. */
	if (journal->lock_fd >= 0)
		close(journal->lock_fd);
	for (size_t i = 0; i < journal->count; i++) {
		free(journal->steps[i].name);
		free(journal->steps[i].digest);
		free(journal->steps[i].message);
	}
	free(journal->steps);
	free(journal->folder);
	free(journal);
}

const struct journal_step *journal_find(const struct journal *journal, const char *step)
{
	for (size_t i = 0; i < journal->count; i++)
		if (strcmp(journal->steps[i].name, step) == 0)
			return &journal->steps[i];
	return NULL;
}

bool journal_is_done(const struct journal *journal, const char *step, const char *digest)
{
	const struct journal_step *found = journal_find(journal, step);

	return found && found->event == JOURNAL_DONE && strcmp(found->digest, digest) == 0;
}

int journal_record(struct journal *journal, const char *step, const char *digest,
		   enum journal_event event, const char *message)
{
	struct buf line = BUF_INIT(JOURNAL_LINE_MAX);
	time_t now = time(NULL);
	int r;

	if (journal->fd < 0)
		return -EBADF;
	r = buf_printf(&line, "{\"time\":%lld,\"step\":", (long long)now);
	if (r == 0)
		r = doc_write_json_string(&line, step, strlen(step));
	if (r == 0)
		r = buf_append_str(&line, ",\"digest\":");
	if (r == 0)
		r = doc_write_json_string(&line, digest, strlen(digest));
	if (r == 0)
		r = buf_printf(&line, ",\"event\":\"%s\"", journal_event_name(event));
	if (r == 0 && message) {
		/* A long message is cut so that the record stays one bounded line. */
		size_t len = strnlen(message, 2048);

		r = buf_append_str(&line, ",\"message\":");
		if (r == 0)
			r = doc_write_json_string(&line, message, len);
	}
	if (r == 0)
		r = buf_append_str(&line, "}\n");
	if (r < 0)
		goto out;
	/* One write() per record: O_APPEND keeps it whole at the end of the file. */
	r = file_write_full(journal->fd, line.data, line.len);
	if (r == 0 && fdatasync(journal->fd) < 0)
		r = -errno;
	if (r < 0) {
		log_errno(LOG_ERR, r, "failed to append to the journal in '%s'", journal->folder);
		goto out;
	}
	r = journal_apply(journal, step, digest, event, now, message);
out:
	buf_release(&line);
	return r;
}
