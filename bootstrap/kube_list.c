/*
 * Lists read in pages (limit and continue), started again from the first
 * page when the API server reports that the continue token expired.
 *
 * kube-apiserver pins a paged list to the etcd revision of its first page.
 * Once etcd compacts that revision (kube-apiserver's
 * --etcd-compaction-interval, 5 minutes by default), the next page gets 410
 * with reason Expired. The Status may carry a new token for the rest of the
 * list at the latest revision, but following it would mix two states of the
 * cluster, so the list starts again instead. client-go's
 * ListPager.List (k8s.io/client-go/tools/pager/pager.go) also starts again,
 * with one unpaged list.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_private.h"

#define LIST_PAGES_MAX 100000
/* list_pass_fetch's result when the server rejected the continue token as expired. */
#define LIST_TOKEN_EXPIRED 1

/*
 * The pages of one pass over a list. The pages before the last are kept as
 * JSON text and parsed again when their items are delivered. A parsed tree
 * takes several times the memory of its text: 96 bytes a node on x86-64,
 * plus its key and text.
 */
struct list_pass {
	struct buf *bodies;
	size_t count;
	size_t capacity;
	struct doc_node *last;       /* the last page, parsed */
	char *expired_message;       /* message of the 410 Status that ended the pass */
};

static void list_pass_release(struct list_pass *pass)
{
	for (size_t i = 0; i < pass->count; i++)
		buf_release(&pass->bodies[i]);
	free(pass->bodies);
	doc_free(pass->last);
	free(pass->expired_message);
	memset(pass, 0, sizeof(*pass));
}

/* Moves a page's body into the pass and leaves body empty. */
static int list_pass_keep(struct list_pass *pass, struct buf *body)
{
	if (pass->count == pass->capacity) {
		size_t capacity = pass->capacity ? pass->capacity * 2 : 8;
		struct buf *bodies = realloc(pass->bodies, capacity * sizeof(*bodies));

		if (!bodies)
			return -ENOMEM;
		pass->bodies = bodies;
		pass->capacity = capacity;
	}
	pass->bodies[pass->count++] = *body;
	buf_init(body, 0);
	return 0;
}

/* Writes PATH?limit=N, with &continue=TOKEN when continue_token is not NULL. */
static int page_path(const char *path, const char *continue_token, char **out)
{
	char *escaped = NULL;
	int r;

	*out = NULL;
	if (continue_token && !(escaped = kube_escape(continue_token)))
		return -ENOMEM;
	r = asprintf(out, "%s%climit=%d%s%s", path, strchr(path, '?') ? '&' : '?', KUBE_LIST_PAGE_SIZE,
		     escaped ? "&continue=" : "", escaped ? escaped : "");
	free(escaped);
	if (r < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Whether a response is a 410 Status with reason Expired. */
static bool response_is_expired(const struct kube_response *response)
{
	struct doc_node *status = NULL;
	struct doc_error err;
	bool expired;

	if (response->status != 410 || response->body.len > 1024 * 1024)
		return false;
	if (doc_parse(response->body.data ? response->body.data : "", response->body.len, NULL, &status, &err) < 0)
		return false;
	expired = doc_string_equals(doc_get(status, "reason"), "Expired");
	doc_free(status);
	return expired;
}

/*
 * Reads every page of a list into pass. Returns 0, a negative error code,
 * or LIST_TOKEN_EXPIRED (with pass->expired_message set when the Status
 * has a message) when a request with a continue token got 410 Expired. A
 * 410 on the first page, which has no token, is an error like any other.
 */
static int list_pass_fetch(struct kube_client *client, const char *path, struct list_pass *pass)
{
	char *continue_token = NULL, *page = NULL;
	struct kube_response response;
	struct doc_node *list = NULL;
	unsigned pages;
	int r = 0;

	for (pages = 0; pages < LIST_PAGES_MAX; pages++) {
		const char *next;

		free(page);
		r = page_path(path, continue_token, &page);
		if (r < 0)
			break;
		r = kube_request(client, "GET", page, NULL, NULL, 0, &response);
		if (r < 0)
			break;
		if (continue_token && response_is_expired(&response)) {
			pass->expired_message = kube_status_message(&response.body);
			kube_response_release(&response);
			r = LIST_TOKEN_EXPIRED;
			break;
		}
		if (response.status < 200 || response.status > 299)
			r = kube_http_error(client, "GET", page, &response, NULL);
		else
			r = kube_parse_body(client, page, &response.body, &list);
		if (r < 0) {
			kube_response_release(&response);
			break;
		}
		next = doc_find_string(list, "metadata", "continue", NULL);
		if (!next || !*next) {
			pass->last = list;
			list = NULL;
			kube_response_release(&response);
			break;
		}
		if (continue_token && strcmp(continue_token, next) == 0) {
			r = kube_fail(MLB_EFAILED, "API server '%s' returned the same continue token twice listing %s",
				      client->server, path);
			kube_response_release(&response);
			break;
		}
		free(continue_token);
		continue_token = strdup(next);
		doc_free(list);
		list = NULL;
		r = continue_token ? list_pass_keep(pass, &response.body) : -ENOMEM;
		kube_response_release(&response);
		if (r < 0)
			break;
	}
	if (pages == LIST_PAGES_MAX)
		r = kube_fail(MLB_EFAILED, "listing %s from API server '%s' took more than %d pages",
			      path, client->server, LIST_PAGES_MAX);
	doc_free(list);
	free(page);
	free(continue_token);
	return r;
}

static int each_item(const struct doc_node *list,
		     int (*each)(const struct doc_node *item, void *userdata), void *userdata)
{
	const struct doc_node *items = doc_get(list, "items");
	int r = 0;

	for (size_t i = 0; items && items->type == DOC_SEQ && i < items->count && r == 0; i++)
		r = each(items->items[i], userdata);
	return r;
}

/* Calls each() for the items of every page of a complete pass, in order, freeing pages as it goes. */
static int list_pass_deliver(struct kube_client *client, const char *path, struct list_pass *pass,
			     int (*each)(const struct doc_node *item, void *userdata), void *userdata)
{
	int r;

	for (size_t i = 0; i < pass->count; i++) {
		struct doc_node *list = NULL;

		r = kube_parse_body(client, path, &pass->bodies[i], &list);
		buf_release(&pass->bodies[i]);
		if (r < 0)
			return r;
		r = each_item(list, each, userdata);
		doc_free(list);
		if (r != 0)
			return r;
	}
	return each_item(pass->last, each, userdata);
}

int kube_list(struct kube_client *client, const char *path,
	      int (*each)(const struct doc_node *item, void *userdata), void *userdata)
{
	struct list_pass pass = { 0 };
	int r;

	for (unsigned restarts = 0;; restarts++) {
		r = list_pass_fetch(client, path, &pass);
		if (r != LIST_TOKEN_EXPIRED)
			break;
		if (restarts == KUBE_LIST_RESTARTS_MAX) {
			r = kube_fail(MLB_EFAILED, "listing %s from API server '%s' failed: the continue token expired "
				      "in each of %d attempts (%s); the list takes longer than the server keeps a "
				      "continue token (kube-apiserver's --etcd-compaction-interval), so re-run the "
				      "command when the API server is less busy", path, client->server,
				      KUBE_LIST_RESTARTS_MAX + 1,
				      pass.expired_message ? pass.expired_message : "no message");
			break;
		}
		log_debug("listing %s: the continue token for page %zu expired (%s); starting the list again "
			  "from the first page (restart %u of %d)", path, pass.count + 1,
			  pass.expired_message ? pass.expired_message : "no message", restarts + 1,
			  KUBE_LIST_RESTARTS_MAX);
		client->stats.list_restarts++;
		list_pass_release(&pass);
	}
	if (r == 0)
		r = list_pass_deliver(client, path, &pass, each, userdata);
	list_pass_release(&pass);
	return r;
}
