/*
 * One SSH connection made with libssh2, shared by the files of the SSH
 * transport (ssh.c, ssh-hostkey.c, ssh-auth.c, ssh-forward.c).
 *
 * Every libssh2 session here is in non-blocking mode: a call that would
 * block returns LIBSSH2_ERROR_EAGAIN, and ssh_link_wait() polls the socket
 * until the direction libssh2 waits for is ready or a deadline passes. This
 * bounds every wait, which libssh2 1.10's blocking mode cannot do for reads.
 */
#ifndef MLBOOT_NODE_SSH_LINK_H
#define MLBOOT_NODE_SSH_LINK_H

#include <libssh2.h>

#include "node-internal.h"

struct ssh_forward;

struct ssh_link {
	int fd;                           /* TCP socket, or a socketpair end over a bastion */
	LIBSSH2_SESSION *session;
	struct ssh_forward *forward;      /* bastion forwarding, or NULL */
	char label[NODE_NAME_MAX + 16];   /* "address:port" for messages */
	unsigned keepalive_interval_s;
	bool broken;                      /* a timeout or error left the session unusable */
};

#define SSH_LINK_INIT { .fd = -1 }

/*
 * Connects to desc (through its bastions), verifies the host key and
 * authenticates. host_name is used in messages; depth counts bastions.
 */
int ssh_link_open(const struct node_ssh *desc, const char *host_name,
		  const struct node_options *options, unsigned depth, struct ssh_link *link,
		  struct node_error *err);
void ssh_link_close(struct ssh_link *link);

/*
 * Waits until the link's socket is ready in the direction libssh2 is blocked
 * on, sending keepalives while idle. Returns 0, -ETIMEDOUT after deadline_ms
 * or a negative errno.
 */
int ssh_link_wait(struct ssh_link *link, int64_t deadline_ms);

/* The last libssh2 error message of the session, or "" when none. */
const char *ssh_link_error(const struct ssh_link *link);

/* Maps a libssh2 error code to a result code. */
int ssh_result(int libssh2_error);

/* Host key checks (ssh-hostkey.c). */
struct ssh_hostkey_plan;
int ssh_hostkey_plan_new(const struct node_ssh *desc, const char *host_name,
			 struct ssh_hostkey_plan **out, struct node_error *err);
void ssh_hostkey_plan_free(struct ssh_hostkey_plan *plan);
/* The host key algorithms to offer, in order, for the next handshake. */
const char *ssh_hostkey_plan_methods(const struct ssh_hostkey_plan *plan);
/*
 * Checks the key offered in a finished handshake. Returns 0 when trusted,
 * 1 when another handshake with the methods now returned by
 * ssh_hostkey_plan_methods() is needed, or a negative result with err set.
 */
int ssh_hostkey_verify(struct ssh_hostkey_plan *plan, struct ssh_link *link,
		       const struct node_options *options, struct node_error *err);
/*
 * Handles a handshake that failed to agree on a host key algorithm: returns
 * 1 to try again with other methods, or a negative result with err set.
 */
int ssh_hostkey_no_common_method(struct ssh_hostkey_plan *plan, struct node_error *err);

/* User authentication (ssh-auth.c). */
int ssh_authenticate(struct ssh_link *link, const struct node_ssh *desc, const char *host_name,
		     int64_t deadline_ms, struct node_error *err);

/*
 * Bastion forwarding (ssh-forward.c): opens a direct-tcpip channel from the
 * bastion link to address:port and starts a thread that copies between it
 * and a socketpair. On success *fd is the local end for the target's
 * session, and bastion belongs to the forwarder.
 */
int ssh_forward_start(struct ssh_link *bastion, const char *address, uint16_t port,
		      const char *host_name, int64_t deadline_ms, struct ssh_forward **out,
		      int *fd, struct node_error *err);
/* Stops the thread (after the caller closed its end) and frees the bastion link. */
void ssh_forward_stop(struct ssh_forward *forward);

#endif
