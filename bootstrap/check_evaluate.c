/*
 * The pure evaluations of the check module: each reads objects, listings
 * or responses and describes what it found, without any I/O.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "images.h"

/* Largest caBundle decoded; real ones are a few KiB. */
#define CA_BUNDLE_MAX (1024 * 1024)
/* Nesting depth check_document_equal() follows. */
#define DOCUMENT_DEPTH_MAX 64
/* Bytes of a response body quoted in evidence. */
#define BODY_QUOTED 200

int check_list_add(struct check_list *list, const char *format, ...)
{
	va_list args;
	int r;

	list->count++;
	if (list->count > CHECK_MAX_LISTED)
		return 0;
	if (list->count > 1) {
		r = buf_append_str(list->out, ", ");
		if (r < 0)
			return r;
	}
	va_start(args, format);
	r = buf_vprintf(list->out, format, args);
	va_end(args);
	return r;
}

int check_list_finish(const struct check_list *list)
{
	if (list->count <= CHECK_MAX_LISTED)
		return 0;
	return buf_printf(list->out, " and %zu more", list->count - CHECK_MAX_LISTED);
}

const char *check_condition_status(const struct doc_node *object, const char *type,
				   const char **reason, const char **message)
{
	const struct doc_node *conditions = doc_find(object, "status", "conditions", NULL);

	if (reason)
		*reason = NULL;
	if (message)
		*message = NULL;
	if (!conditions || conditions->type != DOC_SEQ)
		return NULL;
	for (size_t i = 0; i < conditions->count; i++) {
		const struct doc_node *condition = conditions->items[i];

		if (!doc_string_equals(doc_get(condition, "type"), type))
			continue;
		if (reason)
			*reason = doc_get_string(condition, "reason");
		if (message)
			*message = doc_get_string(condition, "message");
		return doc_get_string(condition, "status");
	}
	return NULL;
}

bool check_condition_true(const struct doc_node *object, const char *type)
{
	const char *status = check_condition_status(object, type, NULL, NULL);

	return status && strcmp(status, "True") == 0;
}

static long long integer_at(const struct doc_node *object, const char *section, const char *field,
			    long long fallback)
{
	const struct doc_node *node = doc_find(object, section, field, NULL);

	return node && node->type == DOC_INT ? node->integer : fallback;
}

static const char *text_or(const char *text, const char *fallback)
{
	return text && text[0] ? text : fallback;
}

/* Appends "; " between problems. */
static int problem_start(struct buf *problems)
{
	return problems->len > 0 ? buf_append_str(problems, "; ") : 0;
}

enum check_workload_state check_workload_state(enum check_object_kind kind, const struct check_object *expected,
					       const struct doc_node *object, struct buf *problems)
{
	const char *namespace = text_or(expected->namespace, "");
	long long desired, have;
	const char *reason = NULL, *message = NULL;

	if (!object) {
		if (problem_start(problems) == 0)
			buf_printf(problems, "%s/%s: not found", namespace, expected->name);
		return CHECK_WORKLOAD_MISSING;
	}
	if (kind == CHECK_OBJECT_DAEMONSET) {
		desired = integer_at(object, "status", "desiredNumberScheduled", 0);
		have = integer_at(object, "status", "numberReady", 0);
		if (desired == 0) {
			if (problem_start(problems) == 0)
				buf_printf(problems, "%s/%s: scheduled on no node", namespace, expected->name);
			return CHECK_WORKLOAD_NOT_READY;
		}
		if (have < desired) {
			if (problem_start(problems) == 0)
				buf_printf(problems, "%s/%s: %lld of %lld pods ready", namespace, expected->name,
					   have, desired);
			return CHECK_WORKLOAD_NOT_READY;
		}
		return CHECK_WORKLOAD_READY;
	}

	desired = integer_at(object, "spec", "replicas", 1);
	if (desired <= 0) {
		if (problem_start(problems) == 0)
			buf_printf(problems, "%s/%s: scaled to 0 replicas (the bundle ships %lld)", namespace,
				   expected->name, expected->replicas > 0 ? expected->replicas : 1);
		return CHECK_WORKLOAD_SCALED_TO_ZERO;
	}
	if (kind == CHECK_OBJECT_DEPLOYMENT) {
		have = integer_at(object, "status", "availableReplicas", 0);
		if (have >= desired && check_condition_true(object, "Available"))
			return CHECK_WORKLOAD_READY;
		check_condition_status(object, "Available", &reason, &message);
		if (problem_start(problems) == 0)
			buf_printf(problems, "%s/%s: %lld of %lld replicas available%s%s%s", namespace,
				   expected->name, have, desired, message ? " (" : "", text_or(message, ""),
				   message ? ")" : "");
		return CHECK_WORKLOAD_NOT_READY;
	}
	have = integer_at(object, "status", "readyReplicas", 0);
	if (have >= desired)
		return CHECK_WORKLOAD_READY;
	if (problem_start(problems) == 0)
		buf_printf(problems, "%s/%s: %lld of %lld replicas ready", namespace, expected->name, have, desired);
	return CHECK_WORKLOAD_NOT_READY;
}

bool check_crd_ready(const char *name, const struct doc_node *object, struct buf *problems)
{
	static const char *const conditions[] = { "Established", "NamesAccepted" };

	if (!object) {
		if (problem_start(problems) == 0)
			buf_printf(problems, "%s: not found", name);
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(conditions); i++) {
		const char *reason, *message;
		const char *status = check_condition_status(object, conditions[i], &reason, &message);

		if (status && strcmp(status, "True") == 0)
			continue;
		if (problem_start(problems) == 0)
			buf_printf(problems, "%s: %s is %s%s%s%s", name, conditions[i],
				   status ? status : "not reported", message ? " (" : "", text_or(message, ""),
				   message ? ")" : "");
		return false;
	}
	return true;
}

void check_pod_state(const struct doc_node *pod, struct check_pod_state *out)
{
	const struct doc_node *statuses = doc_find(pod, "status", "containerStatuses", NULL);

	memset(out, 0, sizeof(*out));
	out->phase = doc_find_string(pod, "status", "phase", NULL);
	out->running = out->phase && strcmp(out->phase, "Running") == 0;
	out->ready = check_condition_true(pod, "Ready");
	for (size_t i = 0; statuses && statuses->type == DOC_SEQ && i < statuses->count; i++) {
		const struct doc_node *status = statuses->items[i];
		const struct doc_node *restarts = doc_get(status, "restartCount");

		if (restarts && restarts->type == DOC_INT && restarts->integer > 0)
			out->restarts += restarts->integer;
		if (!out->waiting_reason)
			out->waiting_reason = doc_find_string(status, "state", "waiting", "reason", NULL);
	}
}

/* Decodes base64 text, which may contain line breaks. Returns the length, or -1. */
static long base64_decode(const char *text, unsigned char **out)
{
	size_t len = strlen(text), kept = 0, padding = 0;
	char *compact;
	unsigned char *decoded;
	int n;

	*out = NULL;
	if (len > CA_BUNDLE_MAX)
		return -1;
	compact = malloc(len + 1);
	if (!compact)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (text[i] != '\n' && text[i] != '\r' && text[i] != ' ' && text[i] != '\t')
			compact[kept++] = text[i];
	compact[kept] = '\0';
	if (kept == 0 || kept % 4 != 0) {
		free(compact);
		return -1;
	}
	decoded = malloc(kept / 4 * 3 + 1);
	if (!decoded) {
		free(compact);
		return -1;
	}
	n = EVP_DecodeBlock(decoded, (const unsigned char *)compact, (int)kept);
	if (compact[kept - 1] == '=')
		padding++;
	if (compact[kept - 2] == '=')
		padding++;
	free(compact);
	if (n < 0 || (size_t)n < padding) {
		free(decoded);
		return -1;
	}
	*out = decoded;
	return n - (long)padding;
}

/* Whether data contains at least one PEM certificate that OpenSSL can parse. */
static bool holds_certificate(const unsigned char *data, long len)
{
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	X509 *certificate = NULL;

	if (bio)
		certificate = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	ERR_clear_error();
	X509_free(certificate);
	BIO_free(bio);
	return certificate != NULL;
}

/* Decodes a base64 value of a Secret's data into a new PEM BIO; NULL when it is missing or invalid. */
static BIO *secret_value(const struct doc_node *secret, const char *key, unsigned char **decoded, long *len)
{
	const char *text = doc_find_string(secret, "data", key, NULL);

	*decoded = NULL;
	*len = 0;
	if (!text)
		return NULL;
	*len = base64_decode(text, decoded);
	if (*len <= 0) {
		*len = 0;
		return NULL;
	}
	return BIO_new_mem_buf(*decoded, (int)*len);
}

bool check_certificate_secret(const struct doc_node *secret, const char *dns_name, struct buf *out)
{
	unsigned char *certificate_data = NULL, *key_data = NULL;
	long certificate_len, key_len;
	BIO *certificate_bio = secret_value(secret, "tls.crt", &certificate_data, &certificate_len);
	BIO *key_bio = secret_value(secret, "tls.key", &key_data, &key_len);
	X509 *certificate = NULL;
	EVP_PKEY *key = NULL;
	char not_after[64] = "";
	bool ok = false;

	if (certificate_bio)
		certificate = PEM_read_bio_X509(certificate_bio, NULL, NULL, NULL);
	if (key_bio)
		key = PEM_read_bio_PrivateKey(key_bio, NULL, NULL, NULL);
	if (!certificate) {
		buf_append_str(out, "tls.crt holds no PEM certificate");
		goto out;
	}
	if (!key) {
		buf_append_str(out, "tls.key holds no PEM private key");
		goto out;
	}
	if (X509_check_private_key(certificate, key) != 1) {
		buf_append_str(out, "tls.key is not the private key of tls.crt");
		goto out;
	}
	if (X509_check_host(certificate, dns_name, strlen(dns_name), 0, NULL) != 1) {
		buf_printf(out, "the certificate in tls.crt is not valid for %s", dns_name);
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(certificate)) > 0 ||
	    X509_cmp_current_time(X509_get0_notAfter(certificate)) < 0) {
		buf_append_str(out, "the certificate in tls.crt is not valid at this time");
		goto out;
	}
	{
		BIO *text = BIO_new(BIO_s_mem());
		char *data = NULL;
		long len;

		if (text && ASN1_TIME_print(text, X509_get0_notAfter(certificate)) == 1) {
			len = BIO_get_mem_data(text, &data);
			snprintf(not_after, sizeof(not_after), "%.*s", (int)(len > 60 ? 60 : len), data);
		}
		BIO_free(text);
	}
	buf_printf(out, "tls.crt is valid for %s until %s and matches tls.key", dns_name,
		   not_after[0] ? not_after : "?");
	ok = true;
out:
	ERR_clear_error();
	X509_free(certificate);
	EVP_PKEY_free(key);
	BIO_free(certificate_bio);
	BIO_free(key_bio);
	free(certificate_data);
	if (key_data)
		secure_wipe(key_data, (size_t)key_len);
	free(key_data);
	return ok;
}

bool check_webhook_ca_bundle(const char *configuration, const struct doc_node *webhook,
			     struct buf *problems)
{
	const char *name = text_or(doc_get_string(webhook, "name"), "?");
	const char *bundle = doc_find_string(webhook, "clientConfig", "caBundle", NULL);
	unsigned char *decoded = NULL;
	long len;
	bool ok;

	if (!bundle || !bundle[0]) {
		if (problem_start(problems) == 0)
			buf_printf(problems, "%s/%s: caBundle is empty", configuration, name);
		return false;
	}
	len = base64_decode(bundle, &decoded);
	ok = len > 0 && holds_certificate(decoded, len);
	free(decoded);
	if (!ok && problem_start(problems) == 0)
		buf_printf(problems, "%s/%s: caBundle holds no PEM certificate", configuration, name);
	return ok;
}

size_t check_endpoint_slice_ready_count(const struct doc_node *slice)
{
	const struct doc_node *endpoints = doc_get(slice, "endpoints");
	size_t ready_count = 0;

	for (size_t i = 0; endpoints && endpoints->type == DOC_SEQ && i < endpoints->count; i++) {
		const struct doc_node *endpoint = endpoints->items[i];
		const struct doc_node *addresses = doc_get(endpoint, "addresses");
		const struct doc_node *ready = doc_find(endpoint, "conditions", "ready", NULL);

		if (!addresses || addresses->type != DOC_SEQ || addresses->count == 0)
			continue;
		if (!ready || ready->type != DOC_BOOL || ready->boolean)
			ready_count++;
	}
	return ready_count;
}

size_t check_endpoints_ready_count(const struct doc_node *endpoints)
{
	const struct doc_node *subsets = doc_get(endpoints, "subsets");
	size_t ready_count = 0;

	for (size_t i = 0; subsets && subsets->type == DOC_SEQ && i < subsets->count; i++) {
		const struct doc_node *addresses = doc_get(subsets->items[i], "addresses");

		if (addresses && addresses->type == DOC_SEQ)
			ready_count += addresses->count;
	}
	return ready_count;
}

/* Whether text can go into a URL as a host: letters, digits, '.', '-' and ':' (IPv6), at most 253 bytes. */
static bool host_is_valid(const char *text)
{
	size_t len = text ? strlen(text) : 0;

	return len > 0 && len <= 253 &&
	       strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") == len;
}

static const struct doc_node *pick_port(const struct doc_node *ports, const char *port_name,
					unsigned port_number)
{
	if (!ports || ports->type != DOC_SEQ || ports->count == 0)
		return NULL;
	for (size_t i = 0; port_name && i < ports->count; i++)
		if (doc_string_equals(doc_get(ports->items[i], "name"), port_name))
			return ports->items[i];
	for (size_t i = 0; port_number && i < ports->count; i++) {
		const struct doc_node *port = doc_get(ports->items[i], "port");

		if (port && port->type == DOC_INT && port->integer == (long long)port_number)
			return ports->items[i];
	}
	return ports->items[0];
}

int check_service_address(const struct doc_node *service, const char *port_name, unsigned port_number,
			  bool cluster_ips, struct check_address *out, const char **reason)
{
	const struct doc_node *port = pick_port(doc_find(service, "spec", "ports", NULL), port_name, port_number);
	const struct doc_node *ingress = doc_find(service, "status", "loadBalancer", "ingress", NULL);
	const struct doc_node *external = doc_find(service, "spec", "externalIPs", NULL);
	const struct doc_node *number = doc_get(port, "port");
	const char *host = NULL, *cluster_ip = doc_find_string(service, "spec", "clusterIP", NULL);

	memset(out, 0, sizeof(*out));
	*reason = NULL;
	if (!number || number->type != DOC_INT || number->integer <= 0 || number->integer > 65535) {
		*reason = "the Service has no port";
		return -ENOENT;
	}
	for (size_t i = 0; !host && ingress && ingress->type == DOC_SEQ && i < ingress->count; i++) {
		host = doc_get_string(ingress->items[i], "ip");
		if (!host)
			host = doc_get_string(ingress->items[i], "hostname");
		if (host)
			out->source = "load balancer";
	}
	for (size_t i = 0; !host && external && external->type == DOC_SEQ && i < external->count; i++) {
		if (external->items[i]->type == DOC_STRING) {
			host = external->items[i]->text;
			out->source = "external IP";
		}
	}
	if (!host && cluster_ips && cluster_ip && strcmp(cluster_ip, "None") != 0) {
		host = cluster_ip;
		out->source = "cluster IP";
	}
	if (!host) {
		*reason = cluster_ip && strcmp(cluster_ip, "None") != 0
				  ? "the Service has no load-balancer address and no external IP, only a cluster IP"
				  : "the Service has no load-balancer address, external IP or cluster IP";
		out->source = NULL;
		return -ENOENT;
	}
	if (!host_is_valid(host)) {
		*reason = "the Service's address is not a valid host name or IP address";
		out->source = NULL;
		return -ENOENT;
	}
	snprintf(out->host, sizeof(out->host), "%s", host);
	out->port = (unsigned)number->integer;
	return 0;
}

static bool number_value(const struct doc_node *node, double *value)
{
	if (node->type == DOC_INT)
		*value = (double)node->integer;
	else if (node->type == DOC_FLOAT)
		*value = node->real;
	else
		return false;
	return true;
}

static bool documents_equal(const struct doc_node *a, const struct doc_node *b, unsigned depth)
{
	double x, y;

	if (!a || !b)
		return a == b;
	if (depth > DOCUMENT_DEPTH_MAX)
		return false;
	if (number_value(a, &x) && number_value(b, &y))
		return x == y;
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case DOC_NULL:
		return true;
	case DOC_BOOL:
		return a->boolean == b->boolean;
	case DOC_STRING:
		return a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0;
	case DOC_SEQ:
		if (a->count != b->count)
			return false;
		for (size_t i = 0; i < a->count; i++)
			if (!documents_equal(a->items[i], b->items[i], depth + 1))
				return false;
		return true;
	case DOC_MAP:
		if (a->count != b->count)
			return false;
		for (size_t i = 0; i < a->count; i++)
			if (!documents_equal(a->items[i], doc_get(b, a->items[i]->key), depth + 1))
				return false;
		return true;
	case DOC_INT:
	case DOC_FLOAT:
		break;
	}
	return false;
}

bool check_document_equal(const struct doc_node *a, const struct doc_node *b)
{
	return documents_equal(a, b, 0);
}

bool check_server_is_envoy(const char *server)
{
	return server && (strcasecmp(server, "istio-envoy") == 0 || strcasecmp(server, "envoy") == 0);
}

/* Appends at most BODY_QUOTED bytes of a response body, cut at a character boundary. */
static int quote_body(struct buf *out, const struct check_http_response *response)
{
	size_t len = response->body.len;

	if (len == 0)
		return buf_append_str(out, "an empty body");
	if (len > BODY_QUOTED) {
		len = BODY_QUOTED;
		while (len > 0 && ((unsigned char)response->body.data[len] & 0xC0) == 0x80)
			len--;
	}
	return buf_printf(out, "'%.*s'%s", (int)len, response->body.data,
			  len < response->body.len ? " [cut]" : "");
}

int check_evaluate_prediction(const struct check_http_response *response, const char *expected_json,
			      const char *request, const char *model, struct preflight_finding *finding)
{
	struct doc_node *expected = NULL, *actual = NULL;
	struct doc_error error;
	const char *start;
	int r;

	finding->status = CHECK_FAIL;
	r = doc_parse(expected_json, strlen(expected_json), NULL, &expected, &error);
	if (r < 0)
		goto out;
	if (response->status == 0) {
		r = buf_printf(&finding->evidence, "%s: no response: %s", request, response->error);
		if (r == 0)
			r = buf_append_str(&finding->remedy,
					   "the ingress gateway does not answer on its address: check the "
					   "istio-ingressgateway pods and the load balancer (or external IP) "
					   "that routes to them");
		goto out;
	}
	if (response->status != 200) {
		r = buf_printf(&finding->evidence, "%s returned HTTP %ld (server '%s') with ", request,
			       response->status, response->server);
		if (r == 0)
			r = quote_body(&finding->evidence, response);
		if (r == 0)
			r = buf_printf(&finding->remedy,
				       "the model did not answer through the gateway: look at the predictor "
				       "pods and their logs (kubectl -n %.*s get pods -l "
				       "serving.kserve.io/inferenceservice=%s; kubectl logs POD), and at the "
				       "route the gateway has for the InferenceService's host",
				       (int)strcspn(model, "/"), model,
				       strchr(model, '/') ? strchr(model, '/') + 1 : model);
		goto out;
	}
	start = buf_str(&response->body);
	start += strspn(start, " \t\r\n");
	/* The parser reads YAML too, of which JSON is a part: demand a JSON object. */
	if (*start != '{' || response->body_truncated ||
	    doc_parse(response->body.data, response->body.len, NULL, &actual, &error) < 0) {
		r = buf_printf(&finding->evidence, "%s returned HTTP 200 with a body that is not a JSON object: ",
			       request);
		if (r == 0)
			r = quote_body(&finding->evidence, response);
		if (r == 0)
			r = buf_append_str(&finding->remedy,
					   "the server that answered is not a KServe model server speaking the "
					   "v1 protocol: check the InferenceService's runtime and the gateway's route");
		goto out;
	}
	if (!check_document_equal(expected, actual)) {
		r = buf_printf(&finding->evidence, "%s returned HTTP 200 with ", request);
		if (r == 0)
			r = quote_body(&finding->evidence, response);
		if (r == 0)
			r = buf_printf(&finding->evidence, ", expected %s", expected_json);
		if (r == 0)
			r = buf_printf(&finding->remedy,
				       "the model answers, but with other predictions than the sample model "
				       "gives: check that InferenceService %s serves the model carried in the "
				       "bundle (its storageUri and runtime)", model);
		goto out;
	}
	finding->status = CHECK_PASS;
	r = buf_printf(&finding->evidence, "%s returned HTTP 200 with %s, as expected, in %.0f ms", request,
		       expected_json, response->seconds * 1000.0);
out:
	doc_free(expected);
	doc_free(actual);
	return r;
}

const char *check_image_id_digest(const char *image_id)
{
	const char *at = image_id ? strstr(image_id, "@sha256:") : NULL;

	if (!at || !sha256_is_hex(at + 8))
		return NULL;
	return at + 1;
}

static const struct check_image *find_image_by_name(const struct check_platform *platform, const char *name)
{
	for (size_t i = 0; i < platform->image_count; i++)
		if (strcmp(platform->images[i].name, name) == 0)
			return &platform->images[i];
	return NULL;
}

/* Finds a bundle image of the same repository (registry/repository) with the digest. */
static const struct check_image *find_image_by_digest(const struct check_platform *platform,
						      const char *repository, const char *digest)
{
	size_t len = strlen(repository);

	for (size_t i = 0; i < platform->image_count; i++) {
		const struct check_image *image = &platform->images[i];

		if (image->digest && strcmp(image->digest, digest) == 0 &&
		    strncmp(image->name, repository, len) == 0 && image->name[len] == ':')
			return image;
	}
	return NULL;
}

int check_image_in_bundle(const struct check_platform *platform, const char *image,
			  const char *image_id, bool *by_digest, struct buf *reason)
{
	struct image_reference reference;
	char name[IMAGE_REFERENCE_MAX], repository[IMAGE_NAME_MAX + 2];
	const char *digest = check_image_id_digest(image_id);
	const struct check_image *found = NULL;

	*by_digest = false;
	if (!image || image_reference_parse(image, &reference) < 0)
		return buf_printf(reason, "'%s' is not an image reference", text_or(image, ""));
	if (!digest && reference.digest[0])
		digest = reference.digest;
	if (image_reference_name(&reference, repository, sizeof(repository)) < 0)
		return buf_printf(reason, "'%s' is too long", image);
	if (reference.tag[0]) {
		reference.digest[0] = '\0';
		if (image_reference_format(&reference, name, sizeof(name)) < 0)
			return buf_printf(reason, "'%s' is too long", image);
		found = find_image_by_name(platform, name);
	}
	if (found && digest && found->digest && strcmp(found->digest, digest) != 0) {
		return buf_printf(reason, "%s runs digest %s, but the bundle's %s is %s", image, digest,
				  found->name, found->digest) < 0 ? -ENOMEM : 0;
	}
	if (found) {
		*by_digest = digest && found->digest;
		return 1;
	}
	if (digest && find_image_by_digest(platform, repository, digest)) {
		*by_digest = true;
		return 1;
	}
	return buf_printf(reason, "%s%s%s is not in the bundle", image, digest ? " with digest " : "",
			  digest && !strstr(image, digest) ? digest : "") < 0 ? -ENOMEM : 0;
}

void check_node_images_release(struct check_node_images *images)
{
	for (size_t i = 0; i < images->count; i++) {
		free(images->items[i].name);
		free(images->items[i].digest);
	}
	free(images->items);
	images->items = NULL;
	images->count = 0;
}

/* Whether a comma-separated label list contains the pinned label. */
static bool labels_pinned(const char *labels, size_t len)
{
	size_t pinned_len = strlen(CHECK_PINNED_LABEL);
	size_t i = 0;

	while (i < len) {
		size_t item = i;

		while (i < len && labels[i] != ',')
			i++;
		if (i - item == pinned_len && memcmp(labels + item, CHECK_PINNED_LABEL, pinned_len) == 0)
			return true;
		i++;
	}
	return false;
}

/* Parses one listing line; returns 1 and fills image, 0 for a line that does not fit, or -ENOMEM. */
static int parse_ctr_line(const char *line, size_t len, struct check_node_image *image)
{
	const char *field[6];
	size_t field_len[6];
	size_t i = 0, fields = 0;

	while (fields < 6) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i >= len)
			return 0;
		field[fields] = line + i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		field_len[fields] = (size_t)(line + i - field[fields]);
		fields++;
	}
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	/* ctr pads every column, the last one too. */
	while (len > i && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	/* REF TYPE DIGEST SIZE UNIT PLATFORMS, then the labels. */
	if (field_len[2] != 7 + SHA256_HEX_LEN || strncmp(field[2], "sha256:", 7) != 0)
		return 0;
	image->name = strndup(field[0], field_len[0]);
	image->digest = strndup(field[2], field_len[2]);
	if (!image->name || !image->digest) {
		free(image->name);
		free(image->digest);
		return -ENOMEM;
	}
	if (!sha256_is_hex(image->digest + 7)) {
		free(image->name);
		free(image->digest);
		return 0;
	}
	image->pinned = labels_pinned(line + i, len - i);
	return 1;
}

int check_parse_ctr_images(const char *text, size_t len, struct check_node_images *out, size_t *skipped)
{
	size_t position = 0, ignored = 0;
	bool header = true;
	int r = 0;

	memset(out, 0, sizeof(*out));
	while (position < len && r >= 0) {
		const char *line = text + position;
		const char *end = memchr(line, '\n', len - position);
		size_t line_len = end ? (size_t)(end - line) : len - position;
		struct check_node_image image = { NULL, NULL, false };
		struct check_node_image *items;

		position += line_len + (end ? 1 : 0);
		if (line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		if (line_len == 0)
			continue;
		if (header) {
			header = false;
			if (line_len >= 4 && strncmp(line, "REF ", 4) == 0)
				continue;
		}
		r = parse_ctr_line(line, line_len, &image);
		if (r == 0) {
			ignored++;
			continue;
		}
		if (r < 0)
			break;
		if (out->count >= CHECK_OBJECTS_MAX) {
			free(image.name);
			free(image.digest);
			r = -E2BIG;
			break;
		}
		items = reallocarray(out->items, out->count + 1, sizeof(*items));
		if (!items) {
			free(image.name);
			free(image.digest);
			r = -ENOMEM;
			break;
		}
		out->items = items;
		out->items[out->count++] = image;
		r = 0;
	}
	if (skipped)
		*skipped = ignored;
	if (r < 0) {
		check_node_images_release(out);
		return r;
	}
	return 0;
}

static const struct check_node_image *node_image_find(const struct check_node_images *images, const char *name)
{
	for (size_t i = 0; i < images->count; i++)
		if (strcmp(images->items[i].name, name) == 0)
			return &images->items[i];
	return NULL;
}

/* The components named in a remedy, each once. */
struct component_names {
	struct check_list list;
	const char *seen[BUNDLE_COMPONENTS_MAX];
	size_t count;
};

static int note_component(struct component_names *names, const char *component)
{
	if (!component)
		return 0;
	for (size_t i = 0; i < names->count; i++)
		if (strcmp(names->seen[i], component) == 0)
			return 0;
	if (names->count < BUNDLE_COMPONENTS_MAX)
		names->seen[names->count++] = component;
	return check_list_add(&names->list, "%s", component);
}

int check_evaluate_node_images(const struct check_platform *platform, const struct check_node_images *images,
			       struct preflight_finding *present, struct preflight_finding *pinned)
{
	struct buf missing_text = BUF_INIT(REPORT_TEXT_MAX), other_text = BUF_INIT(REPORT_TEXT_MAX);
	struct buf unpinned_text = BUF_INIT(REPORT_TEXT_MAX), components_text = BUF_INIT(4096);
	struct check_list missing = { &missing_text, 0 }, other = { &other_text, 0 };
	struct check_list unpinned = { &unpinned_text, 0 };
	struct component_names components = { .list = { &components_text, 0 } };
	size_t present_count = 0;
	int r = 0;

	for (size_t i = 0; i < platform->image_count && r == 0; i++) {
		const struct check_image *image = &platform->images[i];
		const struct check_node_image *found = node_image_find(images, image->name);

		if (!found || (image->digest && strcmp(found->digest, image->digest) != 0))
			r = note_component(&components, image->component);
		if (r < 0)
			break;
		if (!found) {
			r = check_list_add(&missing, "%s", image->name);
			continue;
		}
		present_count++;
		if (image->digest && strcmp(found->digest, image->digest) != 0)
			r = check_list_add(&other, "%s (node %s, bundle %s)", image->name, found->digest,
					   image->digest);
		if (r == 0 && !found->pinned)
			r = check_list_add(&unpinned, "%s", image->name);
	}
	if (r == 0)
		r = check_list_finish(&missing);
	if (r == 0)
		r = check_list_finish(&other);
	if (r == 0)
		r = check_list_finish(&unpinned);
	if (r < 0)
		goto out;

	if (missing.count == 0 && other.count == 0) {
		present->status = CHECK_PASS;
		r = buf_printf(&present->evidence, "all %zu images of the bundle are present with their digests "
			       "(%zu images in containerd's k8s.io namespace)", platform->image_count, images->count);
	} else {
		present->status = CHECK_FAIL;
		r = buf_printf(&present->evidence, "%zu of %zu images of the bundle", missing.count + other.count,
			       platform->image_count);
		if (r == 0 && missing.count > 0)
			r = buf_printf(&present->evidence, " are missing: %s%s", buf_str(&missing_text),
				       other.count > 0 ? ";" : "");
		if (r == 0 && other.count > 0)
			r = buf_printf(&present->evidence, " have other content: %s", buf_str(&other_text));
		if (r == 0 && components.count > 0)
			r = check_list_finish(&components.list);
		if (r == 0 && components.count == 1)
			r = buf_printf(&present->remedy,
				       "import them again with mlboot install --force --only %s, which sends each "
				       "node only the images it lacks", buf_str(&components_text));
		else if (r == 0 && components.count > 1)
			r = buf_printf(&present->remedy,
				       "import them again with mlboot install --force --only COMPONENT for each of "
				       "%s; it sends each node only the images it lacks", buf_str(&components_text));
		else if (r == 0)
			r = buf_append_str(&present->remedy,
					   "import them again with mlboot install --force, which sends each node only "
					   "the images it lacks");
	}
	if (r < 0)
		goto out;

	if (unpinned.count == 0) {
		pinned->status = CHECK_PASS;
		r = buf_printf(&pinned->evidence, "all %zu images of the bundle on this node carry %s", present_count,
			       CHECK_PINNED_LABEL);
	} else {
		pinned->status = CHECK_FAIL;
		r = buf_printf(&pinned->evidence, "%zu of %zu images of the bundle on this node are not pinned: %s",
			       unpinned.count, present_count, buf_str(&unpinned_text));
		if (r == 0)
			r = buf_append_str(&pinned->remedy,
					   "pin them, so that kubelet's image garbage collection keeps them while "
					   "no registry can give them back: ctr -n k8s.io images label NAME "
					   CHECK_PINNED_LABEL " (mlboot install pins every image it imports)");
	}
out:
	buf_release(&missing_text);
	buf_release(&other_text);
	buf_release(&unpinned_text);
	buf_release(&components_text);
	return r;
}
