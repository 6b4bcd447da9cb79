/*
 * node_for_each(): one thread per host, at most a bound at a time. Each
 * thread takes the next host index from a shared counter, so a slow host
 * never holds up the hosts behind it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "node-internal.h"

#define FOR_EACH_DEFAULT_PARALLEL 8
#define FOR_EACH_MAX_PARALLEL 64
/* libssh2 and OpenSSL need more than the smallest stacks; 1 MiB is plenty. */
#define FOR_EACH_STACK_SIZE (1 << 20)

struct for_each_state {
	const struct node_host *hosts;
	size_t count;
	node_task_fn task;
	void *context;
	struct node_outcome *outcomes;
	atomic_size_t next;
};

static void run_one(struct for_each_state *state, size_t index)
{
	struct node_outcome *outcome = &state->outcomes[index];

	outcome->error.message[0] = '\0';
	outcome->result = state->task(&state->hosts[index], index, state->context, &outcome->error);
	if (outcome->result < 0 && !outcome->error.message[0])
		node_fail(&outcome->error, outcome->result, state->hosts[index].name, "failed: %s",
			  mlb_strerror(outcome->result));
}

static void *worker_main(void *argument)
{
	struct for_each_state *state = argument;

	for (;;) {
		size_t index = atomic_fetch_add(&state->next, 1);

		if (index >= state->count)
			break;
		run_one(state, index);
	}
	return NULL;
}

int node_for_each(const struct node_host *hosts, size_t count, unsigned parallel,
		  node_task_fn task, void *context, struct node_outcome *outcomes)
{
	struct for_each_state state = {
		.hosts = hosts, .count = count, .task = task, .context = context,
		.outcomes = outcomes,
	};
	pthread_t *threads = NULL;
	pthread_attr_t attributes;
	size_t started = 0, workers;
	int r = 0;

	if (count == 0)
		return 0;
	atomic_init(&state.next, 0);
	if (parallel == 0)
		parallel = FOR_EACH_DEFAULT_PARALLEL;
	if (parallel > FOR_EACH_MAX_PARALLEL)
		parallel = FOR_EACH_MAX_PARALLEL;
	workers = count < parallel ? count : parallel;
	for (size_t i = 0; i < count; i++) {
		outcomes[i].result = -ECANCELED;
		outcomes[i].error.message[0] = '\0';
	}

	threads = calloc(workers, sizeof(*threads));
	if (threads && pthread_attr_init(&attributes) == 0) {
		pthread_attr_setstacksize(&attributes, FOR_EACH_STACK_SIZE);
		for (; started < workers; started++)
			if (pthread_create(&threads[started], &attributes, worker_main, &state) != 0)
				break;
		pthread_attr_destroy(&attributes);
	}
	/* With no thread at all, the hosts still run, one after another, here. */
	if (started == 0)
		worker_main(&state);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);

	for (size_t i = 0; i < count; i++)
		if (outcomes[i].result < 0) {
			r = outcomes[i].result;
			break;
		}
	return r;
}
