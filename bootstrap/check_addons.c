/*
 * The checks that exercise what the add-ons are for, beyond their pods:
 * cert-manager issues a certificate, the Istio ingress gateway responds to
 * HTTP, the sample model predicts through it, and Argo CD's servers
 * report healthy. Each runs when the platform has the add-on: a CRD, or a
 * Service of the well-known name, in any component.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "check_internal.h"

#define CERT_MANAGER_CRD       "certificates.cert-manager.io"
#define KSERVE_CRD             "inferenceservices.serving.kserve.io"
#define GATEWAY_SERVICE        "istio-ingressgateway"
#define ARGOCD_SERVER          "argocd-server"
#define ARGOCD_REPO_SERVER     "argocd-repo-server"

/*
 * The request and response of KServe's tutorial "Deploy Your First
 * Predictive Inference Service" (kserve.github.io): the sklearn iris model
 * classifies both flowers as class 1, Iris Versicolour.
 */
#define PREDICTION_BODY     "{\"instances\":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}"
#define PREDICTION_EXPECTED "{\"predictions\":[1,1]}"

/* Seconds an HTTP probe may take. */
#define HTTP_TIMEOUT 15L

#define SCRATCH_LABEL "mlboot.dev/scratch"

static void sleep_ms(long milliseconds)
{
	struct timespec wait = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };

	nanosleep(&wait, NULL);
}

static double monotonic_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* ---- cert-manager ---------------------------------------------------- */

struct certificate_scan {
	size_t total;
	size_t unready;
	struct check_list list;
	char first[512];          /* "namespace name" of the first Certificate not Ready */
};

static int scan_certificate(const struct doc_node *item, void *userdata)
{
	struct certificate_scan *scan = userdata;
	const char *namespace = doc_find_string(item, "metadata", "namespace", NULL);
	const char *name = doc_find_string(item, "metadata", "name", NULL);
	const char *reason, *message, *status;

	scan->total++;
	status = check_condition_status(item, "Ready", &reason, &message);
	if (status && strcmp(status, "True") == 0)
		return 0;
	scan->unready++;
	if (!scan->first[0])
		snprintf(scan->first, sizeof(scan->first), "%s %s", namespace ? namespace : "",
			 name ? name : "");
	return check_list_add(&scan->list, "%s/%s (Ready=%s%s%s)", namespace ? namespace : "",
			      name ? name : "?", status ? status : "not reported", message ? ": " : "",
			      message ? message : "");
}

static int check_certificates(struct check_state *state, const char *group)
{
	const char *id = "cert-manager.certificates", *title = "every Certificate Ready";
	struct buf problems = BUF_INIT(REPORT_TEXT_MAX);
	struct certificate_scan scan;
	int r;

	memset(&scan, 0, sizeof(scan));
	scan.list.out = &problems;
	if (state->skip_reason)
		return check_add_skipped(state, group, id, title);
	r = kube_list(state->client, "/apis/cert-manager.io/v1/certificates", scan_certificate, &scan);
	if (r == 0)
		r = check_list_finish(&scan.list);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		r = check_add(state, group, id, title, CHECK_FAIL,
			      "check that cert-manager's CRDs are installed: kubectl get crd " CERT_MANAGER_CRD,
			      "listing Certificates failed: %s", check_failure_text(r));
	} else if (scan.unready > 0) {
		const char *space = strchr(scan.first, ' ');
		char remedy[1024];

		snprintf(remedy, sizeof(remedy),
			 "kubectl -n %.*s describe certificate %s, and kubectl get certificaterequests,orders -A, "
			 "show why it is not issued (an Issuer that is not ready, a failed request)",
			 space ? (int)(space - scan.first) : 0, scan.first, space ? space + 1 : "");
		r = check_add(state, group, id, title, CHECK_FAIL, remedy, "%zu of %zu Certificates not Ready: %s",
			      scan.unready, scan.total, buf_str(&problems));
	} else {
		r = check_add(state, group, id, title, CHECK_PASS, NULL, "%zu Certificate%s, all Ready", scan.total,
			      scan.total == 1 ? "" : "s");
	}
out:
	buf_release(&problems);
	return r;
}

/* Applies one object given as JSON; on failure appends to problem which object failed and why. */
static int apply_json(struct check_state *state, const char *json, const char *description, struct buf *problem)
{
	struct doc_node *object = NULL;
	struct doc_error error;
	char *message = NULL;
	long status = 0;
	int r;

	r = doc_parse(json, strlen(json), NULL, &object, &error);
	if (r < 0)
		return r;
	r = kube_apply(state->client, object, NULL, 0, NULL, &status, &message);
	if (r < 0 && r != -ENOMEM) {
		buf_printf(problem, "creating %s failed: %s", description,
			   message && message[0] ? message : check_failure_text(r));
		r = MLB_EFAILED;
	}
	free(message);
	doc_free(object);
	return r;
}

/* Waits until the test Certificate is Ready or the timeout passes; returns whether it became Ready. */
static bool wait_certificate(struct check_state *state, const char *path, double deadline, struct buf *problem)
{
	const char *status = NULL, *reason = NULL, *message = NULL;
	struct doc_node *certificate = NULL;
	int r;

	for (;;) {
		doc_free(certificate);
		certificate = NULL;
		r = kube_get(state->client, path, &certificate, NULL);
		if (r == 0 && check_condition_true(certificate, "Ready")) {
			doc_free(certificate);
			return true;
		}
		if (monotonic_seconds() >= deadline)
			break;
		sleep_ms(250);
	}
	if (r < 0) {
		buf_printf(problem, "the test Certificate was not Ready within %u s (reading it failed: %s)",
			   state->options->timeout, check_failure_text(r));
	} else {
		status = check_condition_status(certificate, "Ready", &reason, &message);
		buf_printf(problem, "the test Certificate was not Ready within %u s (Ready=%s%s%s)",
			   state->options->timeout, status ? status : "not reported", message ? ": " : "",
			   message ? message : "");
	}
	doc_free(certificate);
	return false;
}

/* Deletes the scratch namespace; appends to note what happened to it. */
static void remove_scratch(struct check_state *state, const char *namespace, struct buf *note, bool *removed)
{
	struct doc_node *object = NULL;
	char path[300];
	int r;

	*removed = false;
	r = kube_delete(state->client, "v1", "Namespace", NULL, namespace);
	if (r < 0) {
		buf_printf(note, "; removing namespace %s failed: %s", namespace, check_failure_text(r));
		return;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s", namespace);
	r = kube_get(state->client, path, &object, NULL);
	if (r == -ENOENT || (r == 0 && doc_find(object, "metadata", "deletionTimestamp", NULL))) {
		*removed = true;
		buf_printf(note, "; namespace %s %s", namespace, r == -ENOENT ? "removed" : "being removed");
	} else {
		buf_printf(note, "; namespace %s is still there after its deletion", namespace);
	}
	doc_free(object);
}

static int check_issuance(struct check_state *state, const char *group)
{
	const char *id = "cert-manager.issuance", *title = "test certificate issued end to end";
	struct buf evidence = BUF_INIT(REPORT_TEXT_MAX), problem = BUF_INIT(REPORT_TEXT_MAX);
	struct buf note = BUF_INIT(2048), found = BUF_INIT(2048);
	struct doc_node *secret = NULL;
	char namespace[64], dns_name[128], json[1536], path[300];
	unsigned char random_bytes[4];
	double started, deadline;
	bool created = false, issued = false, removed = false;
	int r;

	if (state->skip_reason)
		return check_add_skipped(state, group, id, title);
	if (getrandom(random_bytes, sizeof(random_bytes), 0) != (ssize_t)sizeof(random_bytes))
		return -errno;
	snprintf(namespace, sizeof(namespace), "mlboot-check-%02x%02x%02x%02x", random_bytes[0], random_bytes[1],
		 random_bytes[2], random_bytes[3]);
	snprintf(dns_name, sizeof(dns_name), "mlboot-check.%s.svc", namespace);
	log_info("issuing a test certificate in the scratch namespace '%s'", namespace);
	started = monotonic_seconds();
	deadline = started + state->options->timeout;

	snprintf(json, sizeof(json),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\","
		 "\"labels\":{\"" SCRATCH_LABEL "\":\"check\"}}}", namespace);
	r = apply_json(state, json, "the scratch namespace", &problem);
	if (r < 0)
		goto evaluate;
	created = true;
	snprintf(json, sizeof(json),
		 "{\"apiVersion\":\"cert-manager.io/v1\",\"kind\":\"Issuer\",\"metadata\":{\"name\":"
		 "\"mlboot-check-selfsigned\",\"namespace\":\"%s\"},\"spec\":{\"selfSigned\":{}}}", namespace);
	r = apply_json(state, json, "the self-signed Issuer", &problem);
	if (r < 0)
		goto evaluate;
	snprintf(json, sizeof(json),
		 "{\"apiVersion\":\"cert-manager.io/v1\",\"kind\":\"Certificate\",\"metadata\":{\"name\":"
		 "\"mlboot-check\",\"namespace\":\"%s\"},\"spec\":{\"secretName\":\"mlboot-check-tls\","
		 "\"commonName\":\"%s\",\"dnsNames\":[\"%s\"],\"duration\":\"1h\",\"issuerRef\":{\"name\":"
		 "\"mlboot-check-selfsigned\",\"kind\":\"Issuer\",\"group\":\"cert-manager.io\"}}}",
		 namespace, dns_name, dns_name);
	r = apply_json(state, json, "the Certificate", &problem);
	if (r < 0)
		goto evaluate;

	snprintf(path, sizeof(path), "/apis/cert-manager.io/v1/namespaces/%s/certificates/mlboot-check", namespace);
	if (!wait_certificate(state, path, deadline, &problem))
		goto evaluate;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/mlboot-check-tls", namespace);
	r = kube_get(state->client, path, &secret, NULL);
	if (r < 0) {
		buf_printf(&problem, "the Certificate is Ready, but reading its Secret mlboot-check-tls failed: %s",
			   check_failure_text(r));
		goto evaluate;
	}
	buf_printf(&evidence, "Certificate %s/mlboot-check from a self-signed Issuer was Ready in %.1f s; ",
		   namespace, monotonic_seconds() - started);
	issued = check_certificate_secret(secret, dns_name, &found);
	if (issued)
		buf_append_str(&evidence, buf_str(&found));
	else
		buf_printf(&problem, "%sits Secret mlboot-check-tls is wrong: %s", buf_str(&evidence), buf_str(&found));
evaluate:
	if (r == -ENOMEM)
		goto out;
	if (created)
		remove_scratch(state, namespace, &note, &removed);
	if (issued && removed) {
		r = check_add(state, group, id, title, CHECK_PASS, NULL, "%s%s", buf_str(&evidence), buf_str(&note));
	} else if (issued) {
		char remedy[256];

		snprintf(remedy, sizeof(remedy), "remove the scratch namespace by hand: kubectl delete namespace %s",
			 namespace);
		r = check_add(state, group, id, title, CHECK_WARN, remedy, "%s%s", buf_str(&evidence), buf_str(&note));
	} else {
		r = check_add(state, group, id, title, CHECK_FAIL,
			      "cert-manager did not issue a certificate: check its pods and webhook (the checks "
			      "of this component above), and kubectl get certificaterequests -A for the "
			      "request's status",
			      "%s%s", buf_str(&problem), buf_str(&note));
	}
out:
	doc_free(secret);
	buf_release(&evidence);
	buf_release(&problem);
	buf_release(&note);
	buf_release(&found);
	return r;
}

static int check_cert_manager(struct check_state *state)
{
	const struct check_component *component = NULL;
	int r;

	if (!check_platform_find(state->platform, CHECK_OBJECT_CRD, CERT_MANAGER_CRD, &component))
		return 0;
	log_info("checking cert-manager's certificates");
	r = check_certificates(state, component->name);
	if (r == 0)
		r = check_issuance(state, component->name);
	return r;
}

/* ---- Istio ------------------------------------------------------------- */

static const char *no_address_remedy(void)
{
	return "give the Service an address this machine reaches: a load balancer (on bare metal, "
	       "MetalLB or kube-vip), or spec.externalIPs; on a cluster node, --cluster-ips lets the "
	       "check use its cluster IP";
}

static int check_gateway(struct check_state *state)
{
	const char *endpoints_id = "istio.gateway-endpoints", *endpoints_title = "ingress gateway has ready endpoints";
	const char *http_id = "istio.gateway-http", *http_title = "ingress gateway answers HTTP";
	const struct check_component *component = NULL;
	const struct check_object *expected;
	struct check_http_response response;
	struct doc_node *service = NULL;
	const char *reason = NULL, *source = NULL;
	char remedy[512];
	size_t ready = 0;
	int r;

	expected = check_platform_find(state->platform, CHECK_OBJECT_SERVICE, GATEWAY_SERVICE, &component);
	if (!expected)
		return 0;
	check_http_response_init(&response);
	log_info("checking the Istio ingress gateway");
	if (state->skip_reason) {
		snprintf(state->gateway_problem, sizeof(state->gateway_problem), "%s", state->skip_reason);
		r = check_add_skipped(state, component->name, endpoints_id, endpoints_title);
		if (r == 0)
			r = check_add_skipped(state, component->name, http_id, http_title);
		goto out;
	}
	r = check_get_object(state, CHECK_OBJECT_SERVICE, expected->namespace, expected->name, &service);
	if (r < 0 || !service) {
		const char *problem = r < 0 ? check_failure_text(r) : "not found";

		if (r == -ENOMEM)
			goto out;
		snprintf(state->gateway_problem, sizeof(state->gateway_problem), "Service %s/%s: %s",
			 expected->namespace, expected->name, problem);
		snprintf(remedy, sizeof(remedy), "apply the component again: mlboot install --force --only %s",
			 component->name);
		r = check_add(state, component->name, endpoints_id, endpoints_title, CHECK_FAIL, remedy,
			      "Service %s/%s: %s", expected->namespace, expected->name, problem);
		if (r == 0)
			r = check_add(state, component->name, http_id, http_title, CHECK_FAIL, NULL,
				      "Service %s/%s: %s", expected->namespace, expected->name, problem);
		goto out;
	}

	r = check_service_ready_endpoints(state, expected->namespace, expected->name, &ready, &source);
	if (r == -ENOMEM)
		goto out;
	if (r < 0)
		r = check_add(state, component->name, endpoints_id, endpoints_title, CHECK_FAIL, NULL,
			      "reading the endpoints of Service %s/%s failed: %s", expected->namespace,
			      expected->name, check_failure_text(r));
	else if (ready == 0) {
		snprintf(remedy, sizeof(remedy), "the gateway's pods are not ready: kubectl -n %s get pods -l "
			 "istio=ingressgateway, and the deployment check of %s above", expected->namespace,
			 component->name);
		r = check_add(state, component->name, endpoints_id, endpoints_title, CHECK_FAIL, remedy,
			      "Service %s/%s has no ready endpoint in its %s", expected->namespace, expected->name,
			      source);
	}
	else
		r = check_add(state, component->name, endpoints_id, endpoints_title, CHECK_PASS, NULL,
			      "Service %s/%s has %zu ready endpoint%s in its %s", expected->namespace,
			      expected->name, ready, ready == 1 ? "" : "s", source);
	if (r < 0)
		goto out;

	r = check_service_address(service, "http2", 80, state->options->cluster_ips, &state->gateway, &reason);
	if (r < 0) {
		snprintf(state->gateway_problem, sizeof(state->gateway_problem), "Service %s/%s: %s",
			 expected->namespace, expected->name, reason);
		r = check_add(state, component->name, http_id, http_title, CHECK_FAIL,
			      no_address_remedy(), "%s", state->gateway_problem);
		goto out;
	}
	state->have_gateway = true;
	r = check_http_request(&state->gateway, NULL, "/", NULL, HTTP_TIMEOUT, &response);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		r = check_add(state, component->name, http_id, http_title, CHECK_FAIL,
			      "nothing answers on the gateway's address: check the load balancer (or the node "
			      "that holds the external IP) and the istio-ingressgateway pods",
			      "GET http://%s:%u/ (%s address of %s/%s): no response: %s", state->gateway.host,
			      state->gateway.port, state->gateway.source, expected->namespace, expected->name,
			      response.error);
	} else if (!check_server_is_envoy(response.server)) {
		r = check_add(state, component->name, http_id, http_title, CHECK_FAIL,
			      "the address does not reach the Istio ingress gateway: check which host holds it "
			      "and that its traffic goes to the istio-ingressgateway pods",
			      "GET http://%s:%u/ (%s address) returned HTTP %ld from server '%s', not Envoy",
			      state->gateway.host, state->gateway.port, state->gateway.source, response.status,
			      response.server[0] ? response.server : "not named");
	} else {
		r = check_add(state, component->name, http_id, http_title, CHECK_PASS, NULL,
			      "GET http://%s:%u/ (%s address of %s/%s) returned HTTP %ld from %s in %.0f ms",
			      state->gateway.host, state->gateway.port, state->gateway.source, expected->namespace,
			      expected->name, response.status, response.server, response.seconds * 1000.0);
	}
out:
	doc_free(service);
	check_http_response_release(&response);
	return r;
}

/* ---- KServe ------------------------------------------------------------ */

/* Copies the host of an http(s) URL, without port, into out; false when it has none. */
static bool url_host(const char *url, char *out, size_t size)
{
	const char *start, *end;

	if (!url)
		return false;
	start = strstr(url, "://");
	if (!start)
		return false;
	start += 3;
	end = start + strcspn(start, ":/?#");
	if (end == start || (size_t)(end - start) >= size)
		return false;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	return strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == strlen(out);
}

static int check_prediction(struct check_state *state, const char *group, const char *namespace, const char *name,
			    const char *host)
{
	const char *id = "kserve.prediction", *title = "model answers a prediction through the ingress";
	struct check_http_response response;
	struct preflight_finding finding;
	char request[1024], path[300], model[300];
	int r;

	snprintf(model, sizeof(model), "%s/%s", namespace, name);
	if (!state->have_gateway) {
		if (!check_platform_find(state->platform, CHECK_OBJECT_SERVICE, GATEWAY_SERVICE, NULL))
			return check_add(state, group, id, title, CHECK_SKIP, NULL,
					 "the platform has no Istio ingress gateway (Service " GATEWAY_SERVICE ") to "
					 "send the request through");
		return check_add(state, group, id, title, CHECK_FAIL, no_address_remedy(),
				 "no address to send the prediction to: %s", state->gateway_problem);
	}
	check_http_response_init(&response);
	preflight_finding_init(&finding);
	snprintf(path, sizeof(path), "/v1/models/%s:predict", name);
	snprintf(request, sizeof(request), "POST http://%s:%u%s (Host %s)", state->gateway.host, state->gateway.port,
		 path, host);
	r = check_http_request(&state->gateway, host, path, PREDICTION_BODY, HTTP_TIMEOUT, &response);
	if (r == -ENOMEM)
		goto out;
	r = check_evaluate_prediction(&response, PREDICTION_EXPECTED, request, model, &finding);
	if (r == 0)
		r = check_add_finding(state, group, id, title, &finding);
out:
	preflight_finding_release(&finding);
	check_http_response_release(&response);
	return r;
}

static int check_kserve(struct check_state *state)
{
	const char *id = "kserve.inferenceservice", *title = "sample InferenceService Ready with a URL";
	const struct check_component *component = NULL, *model_component = NULL;
	const struct check_object *model;
	const char *namespace = state->options->model_namespace, *name = state->options->model_name;
	const char *status, *reason, *message, *url;
	struct doc_node *service = NULL;
	char host[256], remedy[512];
	int r;

	if (!check_platform_find(state->platform, CHECK_OBJECT_CRD, KSERVE_CRD, &component))
		return 0;
	for (size_t i = 0; i < state->platform->component_count && !model_component; i++) {
		const struct check_component *c = &state->platform->components[i];

		for (size_t j = 0; j < c->object_count; j++) {
			model = &c->objects[j];
			if (model->kind == CHECK_OBJECT_INFERENCE_SERVICE) {
				namespace = model->namespace;
				name = model->name;
				model_component = c;
				break;
			}
		}
	}
	log_info("checking the sample model %s/%s", namespace, name);
	if (state->skip_reason) {
		r = check_add_skipped(state, component->name, id, title);
		if (r == 0)
			r = check_add_skipped(state, component->name, "kserve.prediction",
					      "model answers a prediction through the ingress");
		return r;
	}
	r = check_get_object(state, CHECK_OBJECT_INFERENCE_SERVICE, namespace, name, &service);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || !service) {
		snprintf(remedy, sizeof(remedy), "mlboot install deploys the sample model last: run it again%s%s",
			 model_component ? " with --force --only " : " with --force",
			 model_component ? model_component->name : "");
		r = check_add(state, component->name, id, title, CHECK_FAIL, remedy, "InferenceService %s/%s: %s",
			      namespace, name, r < 0 ? check_failure_text(r) : "not found");
		if (r == 0)
			r = check_add(state, component->name, "kserve.prediction",
				      "model answers a prediction through the ingress", CHECK_SKIP, NULL,
				      "skipped: the InferenceService %s/%s does not exist", namespace, name);
		goto out;
	}
	status = check_condition_status(service, "Ready", &reason, &message);
	url = doc_find_string(service, "status", "url", NULL);
	if (!status || strcmp(status, "True") != 0 || !url_host(url, host, sizeof(host))) {
		snprintf(remedy, sizeof(remedy), "kubectl -n %s describe inferenceservice %s shows which condition "
			 "is not met; kubectl -n %s get pods -l serving.kserve.io/inferenceservice=%s shows its "
			 "predictor", namespace, name, namespace, name);
		r = check_add(state, component->name, id, title, CHECK_FAIL, remedy,
			      "InferenceService %s/%s: Ready=%s%s%s%s, URL %s", namespace, name,
			      status ? status : "not reported", reason || message ? " (" : "",
			      message ? message : reason ? reason : "", reason || message ? ")" : "",
			      url ? url : "not set");
		if (r == 0)
			r = check_add(state, component->name, "kserve.prediction",
				      "model answers a prediction through the ingress", CHECK_SKIP, NULL,
				      "skipped: the InferenceService %s/%s is not Ready with a URL", namespace, name);
		goto out;
	}
	r = check_add(state, component->name, id, title, CHECK_PASS, NULL, "InferenceService %s/%s Ready, URL %s",
		      namespace, name, url);
	if (r == 0)
		r = check_prediction(state, component->name, namespace, name, host);
out:
	doc_free(service);
	return r;
}

/* ---- Argo CD ----------------------------------------------------------- */

/*
 * The Secrets whose tls.crt argocd-server serves, in the order Argo CD
 * picks them (util/settings/settings.go in argoproj/argo-cd): the one an
 * operator provides, else the self-signed certificate that argocd-server
 * generated at its first start and saved.
 */
static const char *const ARGOCD_TLS_SECRETS[] = { "argocd-server-tls", "argocd-secret" };

/* The Service of a health endpoint and its plain HTTP address, for one check. */
struct health_probe {
	const struct check_component *component;
	const struct check_object *expected;
	const struct doc_node *service;
	const char *id;
	const char *title;
	struct check_address plain;          /* the Service's address and plain HTTP port */
};

/*
 * Whether the Service has a port named name or numbered number, which
 * check_service_address() would pick instead of its fallback, the first port.
 */
static bool service_has_port(const struct doc_node *service, const char *name, long long number)
{
	const struct doc_node *ports = doc_find(service, "spec", "ports", NULL);

	for (size_t i = 0; ports && ports->type == DOC_SEQ && i < ports->count; i++) {
		const struct doc_node *port = doc_get(ports->items[i], "port");

		if (doc_string_equals(doc_get(ports->items[i], "name"), name) ||
		    (port && port->type == DOC_INT && port->integer == number))
			return true;
	}
	return false;
}

/*
 * Overwrites every value of a Secret's data before the document is freed,
 * since the API returns tls.key with tls.crt. NOTE: the API client frees
 * its copy of the response body without overwriting it.
 */
static void wipe_secret(struct doc_node *secret)
{
	struct doc_node *data = secret ? doc_get_mutable(secret, "data") : NULL;

	for (size_t i = 0; data && data->type == DOC_MAP && i < data->count; i++)
		if (data->items[i]->text)
			secure_wipe(data->items[i]->text, data->items[i]->text_len);
}

/*
 * Decodes the base64 value tls.crt of a Secret into certificate and checks
 * that it contains a PEM certificate. tls.key is never decoded. Returns 0,
 * -ENOENT with *problem set when there is no usable certificate, or -ENOMEM.
 */
static int secret_certificate(const struct doc_node *secret, struct buf *certificate, const char **problem)
{
	const char *text = doc_find_string(secret, "data", "tls.crt", NULL);
	EVP_ENCODE_CTX *decoder;
	unsigned char *decoded;
	int len = 0, tail = 0, ok;
	size_t text_len;
	X509 *parsed = NULL;
	BIO *bio;

	*problem = NULL;
	if (!text || !text[0]) {
		*problem = "it has no tls.crt";
		return -ENOENT;
	}
	text_len = strlen(text);
	if (text_len > CHECK_HTTP_BODY_MAX) {
		*problem = "its tls.crt is larger than 1 MiB";
		return -ENOENT;
	}
	decoded = malloc(text_len / 4 * 3 + 4);
	decoder = EVP_ENCODE_CTX_new();
	if (!decoded || !decoder) {
		free(decoded);
		EVP_ENCODE_CTX_free(decoder);
		return -ENOMEM;
	}
	EVP_DecodeInit(decoder);
	ok = EVP_DecodeUpdate(decoder, decoded, &len, (const unsigned char *)text, (int)text_len) >= 0 &&
	     EVP_DecodeFinal(decoder, decoded + len, &tail) == 1;
	EVP_ENCODE_CTX_free(decoder);
	len += tail;
	if (ok) {
		bio = BIO_new_mem_buf(decoded, len);
		parsed = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		ERR_clear_error();
	}
	if (!parsed) {
		*problem = "its tls.crt contains no PEM certificate";
		free(decoded);
		return -ENOENT;
	}
	X509_free(parsed);
	buf_reset(certificate);
	if (buf_append(certificate, decoded, (size_t)len) < 0) {
		free(decoded);
		return -ENOMEM;
	}
	free(decoded);
	return 0;
}

/*
 * Reads the certificate argocd-server serves from the first of
 * ARGOCD_TLS_SECRETS that exists in its namespace, into certificate, with
 * the Secret's name in *secret_name. Returns 0, or MLB_EFAILED with the
 * problem in problem, or -ENOMEM.
 */
static int read_server_certificate(struct check_state *state, const char *namespace, struct buf *certificate,
				   const char **secret_name, struct buf *problem)
{
	const char *missing = NULL;
	struct doc_node *secret = NULL;
	char path[400];
	int r = -ENOENT;

	for (size_t i = 0; r == -ENOENT && i < sizeof(ARGOCD_TLS_SECRETS) / sizeof(ARGOCD_TLS_SECRETS[0]); i++) {
		*secret_name = ARGOCD_TLS_SECRETS[i];
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", namespace, *secret_name);
		r = kube_get(state->client, path, &secret, NULL);
	}
	if (r == -ENOENT) {
		buf_printf(problem, "neither Secret %s/%s nor %s/%s exists to verify its certificate with",
			   namespace, ARGOCD_TLS_SECRETS[0], namespace, ARGOCD_TLS_SECRETS[1]);
		return MLB_EFAILED;
	}
	if (r < 0) {
		if (r != -ENOMEM)
			buf_printf(problem, "reading Secret %s/%s, to verify its certificate with, failed: %s",
				   namespace, *secret_name, check_failure_text(r));
		return r == -ENOMEM ? r : MLB_EFAILED;
	}
	r = secret_certificate(secret, certificate, &missing);
	wipe_secret(secret);
	doc_free(secret);
	if (r == -ENOENT) {
		buf_printf(problem, "Secret %s/%s, which argocd-server takes its certificate from, is unusable: %s",
			   namespace, *secret_name, missing);
		return MLB_EFAILED;
	}
	return r;
}

/*
 * Follows argocd-server's redirect of plain HTTP to HTTPS: to the Service's
 * https port at the same address, with the name argocd-server.NAMESPACE.svc
 * that Argo CD's certificates carry, trusting only the certificate of the
 * Secret that argocd-server serves. Adds the check's result.
 */
static int follow_https_redirect(struct check_state *state, const struct health_probe *probe,
				 const struct check_http_response *plain_response)
{
	const char *namespace = probe->expected->namespace, *name = probe->expected->name;
	const char *group = probe->component->name, *reason = NULL, *secret_name = NULL;
	struct buf certificate = BUF_INIT(CHECK_HTTP_BODY_MAX), problem = BUF_INIT(REPORT_TEXT_MAX);
	struct check_http_response response;
	struct check_address address;
	struct check_tls tls;
	char path[512], server_name[300], redirect[1600], remedy[2048];
	size_t quoted;
	int r;

	check_http_response_init(&response);
	snprintf(redirect, sizeof(redirect), "GET http://%s:%u/healthz (%s address of %s/%s) returned HTTP %ld %s%s",
		 probe->plain.host, probe->plain.port, probe->plain.source, namespace, name, plain_response->status,
		 plain_response->location[0] ? "with Location " : "without a Location header",
		 plain_response->location);
	if (!check_redirect_to_https(plain_response->location, probe->plain.host, path, sizeof(path))) {
		r = check_add(state, group, probe->id, probe->title, CHECK_FAIL,
			      "argocd-server redirects plain HTTP only to https on the address the request was "
			      "sent to, so this Location comes from another server: check which host holds the "
			      "Service's address and where its traffic goes",
			      "%s, which is not https on the same address, the only redirect the check follows",
			      redirect);
		goto out;
	}
	if (!service_has_port(probe->service, "https", 443)) {
		snprintf(remedy, sizeof(remedy), "give Service %s/%s the port Argo CD's manifests define: name https, "
			 "port 443, targetPort 8080", namespace, name);
		r = check_add(state, group, probe->id, probe->title, CHECK_FAIL, remedy,
			      "%s, but Service %s/%s has no port named https or numbered 443", redirect, namespace,
			      name);
		goto out;
	}
	r = check_service_address(probe->service, "https", 443, state->options->cluster_ips, &address, &reason);
	if (r < 0) {
		r = check_add(state, group, probe->id, probe->title, CHECK_FAIL, no_address_remedy(),
			      "%s, but Service %s/%s has no https address: %s", redirect, namespace, name, reason);
		goto out;
	}

	r = read_server_certificate(state, namespace, &certificate, &secret_name, &problem);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		snprintf(remedy, sizeof(remedy), "argocd-server serves the certificate of Secret %s/%s when it "
			 "exists, else the one it saved in %s/%s; mlboot check needs to read that Secret to "
			 "trust the certificate (kubectl -n %s get secret %s %s)", namespace,
			 ARGOCD_TLS_SECRETS[0], namespace, ARGOCD_TLS_SECRETS[1], namespace,
			 ARGOCD_TLS_SECRETS[0], ARGOCD_TLS_SECRETS[1]);
		r = check_add(state, group, probe->id, probe->title, CHECK_FAIL, remedy, "%s, but %s", redirect,
			      buf_str(&problem));
		goto out;
	}

	snprintf(server_name, sizeof(server_name), "%s.%s.svc", name, namespace);
	tls.server_name = server_name;
	tls.ca_pem = certificate.data;
	tls.ca_pem_len = certificate.len;
	log_debug("following the redirect of %s/%s to https://%s:%u%s, trusting tls.crt of Secret %s/%s", namespace,
		  name, server_name, address.port, path, namespace, secret_name);
	r = check_https_request(&address, &tls, path, HTTP_TIMEOUT, &response);
	if (r == -ENOMEM || r == -EINVAL)
		goto out;
	if (r < 0 && response.certificate_rejected) {
		snprintf(remedy, sizeof(remedy), "the certificate argocd-server serves must be the tls.crt of Secret "
			 "%s/%s and name %s: compare them (openssl s_client -connect %s:%u -servername %s), and "
			 "restart argocd-server when the Secret was replaced after it started (kubectl -n %s "
			 "rollout restart deployment %s)", namespace, secret_name, server_name, address.host,
			 address.port, server_name, namespace, name);
		r = check_add(state, group, probe->id, probe->title, CHECK_FAIL, remedy,
			      "%s; GET https://%s:%u%s at %s:%u: the server's certificate did not match the one "
			      "in Secret %s/%s (tls.crt), or is not valid for %s: %s", redirect, server_name,
			      address.port, path, address.host, address.port, namespace, secret_name, server_name,
			      response.error);
		goto out;
	}
	if (r < 0 || response.status != 200) {
		snprintf(remedy, sizeof(remedy), "kubectl -n %s get pods -l app.kubernetes.io/name=%s, and the logs "
			 "of those pods, show why the health endpoint does not answer", namespace, name);
		if (r < 0)
			r = check_add(state, group, probe->id, probe->title, CHECK_FAIL, remedy,
				      "%s; GET https://%s:%u%s at %s:%u: no response: %s", redirect, server_name,
				      address.port, path, address.host, address.port, response.error);
		else
			r = check_add(state, group, probe->id, probe->title, CHECK_FAIL, remedy,
				      "%s; GET https://%s:%u%s at %s:%u returned HTTP %ld%s%s", redirect, server_name,
				      address.port, path, address.host, address.port, response.status,
				      response.location[0] ? " with Location " : "", response.location);
		goto out;
	}
	quoted = strcspn(buf_str(&response.body), "\r\n");
	if (quoted > 40)
		quoted = 40;
	r = check_add(state, group, probe->id, probe->title, CHECK_PASS, NULL,
		      "%s; GET https://%s:%u%s at %s:%u (%s address) returned HTTP 200 '%.*s' in %.0f ms, its "
		      "certificate verified against tls.crt of Secret %s/%s", redirect, server_name, address.port,
		      path, address.host, address.port, address.source, (int)quoted, buf_str(&response.body),
		      response.seconds * 1000.0, namespace, secret_name);
out:
	buf_release(&certificate);
	buf_release(&problem);
	check_http_response_release(&response);
	return r;
}

/*
 * Checks a health endpoint: GET /healthz on the Service's port, HTTP 200.
 * With follows_https, a redirect to https on the same address is followed
 * as follow_https_redirect() describes; any other redirect fails.
 */
static int check_health_endpoint(struct check_state *state, const char *service_name, unsigned port,
				 bool follows_https, const char *id, const char *title)
{
	struct check_http_response response;
	struct doc_node *service = NULL;
	struct health_probe probe = { .id = id, .title = title };
	const char *reason = NULL, *cluster_ip, *namespace, *name;
	size_t quoted;
	int r;

	/* Argo CD's manifests ship a Service of the same name as each server's Deployment. */
	probe.expected = check_platform_find(state->platform, CHECK_OBJECT_SERVICE, service_name, &probe.component);
	if (!probe.expected)
		probe.expected = check_platform_find(state->platform, CHECK_OBJECT_DEPLOYMENT, service_name,
						     &probe.component);
	if (!probe.expected)
		return 0;
	if (state->skip_reason)
		return check_add_skipped(state, probe.component->name, id, title);
	namespace = probe.expected->namespace;
	name = probe.expected->name;
	check_http_response_init(&response);
	r = check_get_object(state, CHECK_OBJECT_SERVICE, namespace, name, &service);
	if (r < 0 || !service) {
		if (r != -ENOMEM) {
			char remedy[512];

			snprintf(remedy, sizeof(remedy), "the health endpoint is reached through the Service: apply "
				 "the component again (mlboot install --force --only %s), or create the Service as Argo CD's "
				 "manifests define it", probe.component->name);
			r = check_add(state, probe.component->name, id, title, CHECK_FAIL, remedy, "Service %s/%s: %s",
				      namespace, name, r < 0 ? check_failure_text(r) : "not found");
		}
		goto out;
	}
	probe.service = service;
	r = check_service_address(service, NULL, port, state->options->cluster_ips, &probe.plain, &reason);
	if (r < 0) {
		cluster_ip = doc_find_string(service, "spec", "clusterIP", NULL);
		/* Not a failure of Argo CD: this machine has no way to the Service. */
		r = check_add(state, probe.component->name, id, title, CHECK_SKIP, NULL,
			      "skipped: Service %s/%s has no address this machine can reach: %s%s%s; run the "
			      "check on a cluster node with --cluster-ips, or give the Service an external address",
			      namespace, name, reason, cluster_ip ? " " : "", cluster_ip ? cluster_ip : "");
		goto out;
	}
	r = check_http_request(&probe.plain, NULL, "/healthz", NULL, HTTP_TIMEOUT, &response);
	if (r == -ENOMEM)
		goto out;
	if (r == 0 && follows_https && response.status >= 300 && response.status <= 399) {
		r = follow_https_redirect(state, &probe, &response);
		goto out;
	}
	if (r < 0 || response.status != 200) {
		char remedy[512];

		snprintf(remedy, sizeof(remedy), "kubectl -n %s get pods -l app.kubernetes.io/name=%s, and the logs "
			 "of those pods, show why the health endpoint does not answer", namespace, name);
		if (r < 0)
			r = check_add(state, probe.component->name, id, title, CHECK_FAIL, remedy,
				      "GET http://%s:%u/healthz (%s address of %s/%s): no response: %s", probe.plain.host,
				      probe.plain.port, probe.plain.source, namespace, name, response.error);
		else
			r = check_add(state, probe.component->name, id, title, CHECK_FAIL, remedy,
				      "GET http://%s:%u/healthz (%s address of %s/%s) returned HTTP %ld%s%s",
				      probe.plain.host, probe.plain.port, probe.plain.source, namespace, name,
				      response.status, response.location[0] ? " with Location " : "", response.location);
		goto out;
	}
	quoted = strcspn(buf_str(&response.body), "\r\n");
	if (quoted > 40)
		quoted = 40;
	r = check_add(state, probe.component->name, id, title, CHECK_PASS, NULL,
		      "GET http://%s:%u/healthz (%s address of %s/%s) returned HTTP 200 '%.*s' in %.0f ms",
		      probe.plain.host, probe.plain.port, probe.plain.source, namespace, name, (int)quoted,
		      buf_str(&response.body), response.seconds * 1000.0);
out:
	doc_free(service);
	check_http_response_release(&response);
	return r;
}

static int check_argocd(struct check_state *state)
{
	int r;

	/*
	 * The health endpoints and ports of Argo CD's own manifests (manifests/base
	 * in argoproj/argo-cd). argocd-server without server.insecure responds to
	 * plain HTTP on port 80 with a 307 redirect to https. The repo server's
	 * metrics port is plain HTTP only.
	 */
	r = check_health_endpoint(state, ARGOCD_SERVER, 80, true, "argocd.server-health", "Argo CD server healthy");
	if (r == 0)
		r = check_health_endpoint(state, ARGOCD_REPO_SERVER, 8084, false, "argocd.repo-server-health",
					  "Argo CD repo server healthy");
	return r;
}

int check_addons(struct check_state *state)
{
	int r;

	r = check_cert_manager(state);
	if (r == 0)
		r = check_gateway(state);
	if (r == 0)
		r = check_kserve(state);
	if (r == 0)
		r = check_argocd(state);
	return r;
}
