// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Wisp traffic capture: steers a member pod's TCP into the node agent without iptables.
 *
 * Attached per pod cgroup: connect4/6 (redirect to the agent's outbound listener), sockops
 * (re-key the original destination by 4-tuple, flow events), getpeername4/6 (show the app its
 * original peer), bind4/6 (mesh ports, TCP and UDP, are the agent's). Attached to the agent's cgroup: getsockopt
 * (SO_ORIGINAL_DST on the agent's accepted sockets). Attached per pod netns: sk_lookup (plaintext
 * inbound to the agent's 15006 listener, HBONE to its 15008 listener). DNS: connect4/6, sendmsg4/6
 * (an unconnected sendto()) and recvmsg4/6 send a pod's port-53 traffic to the agent's DNS listener
 * on loopback inside the pod (127.0.0.1, or ::1 for an IPv6 server) and show the app the server it
 * addressed.
 *
 * Every map is pinned by name under the pin root the loader chooses (/sys/fs/bpf/wisp), so that a
 * restarted agent finds the same state.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/socket.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SO_ORIGINAL_DST 80
#define SOL_IP 0
#define SOL_IPV6 41
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define MAX_MESH_PORTS 8
#define TCP_CLOSE_STATE 7 /* BPF_TCP_CLOSE */

#define LISTENER_INBOUND 0
#define LISTENER_HBONE 1

#define EVENT_OPENED 1
#define EVENT_CLOSED 2
#define EVENT_ACCEPTED 3

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Written by the agent: where to redirect, which ports are never captured. */
struct config {
	__u32 out4_addr; /* network order; 0 = outbound capture off for IPv4 */
	__u16 out4_port; /* host order */
	__u16 hbone_port; /* host order */
	__u8 out6_addr[16];
	__u16 out6_port; /* host order; 0 = off for IPv6 */
	__u16 inbound_port; /* host order */
	__u16 mesh_ports[MAX_MESH_PORTS]; /* host order, 0 = unused */
};

/* An address as the agent sees it: family + 16 bytes (IPv4 in the first 4). */
struct endpoint {
	__u8 addr[16];
	__u16 port; /* host order */
	__u16 family;
};

/* What connect4/6 saw; redirected = 0 marks a flow only tracked for its events. */
struct orig_dst {
	struct endpoint dst;
	__u32 redirected;
	__u64 cgroup_id; /* the connecting task's cgroup (0 when not known: passive flows) */
};

/* Key of the agent's accepted socket: its local (the listener) and remote (the pod) ends. */
struct tuple {
	struct endpoint local;
	struct endpoint remote;
};

struct flow_event {
	__u64 cookie;
	__u64 cgroup_id;
	__u64 bytes_sent;
	__u64 bytes_received;
	__u32 type;
	__u32 redirected;
	struct endpoint src;
	struct endpoint dst;
	struct endpoint orig_dst;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_orig_by_cookie SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tuple);
	__type(value, struct orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_orig_by_tuple SEC(".maps");

/* Member pod addresses (endpoint with port 0): inbound capture applies to these only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct endpoint);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_pod_ips SEC(".maps");

/* Sources never steered inbound (the agent's own node addresses, port 0). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct endpoint);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_bypass_src SEC(".maps");

/*
 * The agent's listening sockets inside each member pod's netns, keyed by the pod's address with
 * port = slot (0 inbound plaintext 15006, 1 HBONE 15008). sk_lookup may only hand a packet to a
 * socket of the same network namespace (the handshake's later packets are looked up there), so
 * the agent listens in each pod's netns, as ztunnel's in-pod mode does.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 32768);
	__type(key, struct endpoint);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_listeners SEC(".maps");

/*
 * DNS capture: the port of the agent's DNS listener on 127.0.0.1 inside each member pod (host
 * order; 0 = off, the pods' port-53 traffic goes where it was sent). A map of its own rather than a
 * field of wisp_config, so that a pinned wisp_config of an earlier version is still reused.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_dns_port SEC(".maps");

/* The DNS server a redirected socket addressed, by socket cookie; apart from wisp_orig_by_cookie so
 * that many short-lived resolver sockets never evict the state of open TCP flows. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_dns_orig SEC(".maps");

/*
 * The agent's own connections to a member pod's application, made from the client's address while
 * they are being opened (the agent's TransparentUpstream adds the 4-tuple after bind, removes it
 * once connected): local = the pod's address and the application's port, remote = the client's
 * address and the agent's port. sk_lookup lets these through instead of steering them inbound.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tuple);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_own_upstream SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} wisp_events SEC(".maps");

static __always_inline struct config *config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&wisp_config, &zero);
}

static __always_inline int is_mesh_port(const struct config *cfg, __u16 port)
{
#pragma unroll
	for (int i = 0; i < MAX_MESH_PORTS; i++) {
		if (cfg->mesh_ports[i] != 0 && cfg->mesh_ports[i] == port)
			return 1;
	}
	return 0;
}

static __always_inline void set_v4(struct endpoint *e, __u32 addr, __u16 port)
{
	__builtin_memset(e, 0, sizeof(*e));
	__builtin_memcpy(e->addr, &addr, 4);
	e->port = port;
	e->family = AF_INET;
}

static __always_inline int is_v4_mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff);
}

/* An IPv6 address, or, when it is IPv4-mapped (a dual-stack socket talking IPv4, as Java's are),
 * the IPv4 address: the agent's IPv4 listener sees such connections as plain IPv4. */
static __always_inline void set_v6(struct endpoint *e, const __u32 *addr, __u16 port)
{
	if (is_v4_mapped(addr)) {
		set_v4(e, addr[3], port);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	__u32 a0 = addr[0], a1 = addr[1], a2 = addr[2], a3 = addr[3];
	__builtin_memcpy(e->addr, &a0, 4);
	__builtin_memcpy(e->addr + 4, &a1, 4);
	__builtin_memcpy(e->addr + 8, &a2, 4);
	__builtin_memcpy(e->addr + 12, &a3, 4);
	e->port = port;
	e->family = AF_INET6;
}

static __always_inline int same_addr(const struct endpoint *a, const struct endpoint *b)
{
	__u64 a0, a1, b0, b1;

	__builtin_memcpy(&a0, a->addr, 8);
	__builtin_memcpy(&a1, a->addr + 8, 8);
	__builtin_memcpy(&b0, b->addr, 8);
	__builtin_memcpy(&b1, b->addr + 8, 8);
	return a0 == b0 && a1 == b1;
}

static __always_inline int remember(void *ctx, struct endpoint *dst)
{
	struct orig_dst orig = {};
	__u64 cookie = bpf_get_socket_cookie(ctx);

	orig.dst = *dst;
	orig.redirected = 1;
	orig.cgroup_id = bpf_get_current_cgroup_id();
	return bpf_map_update_elem(&wisp_orig_by_cookie, &cookie, &orig, BPF_ANY);
}

#define DNS_PORT 53
#define LOOPBACK4 0x7f000001

static __always_inline __u16 dns_port(void)
{
	__u32 zero = 0;
	__u32 *p = bpf_map_lookup_elem(&wisp_dns_port, &zero);
	return p ? (__u16)*p : 0;
}

/* Remembers server as the DNS server ctx's socket addressed (by its cookie); returns whether there
 * was room. Without room the message goes to the server itself, not redirected. */
static __always_inline int remember_dns_server(void *ctx, const struct endpoint *server)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);

	return bpf_map_update_elem(&wisp_dns_orig, &cookie, server, BPF_ANY) == 0;
}

/* The DNS server a redirected socket addressed (kept by its cookie), or null. */
static __always_inline struct endpoint *dns_server(void *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);

	return bpf_map_lookup_elem(&wisp_dns_orig, &cookie);
}

/* For a message on ctx from the agent's DNS listener port: the server its socket addressed, which
 * the message is to show as its source; else null. Each family then checks the listener's address. */
static __always_inline struct endpoint *dns_answer_server(struct bpf_sock_addr *ctx)
{
	__u16 to = dns_port();

	if (to == 0 || bpf_ntohs(ctx->user_port) != to)
		return 0;
	return dns_server(ctx);
}

/* UDP or TCP to port 53 of a non-loopback IPv4 address: remember the server by socket cookie and
 * send to the agent's DNS listener on the pod's loopback. Returns whether it redirected. */
static __always_inline int dns_redirect4(struct bpf_sock_addr *ctx)
{
	__u32 addr = ctx->user_ip4;
	__u16 to = dns_port();
	struct endpoint server;

	if (to == 0 || bpf_ntohs(ctx->user_port) != DNS_PORT || addr == 0 || (bpf_ntohl(addr) >> 24) == 127)
		return 0;
	set_v4(&server, addr, DNS_PORT);
	if (!remember_dns_server(ctx, &server))
		return 0;
	ctx->user_ip4 = bpf_htonl(LOOPBACK4);
	ctx->user_port = bpf_htons(to);
	return 1;
}

/* Shows the app the DNS server it addressed as the peer (getpeername) or the source (recvmsg). */
static __always_inline void show_server4(struct bpf_sock_addr *ctx, const struct endpoint *server)
{
	__u32 addr;

	__builtin_memcpy(&addr, server->addr, 4);
	ctx->user_ip4 = addr;
	ctx->user_port = bpf_htons(server->port);
}

SEC("cgroup/sendmsg4")
int wisp_sendmsg4(struct bpf_sock_addr *ctx)
{
	dns_redirect4(ctx);
	return 1;
}

/* An answer from the agent's DNS listener reads as coming from the server the app addressed (a
 * stub resolver drops answers from other sources). */
SEC("cgroup/recvmsg4")
int wisp_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct endpoint *server = dns_answer_server(ctx);

	if (server && ctx->user_ip4 == bpf_htonl(LOOPBACK4))
		show_server4(ctx, server);
	return 1;
}

static __always_inline int is_v6_loopback_or_any(const __u32 *a)
{
	if (a[0] != 0 || a[1] != 0)
		return 0;
	return a[2] == 0 && (a[3] == 0 || a[3] == bpf_htonl(1));
}

static __always_inline void read_ip6(const struct bpf_sock_addr *ctx, __u32 *a)
{
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
}

static __always_inline void write_ip6(struct bpf_sock_addr *ctx, const __u32 *a)
{
	ctx->user_ip6[0] = a[0];
	ctx->user_ip6[1] = a[1];
	ctx->user_ip6[2] = a[2];
	ctx->user_ip6[3] = a[3];
}

/* The IPv6 twin of dns_redirect4, for an AF_INET6 socket: to an IPv6 server, the agent's listener on
 * [::1]; to an IPv4 server through a dual-stack socket (an IPv4-mapped address), the IPv4 listener at
 * ::ffff:127.0.0.1, the same rules as dns_redirect4. Returns whether it redirected. */
static __always_inline int dns_redirect6(struct bpf_sock_addr *ctx)
{
	__u16 to = dns_port();
	struct endpoint server;
	__u32 a[4];

	if (to == 0 || bpf_ntohs(ctx->user_port) != DNS_PORT)
		return 0;
	read_ip6(ctx, a);
	if (is_v4_mapped(a)) {
		if (a[3] == 0 || (bpf_ntohl(a[3]) >> 24) == 127)
			return 0;
	} else if (is_v6_loopback_or_any(a)) {
		return 0;
	}
	set_v6(&server, a, DNS_PORT); /* an IPv4 endpoint for a mapped address */
	if (!remember_dns_server(ctx, &server))
		return 0;
	if (server.family == AF_INET) {
		a[3] = bpf_htonl(LOOPBACK4); /* ::ffff:127.0.0.1 */
	} else {
		a[0] = 0;
		a[1] = 0;
		a[2] = 0;
		a[3] = bpf_htonl(1);
	}
	write_ip6(ctx, a);
	ctx->user_port = bpf_htons(to);
	return 1;
}

/* The server as an AF_INET6 socket shows it: IPv6, or IPv4-mapped. */
static __always_inline void show_server6(struct bpf_sock_addr *ctx, const struct endpoint *server)
{
	__u32 a[4] = {0, 0, bpf_htonl(0xffff), 0};

	if (server->family == AF_INET)
		__builtin_memcpy(&a[3], server->addr, 4);
	else
		__builtin_memcpy(a, server->addr, 16);
	write_ip6(ctx, a);
	ctx->user_port = bpf_htons(server->port);
}

SEC("cgroup/sendmsg6")
int wisp_sendmsg6(struct bpf_sock_addr *ctx)
{
	dns_redirect6(ctx);
	return 1;
}

/* recvmsg4's twin: an answer from the agent's listener at [::1] or ::ffff:127.0.0.1 (an IPv4 answer
 * on a dual-stack socket) reads as coming from the server the app addressed. */
SEC("cgroup/recvmsg6")
int wisp_recvmsg6(struct bpf_sock_addr *ctx)
{
	struct endpoint *server = dns_answer_server(ctx);
	__u32 a[4];

	if (!server)
		return 1;
	read_ip6(ctx, a);
	if ((is_v4_mapped(a) && a[3] == bpf_htonl(LOOPBACK4)) || (is_v6_loopback_or_any(a) && a[3] != 0))
		show_server6(ctx, server);
	return 1;
}

SEC("cgroup/connect4")
int wisp_connect4(struct bpf_sock_addr *ctx)
{
	struct config *cfg = config();
	struct endpoint dst;
	__u32 addr = ctx->user_ip4;
	__u16 port = bpf_ntohs(ctx->user_port);

	if (dns_redirect4(ctx))
		return 1;
	if (!cfg || cfg->out4_addr == 0 || ctx->type != SOCK_STREAM)
		return 1;
	if ((bpf_ntohl(addr) >> 24) == 127 || addr == 0)
		return 1;
	if (addr == cfg->out4_addr && port == cfg->out4_port)
		return 1;
	if (is_mesh_port(cfg, port))
		return 1;
	set_v4(&dst, addr, port);
	if (remember(ctx, &dst) != 0)
		return 1; /* no room to remember: connect directly rather than lose the destination */
	ctx->user_ip4 = cfg->out4_addr;
	ctx->user_port = bpf_htons(cfg->out4_port);
	return 1;
}

SEC("cgroup/connect6")
int wisp_connect6(struct bpf_sock_addr *ctx)
{
	struct config *cfg = config();
	struct endpoint dst;
	__u32 a[4];
	__u16 port = bpf_ntohs(ctx->user_port);

	if (dns_redirect6(ctx))
		return 1;
	if (!cfg || ctx->type != SOCK_STREAM)
		return 1;
	read_ip6(ctx, a);
	if (is_v4_mapped(a)) {
		/* IPv4 through a dual-stack socket: IPv4 rules, IPv4 listener (as a mapped address). */
		__u32 v4 = a[3];
		if (cfg->out4_addr == 0 || v4 == 0 || (bpf_ntohl(v4) >> 24) == 127 || is_mesh_port(cfg, port))
			return 1;
		if (v4 == cfg->out4_addr && port == cfg->out4_port)
			return 1;
		set_v4(&dst, v4, port);
		if (remember(ctx, &dst) != 0)
			return 1;
		ctx->user_ip6[3] = cfg->out4_addr;
		ctx->user_port = bpf_htons(cfg->out4_port);
		return 1;
	}
	if (cfg->out6_port == 0 || is_v6_loopback_or_any(a) || is_mesh_port(cfg, port))
		return 1;
	__u32 o[4];
	__builtin_memcpy(o, cfg->out6_addr, 16);
	if (a[0] == o[0] && a[1] == o[1] && a[2] == o[2] && a[3] == o[3] && port == cfg->out6_port)
		return 1;
	set_v6(&dst, a, port);
	if (remember(ctx, &dst) != 0)
		return 1;
	write_ip6(ctx, o);
	ctx->user_port = bpf_htons(cfg->out6_port);
	return 1;
}

/* Reads a context field into a register the compiler may not fold back into a pointer offset:
 * the verifier refuses context accesses through a modified context pointer. */
#define CTX_READ(dst, expr)                                                                      \
	do {                                                                                     \
		dst = (expr);                                                                    \
		asm volatile("" : "+r"(dst));                                                    \
	} while (0)

/* sock_ops' remote_port is "network byte order" in a u32; kernels differ in which half carries it
 * (recent ones shift it into the upper half so that ntohl yields the port). Accept both. */
static __always_inline __u16 ops_remote_port(__u32 raw)
{
	__u32 v = bpf_ntohl(raw);
	return v > 0xffff ? v >> 16 : v;
}

static __always_inline void ops_ends(struct bpf_sock_ops *ops, struct endpoint *local, struct endpoint *remote)
{
	__u32 family, lport, rport;

	CTX_READ(family, ops->family);
	CTX_READ(lport, ops->local_port);
	CTX_READ(rport, ops->remote_port);
	if (family == AF_INET) {
		__u32 l, r;
		CTX_READ(l, ops->local_ip4);
		CTX_READ(r, ops->remote_ip4);
		set_v4(local, l, (__u16)lport);
		set_v4(remote, r, ops_remote_port(rport));
	} else {
		__u32 l[4], r[4];
		CTX_READ(l[0], ops->local_ip6[0]);
		CTX_READ(l[1], ops->local_ip6[1]);
		CTX_READ(l[2], ops->local_ip6[2]);
		CTX_READ(l[3], ops->local_ip6[3]);
		CTX_READ(r[0], ops->remote_ip6[0]);
		CTX_READ(r[1], ops->remote_ip6[1]);
		CTX_READ(r[2], ops->remote_ip6[2]);
		CTX_READ(r[3], ops->remote_ip6[3]);
		set_v6(local, l, (__u16)lport);
		set_v6(remote, r, ops_remote_port(rport));
	}
}

/* 127/8 or ::1 (set_v6 has made an IPv4-mapped address IPv4). */
static __always_inline int is_loopback(const struct endpoint *e)
{
	__u32 a[4];

	__builtin_memcpy(a, e->addr, 16);
	if (e->family == AF_INET)
		return (bpf_ntohl(a[0]) >> 24) == 127;
	return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == bpf_htonl(1);
}

static __always_inline void emit(struct bpf_sock_ops *ops, __u32 type, struct endpoint *local,
				 struct endpoint *remote, struct orig_dst *orig, __u64 cookie, __u64 sent, __u64 received)
{
	struct flow_event *ev = bpf_ringbuf_reserve(&wisp_events, sizeof(*ev), 0);
	if (!ev)
		return;
	ev->cookie = cookie;
	ev->cgroup_id = orig ? orig->cgroup_id : 0;
	ev->bytes_sent = sent;
	ev->bytes_received = received;
	ev->type = type;
	ev->redirected = orig ? orig->redirected : 0;
	ev->src = *local;
	ev->dst = *remote;
	if (orig)
		ev->orig_dst = orig->dst;
	else
		ev->orig_dst = *remote;
	bpf_ringbuf_submit(ev, 0);
}

SEC("sockops")
int wisp_sockops(struct bpf_sock_ops *ops)
{
	struct endpoint local, remote;
	struct orig_dst *orig;
	__u64 cookie;

	if (ops->family != AF_INET && ops->family != AF_INET6)
		return 1;
	switch (ops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: {
		ops_ends(ops, &local, &remote);
		if (is_loopback(&remote))
			return 1; /* loopback inside the pod is not a flow of the mesh */
		cookie = bpf_get_socket_cookie(ops);
		orig = bpf_map_lookup_elem(&wisp_orig_by_cookie, &cookie);
		if (ops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && orig) {
			/* The agent will look this up from its accepted socket: its local end is our
			 * remote end (the outbound listener), its remote end is our local end. */
			struct tuple key = {.local = remote, .remote = local};
			bpf_map_update_elem(&wisp_orig_by_tuple, &key, orig, BPF_ANY);
		}
		if (!orig) {
			/* Not redirected (passive, or excluded): tracked so that its close is reported too. */
			struct orig_dst self = {.dst = remote, .redirected = 0, .cgroup_id = 0};
			bpf_map_update_elem(&wisp_orig_by_cookie, &cookie, &self, BPF_NOEXIST);
			emit(ops, ops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ? EVENT_OPENED : EVENT_ACCEPTED,
			     &local, &remote, 0, cookie, 0, 0);
		} else {
			emit(ops, EVENT_OPENED, &local, &remote, orig, cookie, 0, 0);
		}
		bpf_sock_ops_cb_flags_set(ops, ops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		return 1;
	}
	case BPF_SOCK_OPS_STATE_CB: {
		if (ops->args[1] != TCP_CLOSE_STATE)
			return 1;
		ops_ends(ops, &local, &remote);
		cookie = bpf_get_socket_cookie(ops);
		/* The kernel counts sequence space: the SYN and, after an orderly close, both FINs.
		 * An orderly close reaches TCP_CLOSE from FIN_WAIT2 (then time-wait), LAST_ACK or
		 * CLOSING; a reset from any other state, with no FIN to take off. */
		__u32 old = ops->args[0];
		__u64 fin = (old == BPF_TCP_FIN_WAIT2 || old == BPF_TCP_LAST_ACK || old == BPF_TCP_CLOSING) ? 1 : 0;
		__u64 acked = ops->bytes_acked;
		__u64 received = ops->bytes_received;
		__u64 sent = acked > 1 + fin ? acked - 1 - fin : 0;
		received = received > fin ? received - fin : 0;
		orig = bpf_map_lookup_elem(&wisp_orig_by_cookie, &cookie);
		if (orig && orig->redirected) {
			struct tuple key = {.local = remote, .remote = local};
			emit(ops, EVENT_CLOSED, &local, &remote, orig, cookie, sent, received);
			bpf_map_delete_elem(&wisp_orig_by_tuple, &key);
		} else {
			emit(ops, EVENT_CLOSED, &local, &remote, 0, cookie, sent, received);
		}
		bpf_map_delete_elem(&wisp_orig_by_cookie, &cookie);
		return 1;
	}
	default:
		return 1;
	}
}

SEC("cgroup/getpeername4")
int wisp_getpeername4(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct orig_dst *orig = bpf_map_lookup_elem(&wisp_orig_by_cookie, &cookie);
	struct endpoint *server;

	if (!orig || !orig->redirected || orig->dst.family != AF_INET) {
		server = dns_server(ctx);
		if (server)
			show_server4(ctx, server);
		return 1;
	}
	show_server4(ctx, &orig->dst);
	return 1;
}

SEC("cgroup/getpeername6")
int wisp_getpeername6(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct orig_dst *orig = bpf_map_lookup_elem(&wisp_orig_by_cookie, &cookie);
	struct endpoint *server;

	if (!orig || !orig->redirected) {
		server = dns_server(ctx);
		if (server)
			show_server6(ctx, server);
		return 1;
	}
	show_server6(ctx, &orig->dst);
	return 1;
}

SEC("cgroup/getsockopt")
int wisp_getsockopt(struct bpf_sockopt *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct tuple key;
	struct orig_dst *orig;
	__u32 family, sport, dport;

	if (ctx->optname != SO_ORIGINAL_DST || !sk || (ctx->level != SOL_IP && ctx->level != SOL_IPV6))
		return 1;
	family = sk->family;
	sport = sk->src_port;
	dport = bpf_ntohs(sk->dst_port);
	if (family == AF_INET) {
		set_v4(&key.local, sk->src_ip4, (__u16)sport);
		set_v4(&key.remote, sk->dst_ip4, (__u16)dport);
	} else if (family == AF_INET6) {
		/* A dual-stack listener's IPv4 connections carry mapped addresses: set_v6 makes them
		 * IPv4, as sockops keyed them. */
		__u32 l[4] = {sk->src_ip6[0], sk->src_ip6[1], sk->src_ip6[2], sk->src_ip6[3]};
		__u32 r[4] = {sk->dst_ip6[0], sk->dst_ip6[1], sk->dst_ip6[2], sk->dst_ip6[3]};
		set_v6(&key.local, l, (__u16)sport);
		set_v6(&key.remote, r, (__u16)dport);
	} else {
		return 1;
	}
	orig = bpf_map_lookup_elem(&wisp_orig_by_tuple, &key);
	if (!orig || !orig->redirected)
		return 1;
	if (ctx->level == SOL_IP) {
		struct sockaddr_in *sin = ctx->optval;
		if (orig->dst.family != AF_INET || (void *)(sin + 1) > ctx->optval_end)
			return 1;
		__u32 addr;
		__builtin_memcpy(&addr, orig->dst.addr, 4);
		sin->sin_family = AF_INET;
		sin->sin_port = bpf_htons(orig->dst.port);
		sin->sin_addr.s_addr = addr;
		ctx->optlen = sizeof(*sin);
		ctx->retval = 0;
		return 1;
	}
	struct sockaddr_in6 *sin6 = ctx->optval;
	if ((void *)(sin6 + 1) > ctx->optval_end)
		return 1;
	__builtin_memset(sin6, 0, sizeof(*sin6));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = bpf_htons(orig->dst.port);
	if (orig->dst.family == AF_INET) {
		/* Asked at the IPv6 level about an IPv4 connection: answer IPv4-mapped. */
		sin6->sin6_addr.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
		__builtin_memcpy(&sin6->sin6_addr.in6_u.u6_addr32[3], orig->dst.addr, 4);
	} else {
		__builtin_memcpy(&sin6->sin6_addr, orig->dst.addr, 16);
	}
	ctx->optlen = sizeof(*sin6);
	ctx->retval = 0;
	return 1;
}

/* TCP and UDP: the agent's UDP listeners live in the pod's namespace too (DNS on 127.0.0.1:15053), and
 * a pod that bound the port first (or beside it, with SO_REUSEPORT) would take its own DNS away. */
static __always_inline int bind_allowed(struct bpf_sock_addr *ctx)
{
	struct config *cfg = config();
	if (!cfg || (ctx->type != SOCK_STREAM && ctx->type != SOCK_DGRAM))
		return 1;
	return is_mesh_port(cfg, bpf_ntohs(ctx->user_port)) ? 0 : 1;
}

SEC("cgroup/bind4")
int wisp_bind4(struct bpf_sock_addr *ctx)
{
	return bind_allowed(ctx);
}

SEC("cgroup/bind6")
int wisp_bind6(struct bpf_sock_addr *ctx)
{
	return bind_allowed(ctx);
}

/* Whether the connection sk_lookup sees is one the agent registered in wisp_own_upstream. */
static __always_inline int is_own_upstream(struct bpf_sk_lookup *ctx)
{
	struct tuple key;
	__u16 remote_port = bpf_ntohs(ctx->remote_port);
	__u16 local_port = (__u16)ctx->local_port;

	if (ctx->family == AF_INET) {
		set_v4(&key.local, ctx->local_ip4, local_port);
		set_v4(&key.remote, ctx->remote_ip4, remote_port);
	} else {
		__u32 l[4] = {ctx->local_ip6[0], ctx->local_ip6[1], ctx->local_ip6[2], ctx->local_ip6[3]};
		__u32 r[4] = {ctx->remote_ip6[0], ctx->remote_ip6[1], ctx->remote_ip6[2], ctx->remote_ip6[3]};
		set_v6(&key.local, l, local_port);
		set_v6(&key.remote, r, remote_port);
	}
	return bpf_map_lookup_elem(&wisp_own_upstream, &key) != 0;
}

SEC("sk_lookup")
int wisp_sk_lookup(struct bpf_sk_lookup *ctx)
{
	struct config *cfg = config();
	struct endpoint dst, src;
	__u16 slot;
	struct bpf_sock *sk;

	if (!cfg || ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	if (ctx->family == AF_INET) {
		set_v4(&dst, ctx->local_ip4, 0);
		set_v4(&src, ctx->remote_ip4, 0);
	} else {
		__u32 l[4] = {ctx->local_ip6[0], ctx->local_ip6[1], ctx->local_ip6[2], ctx->local_ip6[3]};
		__u32 r[4] = {ctx->remote_ip6[0], ctx->remote_ip6[1], ctx->remote_ip6[2], ctx->remote_ip6[3]};
		set_v6(&dst, l, 0);
		set_v6(&src, r, 0);
	}
	if (!bpf_map_lookup_elem(&wisp_pod_ips, &dst) || bpf_map_lookup_elem(&wisp_bypass_src, &src))
		return SK_PASS;
	/* From the pod's own address: the pod talking to itself, or the agent's in-pod connection
	 * to the application. Neither is inbound traffic. */
	if (same_addr(&dst, &src))
		return SK_PASS;
	/* The agent's own connection to the application, from the client's address (the agent's
	 * TransparentUpstream): it must reach the application, not the agent's listener again. Only the
	 * 4-tuple tells it apart: it arrives on the pod's loopback, yet ingress_ifindex is that of the
	 * device holding the pod's address (the kernel sets a local route's rt_iif so), as for a
	 * connection from outside. */
	if (is_own_upstream(ctx))
		return SK_PASS;
	__u16 port = (__u16)ctx->local_port;
	if (port == cfg->hbone_port)
		slot = LISTENER_HBONE;
	else if (is_mesh_port(cfg, port))
		return SK_PASS;
	else
		slot = LISTENER_INBOUND;
	dst.port = slot;
	sk = bpf_map_lookup_elem(&wisp_listeners, &dst);
	if (!sk)
		return SK_PASS;
	bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return SK_PASS;
}
