/*
 * libFuzzer target for the kubeconfig parser: each input is a kubeconfig
 * held in memory. Loading reads files that the input names, so inputs that
 * name device or kernel files (which can block) are skipped. Loading never
 * runs an exec plugin.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kubeconfig_options options = {
		.data = (const char *)data,
		.data_len = size,
		.data_name = "fuzz.yaml",
	};
	struct kube_credentials credentials;
	static int ready;

	if (!ready) {
		log_set_level(LOG_CRIT);
		unsetenv("KUBERNETES_SERVICE_HOST");
		ready = 1;
	}
	if (memmem(data, size, "/dev", 4) || memmem(data, size, "/proc", 5) || memmem(data, size, "/sys", 4))
		return 0;
	if (kubeconfig_load(&options, &credentials) == 0)
		kube_credentials_release(&credentials);
	return 0;
}
