#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "common.h"

#define CTR_FIXTURE "tests/fixtures/check/ctr-images-ls.txt"
#define DIGEST_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct doc_node *parse_json(const char *json)
{
	struct doc_node *root = NULL;
	struct doc_error error;

	assert_int_equal(doc_parse(json, strlen(json), NULL, &root, &error), 0);
	return root;
}

/* ---- Workloads, CRDs, pods ------------------------------------------------ */

static enum check_workload_state workload_state(enum check_object_kind kind, const char *json, char *problem,
						size_t size)
{
	struct check_object expected = { kind, (char *)"ns", (char *)"web", 2 };
	struct buf problems = BUF_INIT(4096);
	struct doc_node *object = json ? parse_json(json) : NULL;
	enum check_workload_state state = check_workload_state(kind, &expected, object, &problems);

	snprintf(problem, size, "%s", buf_str(&problems));
	buf_release(&problems);
	doc_free(object);
	return state;
}

static void test_deployment_available_is_ready(void **state)
{
	char problem[512];

	(void)state;
	assert_int_equal(workload_state(CHECK_OBJECT_DEPLOYMENT,
					"{\"spec\":{\"replicas\":2},\"status\":{\"availableReplicas\":2,"
					"\"conditions\":[{\"type\":\"Available\",\"status\":\"True\"}]}}",
					problem, sizeof(problem)),
			 CHECK_WORKLOAD_READY);
	assert_string_equal(problem, "");
}

static void test_deployment_scaled_to_zero_fails(void **state)
{
	char problem[512];

	(void)state;
	/* Kubernetes reports a Deployment of 0 replicas as Available; the platform still lacks its pods. */
	assert_int_equal(workload_state(CHECK_OBJECT_DEPLOYMENT,
					"{\"spec\":{\"replicas\":0},\"status\":{\"conditions\":"
					"[{\"type\":\"Available\",\"status\":\"True\"}]}}",
					problem, sizeof(problem)),
			 CHECK_WORKLOAD_SCALED_TO_ZERO);
	assert_string_equal(problem, "ns/web: scaled to 0 replicas (the bundle ships 2)");
}

static void test_deployment_short_of_replicas(void **state)
{
	char problem[512];

	(void)state;
	assert_int_equal(workload_state(CHECK_OBJECT_DEPLOYMENT,
					"{\"spec\":{\"replicas\":3},\"status\":{\"availableReplicas\":1,\"conditions\":"
					"[{\"type\":\"Available\",\"status\":\"False\",\"message\":"
					"\"Deployment does not have minimum availability.\"}]}}",
					problem, sizeof(problem)),
			 CHECK_WORKLOAD_NOT_READY);
	assert_string_equal(problem,
			    "ns/web: 1 of 3 replicas available (Deployment does not have minimum availability.)");
}

static void test_deployment_available_condition_false(void **state)
{
	char problem[512];

	(void)state;
	assert_int_equal(workload_state(CHECK_OBJECT_DEPLOYMENT,
					"{\"spec\":{\"replicas\":1},\"status\":{\"availableReplicas\":1}}", problem,
					sizeof(problem)),
			 CHECK_WORKLOAD_NOT_READY);
}

static void test_workload_missing(void **state)
{
	char problem[512];

	(void)state;
	assert_int_equal(workload_state(CHECK_OBJECT_STATEFULSET, NULL, problem, sizeof(problem)),
			 CHECK_WORKLOAD_MISSING);
	assert_string_equal(problem, "ns/web: not found");
}

static void test_statefulset_ready_replicas(void **state)
{
	char problem[512];

	(void)state;
	assert_int_equal(workload_state(CHECK_OBJECT_STATEFULSET,
					"{\"spec\":{\"replicas\":2},\"status\":{\"readyReplicas\":2}}", problem,
					sizeof(problem)),
			 CHECK_WORKLOAD_READY);
	assert_int_equal(workload_state(CHECK_OBJECT_STATEFULSET,
					"{\"spec\":{\"replicas\":2},\"status\":{\"readyReplicas\":1}}", problem,
					sizeof(problem)),
			 CHECK_WORKLOAD_NOT_READY);
	assert_string_equal(problem, "ns/web: 1 of 2 replicas ready");
}

static void test_daemonset_on_no_node_fails(void **state)
{
	char problem[512];

	(void)state;
	assert_int_equal(workload_state(CHECK_OBJECT_DAEMONSET,
					"{\"status\":{\"desiredNumberScheduled\":0,\"numberReady\":0}}", problem,
					sizeof(problem)),
			 CHECK_WORKLOAD_NOT_READY);
	assert_string_equal(problem, "ns/web: scheduled on no node");
	assert_int_equal(workload_state(CHECK_OBJECT_DAEMONSET,
					"{\"status\":{\"desiredNumberScheduled\":3,\"numberReady\":3}}", problem,
					sizeof(problem)),
			 CHECK_WORKLOAD_READY);
}

static void test_crd_conditions(void **state)
{
	struct buf problems = BUF_INIT(4096);
	struct doc_node *ready = parse_json("{\"status\":{\"conditions\":[{\"type\":\"NamesAccepted\",\"status\":\"True\"},"
					    "{\"type\":\"Established\",\"status\":\"True\"}]}}");
	struct doc_node *conflict = parse_json("{\"status\":{\"conditions\":[{\"type\":\"NamesAccepted\",\"status\":"
					       "\"False\",\"message\":\"\\\"isvc\\\" is already in use\"},"
					       "{\"type\":\"Established\",\"status\":\"True\"}]}}");

	(void)state;
	assert_true(check_crd_ready("a.example.com", ready, &problems));
	assert_string_equal(buf_str(&problems), "");
	assert_false(check_crd_ready("b.example.com", conflict, &problems));
	assert_string_equal(buf_str(&problems), "b.example.com: NamesAccepted is False (\"isvc\" is already in use)");
	assert_false(check_crd_ready("c.example.com", NULL, &problems));
	assert_non_null(strstr(buf_str(&problems), "; c.example.com: not found"));
	doc_free(ready);
	doc_free(conflict);
	buf_release(&problems);
}

static void test_pod_state_sums_restarts(void **state)
{
	struct doc_node *pod = parse_json(
		"{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}],"
		"\"containerStatuses\":[{\"restartCount\":4,\"state\":{\"running\":{}}},"
		"{\"restartCount\":3,\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}}]}}");
	struct check_pod_state pod_state;

	(void)state;
	check_pod_state(pod, &pod_state);
	assert_true(pod_state.running);
	assert_false(pod_state.ready);
	assert_int_equal(pod_state.restarts, 7);
	assert_string_equal(pod_state.waiting_reason, "CrashLoopBackOff");
	doc_free(pod);
}

/* ---- Certificates made here ----------------------------------------------- */

/* A self-signed P-256 certificate for dns_name and its key, both PEM, base64-encoded as a Secret holds them. */
struct test_certificate {
	char certificate_base64[4096];
	char key_base64[4096];
};

static void base64_of_bio(BIO *bio, char *out, size_t size)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);

	assert_true(len > 0 && (size_t)len * 4 / 3 + 4 < size);
	assert_true(EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)len) > 0);
}

static void make_certificate(const char *dns_name, struct test_certificate *out)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *certificate = X509_new();
	X509_NAME *name;
	X509_EXTENSION *extension;
	char san[300];
	BIO *certificate_pem = BIO_new(BIO_s_mem()), *key_pem = BIO_new(BIO_s_mem());

	assert_non_null(key);
	assert_non_null(certificate);
	X509_set_version(certificate, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
	X509_gmtime_adj(X509_getm_notBefore(certificate), -60);
	X509_gmtime_adj(X509_getm_notAfter(certificate), 3600);
	X509_set_pubkey(certificate, key);
	name = X509_get_subject_name(certificate);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)dns_name, -1, -1, 0);
	X509_set_issuer_name(certificate, name);
	snprintf(san, sizeof(san), "DNS:%s", dns_name);
	extension = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	assert_non_null(extension);
	X509_add_ext(certificate, extension, -1);
	X509_EXTENSION_free(extension);
	assert_true(X509_sign(certificate, key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509(certificate_pem, certificate), 1);
	assert_int_equal(PEM_write_bio_PrivateKey(key_pem, key, NULL, NULL, 0, NULL, NULL), 1);
	base64_of_bio(certificate_pem, out->certificate_base64, sizeof(out->certificate_base64));
	base64_of_bio(key_pem, out->key_base64, sizeof(out->key_base64));
	BIO_free(certificate_pem);
	BIO_free(key_pem);
	X509_free(certificate);
	EVP_PKEY_free(key);
}

static struct doc_node *webhook_with_bundle(const char *bundle)
{
	char json[8192];

	snprintf(json, sizeof(json), "{\"name\":\"validate.example.com\",\"clientConfig\":{\"caBundle\":\"%s\","
		 "\"service\":{\"namespace\":\"ns\",\"name\":\"hook\"}}}", bundle);
	return parse_json(json);
}

static void test_webhook_ca_bundle(void **state)
{
	struct test_certificate certificate;
	struct buf problems = BUF_INIT(4096);
	struct doc_node *valid, *empty, *garbage, *missing;

	(void)state;
	make_certificate("hook.ns.svc", &certificate);
	valid = webhook_with_bundle(certificate.certificate_base64);
	empty = webhook_with_bundle("");
	garbage = webhook_with_bundle("bm90IGEgY2VydGlmaWNhdGU=");
	missing = parse_json("{\"name\":\"m.example.com\",\"clientConfig\":{\"url\":\"https://x\"}}");
	assert_true(check_webhook_ca_bundle("config", valid, &problems));
	assert_string_equal(buf_str(&problems), "");
	assert_false(check_webhook_ca_bundle("config", empty, &problems));
	assert_string_equal(buf_str(&problems), "config/validate.example.com: caBundle is empty");
	buf_reset(&problems);
	assert_false(check_webhook_ca_bundle("config", garbage, &problems));
	assert_string_equal(buf_str(&problems), "config/validate.example.com: caBundle holds no PEM certificate");
	buf_reset(&problems);
	assert_false(check_webhook_ca_bundle("config", missing, &problems));
	assert_string_equal(buf_str(&problems), "config/m.example.com: caBundle is empty");
	doc_free(valid);
	doc_free(empty);
	doc_free(garbage);
	doc_free(missing);
	buf_release(&problems);
}

static struct doc_node *secret_of(const char *certificate, const char *key)
{
	char json[16384];

	snprintf(json, sizeof(json), "{\"data\":{\"tls.crt\":\"%s\",\"tls.key\":\"%s\"}}", certificate, key);
	return parse_json(json);
}

static void test_certificate_secret(void **state)
{
	struct test_certificate first, second;
	struct buf found = BUF_INIT(4096);
	struct doc_node *secret;

	(void)state;
	make_certificate("x.scratch.svc", &first);
	make_certificate("x.scratch.svc", &second);

	secret = secret_of(first.certificate_base64, first.key_base64);
	assert_true(check_certificate_secret(secret, "x.scratch.svc", &found));
	assert_non_null(strstr(buf_str(&found), "tls.crt is valid for x.scratch.svc until "));
	buf_reset(&found);
	assert_false(check_certificate_secret(secret, "y.scratch.svc", &found));
	assert_string_equal(buf_str(&found), "the certificate in tls.crt is not valid for y.scratch.svc");
	doc_free(secret);

	buf_reset(&found);
	secret = secret_of(first.certificate_base64, second.key_base64);
	assert_false(check_certificate_secret(secret, "x.scratch.svc", &found));
	assert_string_equal(buf_str(&found), "tls.key is not the private key of tls.crt");
	doc_free(secret);

	buf_reset(&found);
	secret = parse_json("{\"data\":{}}");
	assert_false(check_certificate_secret(secret, "x.scratch.svc", &found));
	assert_string_equal(buf_str(&found), "tls.crt holds no PEM certificate");
	doc_free(secret);
	buf_release(&found);
}

/* ---- Endpoints and addresses ------------------------------------------------- */

static void test_endpoint_slice_counts_ready(void **state)
{
	struct doc_node *slice = parse_json(
		"{\"endpoints\":[{\"addresses\":[\"10.244.0.2\"],\"conditions\":{\"ready\":true}},"
		"{\"addresses\":[\"10.244.0.3\"],\"conditions\":{\"ready\":false}},"
		"{\"addresses\":[\"10.244.0.4\"]},{\"addresses\":[],\"conditions\":{\"ready\":true}}]}");
	struct doc_node *endpoints = parse_json(
		"{\"subsets\":[{\"addresses\":[{\"ip\":\"10.244.0.2\"},{\"ip\":\"10.244.0.5\"}],"
		"\"notReadyAddresses\":[{\"ip\":\"10.244.0.3\"}]}]}");

	(void)state;
	/* A missing ready condition counts as ready, as the EndpointSlice API says. */
	assert_int_equal(check_endpoint_slice_ready_count(slice), 2);
	assert_int_equal(check_endpoints_ready_count(endpoints), 2);
	doc_free(slice);
	doc_free(endpoints);
}

static int address_of(const char *json, const char *port_name, unsigned port, bool cluster_ips,
		      struct check_address *address, const char **reason)
{
	struct doc_node *service = parse_json(json);
	int r = check_service_address(service, port_name, port, cluster_ips, address, reason);

	doc_free(service);
	return r;
}

static void test_service_address_order(void **state)
{
	struct check_address address;
	const char *reason;

	(void)state;
	assert_int_equal(address_of("{\"spec\":{\"clusterIP\":\"10.96.0.9\",\"externalIPs\":[\"192.0.2.7\"],"
				    "\"ports\":[{\"name\":\"status-port\",\"port\":15021},{\"name\":\"http2\","
				    "\"port\":80}]},\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"198.18.0.11\"}]}}}",
				    "http2", 80, false, &address, &reason),
			 0);
	assert_string_equal(address.host, "198.18.0.11");
	assert_int_equal(address.port, 80);
	assert_string_equal(address.source, "load balancer");

	assert_int_equal(address_of("{\"spec\":{\"externalIPs\":[\"192.0.2.7\"],\"ports\":[{\"port\":8084}]},"
				    "\"status\":{\"loadBalancer\":{}}}",
				    NULL, 80, false, &address, &reason),
			 0);
	assert_string_equal(address.host, "192.0.2.7");
	assert_int_equal(address.port, 8084);
	assert_string_equal(address.source, "external IP");

	assert_int_equal(address_of("{\"status\":{\"loadBalancer\":{\"ingress\":[{\"hostname\":\"lb.example.com\"}]}},"
				    "\"spec\":{\"ports\":[{\"port\":443},{\"port\":80}]}}",
				    "http", 80, false, &address, &reason),
			 0);
	assert_string_equal(address.host, "lb.example.com");
	assert_int_equal(address.port, 80);
}

static void test_service_address_cluster_ip_needs_option(void **state)
{
	static const char service[] = "{\"spec\":{\"clusterIP\":\"10.96.0.9\",\"ports\":[{\"port\":80}]}}";
	struct check_address address;
	const char *reason;

	(void)state;
	assert_int_equal(address_of(service, NULL, 80, false, &address, &reason), -ENOENT);
	assert_string_equal(reason, "the Service has no load-balancer address and no external IP, only a cluster IP");
	assert_int_equal(address_of(service, NULL, 80, true, &address, &reason), 0);
	assert_string_equal(address.host, "10.96.0.9");
	assert_string_equal(address.source, "cluster IP");
}

static void test_service_address_rejects_bad_host(void **state)
{
	struct check_address address;
	const char *reason;

	(void)state;
	assert_int_equal(address_of("{\"spec\":{\"externalIPs\":[\"evil/path?x\"],\"ports\":[{\"port\":80}]}}", NULL,
				    80, false, &address, &reason),
			 -ENOENT);
	assert_int_equal(address_of("{\"spec\":{\"externalIPs\":[\"192.0.2.7\"]}}", NULL, 80, false, &address,
				    &reason),
			 -ENOENT);
	assert_string_equal(reason, "the Service has no port");
}

/* ---- Redirects to HTTPS --------------------------------------------------- */

static void test_redirect_same_host_followed(void **state)
{
	char path[64];

	(void)state;
	assert_true(check_redirect_to_https("https://198.18.60.3/healthz", "198.18.60.3", path, sizeof(path)));
	assert_string_equal(path, "/healthz");
	assert_true(check_redirect_to_https("https://198.18.60.3:8080/argocd/healthz?full=true", "198.18.60.3", path,
					    sizeof(path)));
	assert_string_equal(path, "/argocd/healthz?full=true");
	assert_true(check_redirect_to_https("HTTPS://LB.Example.com/healthz", "lb.example.com", path, sizeof(path)));
	assert_string_equal(path, "/healthz");
	assert_true(check_redirect_to_https("https://[2001:db8::1]/healthz", "2001:db8::1", path, sizeof(path)));
	assert_string_equal(path, "/healthz");
}

static void test_redirect_path_forms(void **state)
{
	char path[16];

	(void)state;
	assert_true(check_redirect_to_https("https://host", "host", path, sizeof(path)));
	assert_string_equal(path, "/");
	assert_true(check_redirect_to_https("https://host?x=1", "host", path, sizeof(path)));
	assert_string_equal(path, "/?x=1");
	assert_true(check_redirect_to_https("https://host/healthz#top", "host", path, sizeof(path)));
	assert_string_equal(path, "/healthz");
	assert_false(check_redirect_to_https("https://host/a b", "host", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://host/a\tb", "host", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://host/a-path-longer-than-16", "host", path, sizeof(path)));
	assert_string_equal(path, "");
}

static void test_redirect_elsewhere_rejected(void **state)
{
	char path[64];

	(void)state;
	assert_false(check_redirect_to_https("http://198.18.60.3/healthz", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://evil.example/healthz", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://198.18.60.4/healthz", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://[2001:db8::2]/healthz", "2001:db8::1", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://198.18.60.30/healthz", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://198.18.60.3.evil.example/", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://198.18.60.3@evil.example/", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://198.18.60.3:443@evil/", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://198.18.60.3:/healthz", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https("https://2001:db8::1/healthz", "2001:db8::1", path, sizeof(path)));
	assert_false(check_redirect_to_https("/healthz", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https("", "198.18.60.3", path, sizeof(path)));
	assert_false(check_redirect_to_https(NULL, "198.18.60.3", path, sizeof(path)));
}

/* ---- Documents and predictions --------------------------------------------- */

static bool equal_json(const char *a, const char *b)
{
	struct doc_node *x = parse_json(a), *y = parse_json(b);
	bool equal = check_document_equal(x, y);

	doc_free(x);
	doc_free(y);
	return equal;
}

static void test_document_equal(void **state)
{
	(void)state;
	assert_true(equal_json("{\"predictions\":[1,1]}", "{\"predictions\": [1.0, 1]}"));
	assert_true(equal_json("{\"a\":1,\"b\":[true,null,\"x\"]}", "{\"b\":[true,null,\"x\"],\"a\":1}"));
	assert_false(equal_json("{\"predictions\":[1,1]}", "{\"predictions\":[1,2]}"));
	assert_false(equal_json("{\"predictions\":[1,1]}", "{\"predictions\":[1,1,1]}"));
	assert_false(equal_json("{\"predictions\":[1,1]}", "{\"predictions\":[1,1],\"extra\":0}"));
	assert_false(equal_json("{\"predictions\":[1,1]}", "{\"predictions\":[\"1\",1]}"));
	assert_false(equal_json("[1]", "{\"0\":1}"));
}

static void prediction_finding(long status, const char *body, struct preflight_finding *finding)
{
	struct check_http_response response;

	check_http_response_init(&response);
	response.status = status;
	snprintf(response.server, sizeof(response.server), "istio-envoy");
	snprintf(response.error, sizeof(response.error), "Connection refused");
	assert_int_equal(buf_append_str(&response.body, body), 0);
	preflight_finding_init(finding);
	assert_int_equal(check_evaluate_prediction(&response, "{\"predictions\":[1,1]}", "POST x", "ml/iris", finding),
			 0);
	check_http_response_release(&response);
}

static void test_prediction_right_answer_passes(void **state)
{
	struct preflight_finding finding;

	(void)state;
	prediction_finding(200, "{\"predictions\": [1, 1]}\n", &finding);
	assert_int_equal(finding.status, CHECK_PASS);
	assert_non_null(strstr(buf_str(&finding.evidence), "POST x returned HTTP 200 with {\"predictions\":[1,1]}"));
	preflight_finding_release(&finding);
}

static void test_prediction_wrong_answer_fails(void **state)
{
	struct preflight_finding finding;

	(void)state;
	prediction_finding(200, "{\"predictions\": [2, 2]}", &finding);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_string_equal(buf_str(&finding.evidence),
			    "POST x returned HTTP 200 with '{\"predictions\": [2, 2]}', expected {\"predictions\":[1,1]}");
	assert_non_null(strstr(buf_str(&finding.remedy), "InferenceService ml/iris"));
	preflight_finding_release(&finding);
}

static void test_prediction_http_error_fails(void **state)
{
	struct preflight_finding finding;

	(void)state;
	prediction_finding(503, "no healthy upstream", &finding);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_string_equal(buf_str(&finding.evidence),
			    "POST x returned HTTP 503 (server 'istio-envoy') with 'no healthy upstream'");
	assert_non_null(strstr(buf_str(&finding.remedy), "kubectl -n ml get pods -l serving.kserve.io/inferenceservice=iris"));
	preflight_finding_release(&finding);
}

static void test_prediction_no_response_fails(void **state)
{
	struct preflight_finding finding;

	(void)state;
	prediction_finding(0, "", &finding);
	assert_int_equal(finding.status, CHECK_FAIL);
	assert_string_equal(buf_str(&finding.evidence), "POST x: no response: Connection refused");
	preflight_finding_release(&finding);
}

static void test_prediction_not_json_fails(void **state)
{
	static const char *const bodies[] = {
		"predictions: [1, 1]",          /* YAML, which the parser would read */
		"[1, 1]",
		"<html>ok</html>",
		"",
		"{\"predictions\": [1, 1]",
	};
	struct preflight_finding finding;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		prediction_finding(200, bodies[i], &finding);
		assert_int_equal(finding.status, CHECK_FAIL);
		preflight_finding_release(&finding);
	}
}

static void test_server_is_envoy(void **state)
{
	(void)state;
	assert_true(check_server_is_envoy("istio-envoy"));
	assert_true(check_server_is_envoy("envoy"));
	assert_true(check_server_is_envoy("Istio-Envoy"));
	assert_false(check_server_is_envoy("nginx"));
	assert_false(check_server_is_envoy(""));
	assert_false(check_server_is_envoy("istio-envoy-fake"));
}

/* ---- Images --------------------------------------------------------------- */

static struct check_image platform_images[] = {
	{ (char *)"docker.io/library/redis:7.0.15-alpine", (char *)DIGEST_A, (char *)"argocd" },
	{ (char *)"quay.io/argoproj/argocd:v2.11.3", (char *)DIGEST_B, (char *)"argocd" },
};

static const struct check_platform test_platform = {
	.from_bundle = true,
	.images = platform_images,
	.image_count = ARRAY_SIZE(platform_images),
};

static int image_in_bundle(const char *image, const char *image_id, bool *by_digest, char *reason, size_t size)
{
	struct buf text = BUF_INIT(4096);
	int r = check_image_in_bundle(&test_platform, image, image_id, by_digest, &text);

	snprintf(reason, size, "%s", buf_str(&text));
	buf_release(&text);
	return r;
}

static void test_image_in_bundle_by_name_and_digest(void **state)
{
	char reason[512];
	bool by_digest;

	(void)state;
	/* Short names are expanded as containerd expands them. */
	assert_int_equal(image_in_bundle("redis:7.0.15-alpine", "", &by_digest, reason, sizeof(reason)), 1);
	assert_false(by_digest);
	assert_int_equal(image_in_bundle("docker.io/library/redis:7.0.15-alpine",
					 "docker.io/library/redis@" DIGEST_A, &by_digest, reason, sizeof(reason)),
			 1);
	assert_true(by_digest);
	/* A bare sha256 image id is the config's id under containerd: it is not compared. */
	assert_int_equal(image_in_bundle("quay.io/argoproj/argocd:v2.11.3", DIGEST_A, &by_digest, reason,
					 sizeof(reason)),
			 1);
	assert_false(by_digest);
	/* By digest alone, in the same repository. */
	assert_int_equal(image_in_bundle("quay.io/argoproj/argocd@" DIGEST_B, "", &by_digest, reason, sizeof(reason)),
			 1);
	assert_true(by_digest);
}

static void test_image_not_in_bundle(void **state)
{
	char reason[512];
	bool by_digest;

	(void)state;
	assert_int_equal(image_in_bundle("docker.io/library/nginx:1.27", "", &by_digest, reason, sizeof(reason)), 0);
	assert_string_equal(reason, "docker.io/library/nginx:1.27 is not in the bundle");
	/* The same tag with other content was pulled from elsewhere. */
	assert_int_equal(image_in_bundle("redis:7.0.15-alpine", "docker.io/library/redis@" DIGEST_B, &by_digest,
					 reason, sizeof(reason)),
			 0);
	assert_string_equal(reason, "redis:7.0.15-alpine runs digest " DIGEST_B ", but the bundle's "
				    "docker.io/library/redis:7.0.15-alpine is " DIGEST_A);
	/* A digest of the bundle under another repository is not the bundle's image. */
	assert_int_equal(image_in_bundle("docker.io/evil/argocd@" DIGEST_B, "", &by_digest, reason, sizeof(reason)),
			 0);
	assert_int_equal(image_in_bundle("not a reference", "", &by_digest, reason, sizeof(reason)), 0);
}

static void test_image_id_digest(void **state)
{
	(void)state;
	assert_string_equal(check_image_id_digest("docker.io/library/redis@" DIGEST_A), DIGEST_A);
	assert_null(check_image_id_digest(DIGEST_A));
	assert_null(check_image_id_digest("docker.io/library/redis@sha256:short"));
	assert_null(check_image_id_digest(""));
	assert_null(check_image_id_digest(NULL));
}

static void test_parse_ctr_listing(void **state)
{
	struct buf text = BUF_INIT(1024 * 1024);
	struct check_node_images images;
	size_t skipped = 99;
	const struct check_node_image *pilot = NULL, *by_id = NULL;

	(void)state;
	assert_int_equal(file_read_all(CTR_FIXTURE, 1024 * 1024, &text), 0);
	assert_int_equal(check_parse_ctr_images(text.data, text.len, &images, &skipped), 0);
	assert_int_equal(images.count, 32);
	assert_int_equal(skipped, 0);
	for (size_t i = 0; i < images.count; i++) {
		if (strcmp(images.items[i].name, "docker.io/istio/pilot:1.22.1") == 0)
			pilot = &images.items[i];
		if (strncmp(images.items[i].name, "sha256:", 7) == 0 && !by_id)
			by_id = &images.items[i];
	}
	assert_non_null(pilot);
	assert_string_equal(pilot->digest, "sha256:c31348358cc3e17f4b7658e75e9e73d440c0d79ae6bb3c2eb3cc1f6e8ea259b6");
	/* The last column is padded with spaces; the label must still be found. */
	assert_true(pilot->pinned);
	assert_non_null(by_id);
	assert_false(by_id->pinned);
	check_node_images_release(&images);
	buf_release(&text);
}

static void test_parse_ctr_odd_lines(void **state)
{
	static const char listing[] =
		"REF TYPE DIGEST SIZE PLATFORMS LABELS\n"
		"short line\n"
		"x:1 application/vnd.oci.image.manifest.v1+json sha256:nothex 1.0 KiB linux/amd64 -\n"
		"docker.io/library/a:1\tapplication/vnd.oci.image.manifest.v1+json\t" DIGEST_A
		"\t2.0 MiB\tlinux/amd64,linux/arm64\tio.cri-containerd.pinned=pinned\r\n"
		"docker.io/library/b:1 t " DIGEST_B " 1 B linux/amd64 other=io.cri-containerd.pinned=pinned,x=y\n";
	struct check_node_images images;
	size_t skipped = 0;

	(void)state;
	assert_int_equal(check_parse_ctr_images(listing, strlen(listing), &images, &skipped), 0);
	assert_int_equal(skipped, 2);
	assert_int_equal(images.count, 2);
	assert_string_equal(images.items[0].name, "docker.io/library/a:1");
	assert_true(images.items[0].pinned);
	/* Only a whole label counts. */
	assert_false(images.items[1].pinned);
	check_node_images_release(&images);
}

static void node_images_findings(struct check_node_image *items, size_t count, struct preflight_finding *present,
				 struct preflight_finding *pinned)
{
	struct check_node_images images = { items, count };

	preflight_finding_init(present);
	preflight_finding_init(pinned);
	assert_int_equal(check_evaluate_node_images(&test_platform, &images, present, pinned), 0);
}

static void test_node_images_all_pinned(void **state)
{
	struct check_node_image items[] = {
		{ (char *)"docker.io/library/redis:7.0.15-alpine", (char *)DIGEST_A, true },
		{ (char *)"quay.io/argoproj/argocd:v2.11.3", (char *)DIGEST_B, true },
		{ (char *)"docker.io/library/other:1", (char *)DIGEST_B, false },
	};
	struct preflight_finding present, pinned;

	(void)state;
	node_images_findings(items, ARRAY_SIZE(items), &present, &pinned);
	assert_int_equal(present.status, CHECK_PASS);
	assert_int_equal(pinned.status, CHECK_PASS);
	preflight_finding_release(&present);
	preflight_finding_release(&pinned);
}

static void test_node_images_missing_and_unpinned(void **state)
{
	struct check_node_image missing_one[] = {
		{ (char *)"quay.io/argoproj/argocd:v2.11.3", (char *)DIGEST_B, true },
	};
	struct check_node_image unpinned_one[] = {
		{ (char *)"docker.io/library/redis:7.0.15-alpine", (char *)DIGEST_A, true },
		{ (char *)"quay.io/argoproj/argocd:v2.11.3", (char *)DIGEST_B, false },
	};
	struct check_node_image other_content[] = {
		{ (char *)"docker.io/library/redis:7.0.15-alpine", (char *)DIGEST_B, true },
		{ (char *)"quay.io/argoproj/argocd:v2.11.3", (char *)DIGEST_B, true },
	};
	struct preflight_finding present, pinned;

	(void)state;
	/* A missing image fails presence only: pinning is about the images that are there. */
	node_images_findings(missing_one, ARRAY_SIZE(missing_one), &present, &pinned);
	assert_int_equal(present.status, CHECK_FAIL);
	assert_string_equal(buf_str(&present.evidence),
			    "1 of 2 images of the bundle are missing: docker.io/library/redis:7.0.15-alpine");
	assert_string_equal(buf_str(&present.remedy),
			    "import them again with mlboot install --force --only argocd, which sends each node "
			    "only the images it lacks");
	assert_int_equal(pinned.status, CHECK_PASS);
	preflight_finding_release(&present);
	preflight_finding_release(&pinned);

	node_images_findings(unpinned_one, ARRAY_SIZE(unpinned_one), &present, &pinned);
	assert_int_equal(present.status, CHECK_PASS);
	assert_int_equal(pinned.status, CHECK_FAIL);
	assert_string_equal(buf_str(&pinned.evidence),
			    "1 of 2 images of the bundle on this node are not pinned: quay.io/argoproj/argocd:v2.11.3");
	assert_non_null(strstr(buf_str(&pinned.remedy), "ctr -n k8s.io images label NAME io.cri-containerd.pinned=pinned"));
	preflight_finding_release(&present);
	preflight_finding_release(&pinned);

	node_images_findings(other_content, ARRAY_SIZE(other_content), &present, &pinned);
	assert_int_equal(present.status, CHECK_FAIL);
	assert_non_null(strstr(buf_str(&present.evidence), "have other content: docker.io/library/redis:7.0.15-alpine"));
	preflight_finding_release(&present);
	preflight_finding_release(&pinned);
}

/* ---- Expected objects ------------------------------------------------------- */

static void test_component_documents(void **state)
{
	static const char manifest[] =
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec: {replicas: 3}\n---\n"
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\n---\n"
		"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: data}\n---\n"
		"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.example.com, namespace: x}\n---\n"
		"apiVersion: v1\nkind: Service\nmetadata: {name: api}\n---\n"
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n---\n"
		"apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: not-apps}\n---\n"
		"apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: hooks}\n";
	struct check_component component = { .name = (char *)"web", .namespace = (char *)"web-system" };
	struct doc_stream stream = { NULL, 0 };
	struct doc_error error;

	(void)state;
	assert_int_equal(doc_parse_stream(manifest, strlen(manifest), NULL, &stream, &error), 0);
	for (size_t i = 0; i < stream.count; i++)
		assert_int_equal(check_component_add_document(&component, stream.docs[i]), 0);
	assert_int_equal(component.object_count, 5);
	assert_int_equal(component.objects[0].kind, CHECK_OBJECT_DEPLOYMENT);
	assert_string_equal(component.objects[0].namespace, "web-system");
	assert_int_equal(component.objects[0].replicas, 3);
	assert_int_equal(component.objects[1].kind, CHECK_OBJECT_STATEFULSET);
	assert_string_equal(component.objects[1].namespace, "data");
	assert_int_equal(component.objects[1].replicas, 1);
	assert_int_equal(component.objects[2].kind, CHECK_OBJECT_CRD);
	assert_null(component.objects[2].namespace);
	assert_int_equal(component.objects[3].kind, CHECK_OBJECT_SERVICE);
	assert_int_equal(component.objects[4].kind, CHECK_OBJECT_VALIDATING_WEBHOOK);
	for (size_t i = 0; i < component.object_count; i++) {
		free(component.objects[i].namespace);
		free(component.objects[i].name);
	}
	free(component.objects);
	doc_stream_release(&stream);
}

static void test_list_cuts_long_lists(void **state)
{
	struct buf text = BUF_INIT(4096);
	struct check_list list = { &text, 0 };

	(void)state;
	for (int i = 0; i < CHECK_MAX_LISTED + 5; i++)
		assert_int_equal(check_list_add(&list, "n%d", i), 0);
	assert_int_equal(check_list_finish(&list), 0);
	assert_non_null(strstr(buf_str(&text), "n19 and 5 more"));
	assert_null(strstr(buf_str(&text), "n20"));
	buf_release(&text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deployment_available_is_ready),
		cmocka_unit_test(test_deployment_scaled_to_zero_fails),
		cmocka_unit_test(test_deployment_short_of_replicas),
		cmocka_unit_test(test_deployment_available_condition_false),
		cmocka_unit_test(test_workload_missing),
		cmocka_unit_test(test_statefulset_ready_replicas),
		cmocka_unit_test(test_daemonset_on_no_node_fails),
		cmocka_unit_test(test_crd_conditions),
		cmocka_unit_test(test_pod_state_sums_restarts),
		cmocka_unit_test(test_webhook_ca_bundle),
		cmocka_unit_test(test_certificate_secret),
		cmocka_unit_test(test_endpoint_slice_counts_ready),
		cmocka_unit_test(test_service_address_order),
		cmocka_unit_test(test_service_address_cluster_ip_needs_option),
		cmocka_unit_test(test_service_address_rejects_bad_host),
		cmocka_unit_test(test_redirect_same_host_followed),
		cmocka_unit_test(test_redirect_path_forms),
		cmocka_unit_test(test_redirect_elsewhere_rejected),
		cmocka_unit_test(test_document_equal),
		cmocka_unit_test(test_prediction_right_answer_passes),
		cmocka_unit_test(test_prediction_wrong_answer_fails),
		cmocka_unit_test(test_prediction_http_error_fails),
		cmocka_unit_test(test_prediction_no_response_fails),
		cmocka_unit_test(test_prediction_not_json_fails),
		cmocka_unit_test(test_server_is_envoy),
		cmocka_unit_test(test_image_in_bundle_by_name_and_digest),
		cmocka_unit_test(test_image_not_in_bundle),
		cmocka_unit_test(test_image_id_digest),
		cmocka_unit_test(test_parse_ctr_listing),
		cmocka_unit_test(test_parse_ctr_odd_lines),
		cmocka_unit_test(test_node_images_all_pinned),
		cmocka_unit_test(test_node_images_missing_and_unpinned),
		cmocka_unit_test(test_component_documents),
		cmocka_unit_test(test_list_cuts_long_lists),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
