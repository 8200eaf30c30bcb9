package dev.wisp.node;

import static java.util.Objects.requireNonNull;

import dev.wisp.base.HostPort;
import dev.wisp.node.admin.AdminServer;
import dev.wisp.node.proxy.HboneClient;
import dev.wisp.node.proxy.Transport;
import dev.wisp.node.proxy.WorkloadLimits;
import dev.wisp.node.wireguard.MeshWireGuard;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.Consumer;

/**
 * Everything a node agent is built from ({@link NodeRuntime#build}), and every default of it in one
 * place: {@link #of} gives ztunnel's ports and timeouts, the {@code with…} methods change one
 * setting each, and {@code wisp node} offers the same defaults through them.
 *
 * @param nodeName this node's name (its Node resource)
 * @param trustDomain the mesh's SPIFFE trust domain
 * @param source where the state and the certificates come from
 * @param bindAddress address of the HBONE, outbound, inbound, metrics and readiness listeners (SOCKS5
 *            and admin are on loopback)
 * @param ports every listener's port
 * @param capture eBPF capture of the node's pods, when asked for
 * @param socks5Workload the workload (uid) a SOCKS5 client on loopback stands for
 * @param drainTimeout how long open HBONE streams may finish once draining
 * @param idleTimeout how long an idle pooled HBONE connection is kept; zero closes a connection when its
 *            last stream ends (with one stream per connection: an mTLS handshake per connection)
 * @param streamsPerConnection HTTP/2 streams per pooled HBONE connection before another opens
 * @param workerThreads I/O event loops (0: one per core)
 * @param transport Netty's socket transport (NIO by default; io_uring on request)
 * @param connectTimeout for upstream TCP and HBONE connections
 * @param logLevels how {@code POST /logging} changes a level (the launcher owns the logging backend)
 * @param flowsPort where the control plane's flow relay reads {@code /flows} (mutual TLS, on the bind
 *            address; {@link #DEFAULT_FLOWS_PORT}), only with a control plane; empty: not served
 * @param wireguard the node's WireGuard device in the mesh, when asked for (needs root)
 * @param hboneProtocol the HBONE framing this agent dials with ({@code --hbone}): HTTP/2, HTTP/3 or HTTP/3
 *            falling back to HTTP/2 ({@link HboneClient.Mode}); empty: MeshConfig's {@code spec.hbone.protocol}
 *            on this node's Node resource decides, HTTP/2 when it says nothing. The agent serves both
 *            either way
 * @param dns the DNS proxy, when asked for
 * @param workloadLimits each source workload's own limits on new outbound connections (rate, open ones), so
 *            that one pod cannot take the agent from the others
 * @param takeover whether this agent replaces the node's running agent ({@code wisp node --takeover}): it
 *            binds its data listeners beside the running agent's ({@code SO_REUSEPORT}), then asks it on its
 *            admin port to hand over (stop accepting and drain) and binds the admin ports once they are free
 */
public record NodeSettings(String nodeName, String trustDomain, Source source, InetAddress bindAddress, Ports ports,
        Optional<Capture> capture, Optional<String> socks5Workload, Duration drainTimeout, Duration idleTimeout,
        int streamsPerConnection, int workerThreads, Transport.Kind transport, Duration connectTimeout,
        AdminServer.LogLevels logLevels, OptionalInt flowsPort, Optional<MeshWireGuard.Settings> wireguard,
        Optional<HboneClient.Mode> hboneProtocol, Optional<Dns> dns, WorkloadLimits.Settings workloadLimits,
        boolean takeover) {

    public static final String DEFAULT_TRUST_DOMAIN = "cluster.local";
    public static final InetAddress DEFAULT_BIND = InetAddress.ofLiteral("0.0.0.0");
    public static final Duration DEFAULT_DRAIN_TIMEOUT = Duration.ofSeconds(30);
    public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofMinutes(5);
    public static final int DEFAULT_STREAMS_PER_CONNECTION = 100;
    /** NIO until io_uring has been measured faster on a quiet machine (ARCHITECTURE.md, "Event loops"). */
    public static final Transport.Kind DEFAULT_TRANSPORT = Transport.Kind.NIO;
    /** No flag: the MeshConfig decides (HTTP/2 unless it says otherwise; ARCHITECTURE.md, "HBONE over HTTP/3"). */
    public static final Optional<HboneClient.Mode> DEFAULT_HBONE_PROTOCOL = Optional.empty();
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
    /** Where capture pins its programs and maps unless told otherwise (one root per agent on a machine). */
    public static final Path DEFAULT_PIN_ROOT = Path.of("/sys/fs/bpf/wisp");
    /** How many capture flow events {@code /flows} keeps. */
    public static final int CAPTURE_FLOW_CAPACITY = 1000;
    /** The flow relay's port on each agent (Hubble's peer port, as Cilium's relay reads its agents). */
    public static final int DEFAULT_FLOWS_PORT = 4244;
    private static final AdminServer.LogLevels NO_LOG_LEVELS = (logger, level) -> {
        throw new IllegalArgumentException("changing log levels is not supported by this launcher");
    };

    public NodeSettings {
        if (requireNonNull(nodeName, "nodeName").isBlank() || requireNonNull(trustDomain, "trustDomain").isBlank()) {
            throw new IllegalArgumentException("the node name and the trust domain must not be empty");
        }
        requireNonNull(source, "source");
        requireNonNull(bindAddress, "bindAddress");
        requireNonNull(ports, "ports");
        requireNonNull(socks5Workload, "socks5Workload");
        requireNonNull(logLevels, "logLevels");
        requireNonNull(transport, "transport");
        requireNonNull(hboneProtocol, "hboneProtocol");
        requireNonNull(wireguard, "wireguard");
        requireNonNull(dns, "dns");
        requireNonNull(workloadLimits, "workloadLimits");
        requireNonNull(flowsPort, "flowsPort");
        if (flowsPort.isPresent() && (flowsPort.getAsInt() < 0 || flowsPort.getAsInt() > 65535)) {
            throw new IllegalArgumentException("flows port " + flowsPort.getAsInt() + " is outside 0-65535");
        }
        if (requireNonNull(drainTimeout, "drainTimeout").isNegative() || requireNonNull(idleTimeout, "idleTimeout")
                .isNegative() || !positive(connectTimeout, "connectTimeout")) {
            throw new IllegalArgumentException("timeouts must be positive (drain and idle may be 0): drain "
                    + drainTimeout
                    + ", idle " + idleTimeout + ", connect " + connectTimeout);
        }
        if (streamsPerConnection < 1) {
            throw new IllegalArgumentException("streams per connection must be at least 1, not "
                    + streamsPerConnection);
        }
        if (workerThreads < 0) {
            throw new IllegalArgumentException("worker threads must be 0 (one per core) or more, not " + workerThreads);
        }
        if (requireNonNull(capture, "capture").isPresent()
                && (ports.outbound() == 0 || ports.inboundPlaintext() == 0)) {
            throw new IllegalArgumentException("capture needs fixed outbound and inbound ports, not 0: the eBPF "
                    + "programs redirect pods' connections to them");
        }
        if (takeover && (wireguard.isPresent() || ports.admin() == 0)) {
            throw new IllegalArgumentException("--takeover needs the running agent's fixed admin port (not 0) and "
                    + "no WireGuard device (two agents cannot run one node's device)");
        }
    }

    private static boolean positive(Duration d, String name) {
        return !requireNonNull(d, name).isNegative() && !d.isZero();
    }

    /** A node {@code nodeName} fed by {@code source}, with every other setting at its default. */
    public static NodeSettings of(String nodeName, Source source) {
        return new NodeSettings(nodeName, DEFAULT_TRUST_DOMAIN, source, DEFAULT_BIND, Ports.ZTUNNEL, Optional.empty(),
                Optional.empty(), DEFAULT_DRAIN_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_STREAMS_PER_CONNECTION, 0,
                DEFAULT_TRANSPORT, DEFAULT_CONNECT_TIMEOUT, NO_LOG_LEVELS, OptionalInt.empty(), Optional.empty(),
                DEFAULT_HBONE_PROTOCOL, Optional.empty(), WorkloadLimits.Settings.DEFAULTS, false);
    }

    public NodeSettings withTrustDomain(String td) {
        return with(c -> c.trustDomain = td);
    }

    public NodeSettings withBindAddress(InetAddress a) {
        return with(c -> c.bindAddress = a);
    }

    public NodeSettings withPorts(Ports p) {
        return with(c -> c.ports = p);
    }

    public NodeSettings withCapture(Capture c) {
        return with(x -> x.capture = Optional.of(c));
    }

    public NodeSettings withSocks5Workload(String uid) {
        return with(c -> c.socks5Workload = Optional.of(uid));
    }

    public NodeSettings withDrainTimeout(Duration d) {
        return with(c -> c.drainTimeout = d);
    }

    /** The HBONE client pool: streams one connection carries at a time, and how long an idle one is kept. */
    public NodeSettings withPool(int streams, Duration idle) {
        return with(c -> {
            c.streamsPerConnection = streams;
            c.idleTimeout = idle;
        });
    }

    public NodeSettings withWorkerThreads(int n) {
        return with(c -> c.workerThreads = n);
    }

    /** Netty's socket transport for every listener and upstream connection. */
    public NodeSettings withTransport(Transport.Kind t) {
        return with(c -> c.transport = t);
    }

    /** The HBONE framing this agent dials other agents with, whatever the MeshConfig says. */
    public NodeSettings withHboneProtocol(HboneClient.Mode m) {
        return with(c -> c.hboneProtocol = Optional.of(m));
    }

    /** Runs the node's WireGuard device in the mesh. */
    public NodeSettings withWireGuard(MeshWireGuard.Settings w) {
        return with(c -> c.wireguard = Optional.of(w));
    }

    /** Runs the DNS proxy ({@link Dns}). */
    public NodeSettings withDns(Dns d) {
        return with(c -> c.dns = Optional.of(d));
    }

    public NodeSettings withLogLevels(AdminServer.LogLevels l) {
        return with(c -> c.logLevels = l);
    }

    /** Each source workload's limits on new outbound connections. */
    public NodeSettings withWorkloadLimits(WorkloadLimits.Settings l) {
        return with(c -> c.workloadLimits = l);
    }

    /** Replaces the node's running agent rather than starting beside none (see {@link #takeover()}). */
    public NodeSettings withTakeover(boolean t) {
        return with(c -> c.takeover = t);
    }

    /** Serves {@code /flows} to the control plane's relay on {@code port} (0: a free port). */
    public NodeSettings withFlowsPort(int port) {
        return with(c -> c.flowsPort = OptionalInt.of(port));
    }

    /** These settings with {@code change} made to a copy of them, checked again by the canonical constructor. */
    private NodeSettings with(Consumer<Copy> change) {
        Copy c = new Copy(this);
        change.accept(c);
        return new NodeSettings(c.nodeName, c.trustDomain, c.source, c.bindAddress, c.ports, c.capture,
                c.socks5Workload, c.drainTimeout, c.idleTimeout, c.streamsPerConnection, c.workerThreads, c.transport,
                c.connectTimeout, c.logLevels, c.flowsPort, c.wireguard, c.hboneProtocol, c.dns, c.workloadLimits,
                c.takeover);
    }

    /**
     * The components of a {@link NodeSettings} while one {@code with…} method changes some: the one place
     * that lists them all besides the record header, so a new component is added here, not in every method.
     */
    private static final class Copy {
        String nodeName;
        String trustDomain;
        Source source;
        InetAddress bindAddress;
        Ports ports;
        Optional<Capture> capture;
        Optional<String> socks5Workload;
        Duration drainTimeout;
        Duration idleTimeout;
        int streamsPerConnection;
        int workerThreads;
        Transport.Kind transport;
        Duration connectTimeout;
        AdminServer.LogLevels logLevels;
        OptionalInt flowsPort;
        Optional<MeshWireGuard.Settings> wireguard;
        Optional<HboneClient.Mode> hboneProtocol;
        Optional<Dns> dns;
        WorkloadLimits.Settings workloadLimits;
        boolean takeover;

        Copy(NodeSettings s) {
            nodeName = s.nodeName;
            trustDomain = s.trustDomain;
            source = s.source;
            bindAddress = s.bindAddress;
            ports = s.ports;
            capture = s.capture;
            socks5Workload = s.socks5Workload;
            drainTimeout = s.drainTimeout;
            idleTimeout = s.idleTimeout;
            streamsPerConnection = s.streamsPerConnection;
            workerThreads = s.workerThreads;
            transport = s.transport;
            connectTimeout = s.connectTimeout;
            logLevels = s.logLevels;
            flowsPort = s.flowsPort;
            wireguard = s.wireguard;
            hboneProtocol = s.hboneProtocol;
            dns = s.dns;
            workloadLimits = s.workloadLimits;
            takeover = s.takeover;
        }
    }

    /**
     * The agent's listener ports; 0 picks a free port (tests).
     *
     * @param outbound captured outbound TCP (15001)
     * @param inboundPlaintext plaintext inbound, captured or from outside the mesh (15006)
     * @param hbone HBONE, mTLS HTTP/2 CONNECT from other nodes (15008)
     * @param socks5 SOCKS5 on loopback (15080)
     * @param admin admin API on loopback (15000)
     * @param metrics Prometheus {@code /metrics} (15020)
     * @param readiness {@code /healthz/ready} (15021)
     */
    public record Ports(int outbound, int inboundPlaintext, int hbone, int socks5, int admin, int metrics,
            int readiness) {
        /** ztunnel's ports. */
        public static final Ports ZTUNNEL = new Ports(15001, 15006, 15008, 15080, 15000, 15020, 15021);
        /** Every port chosen by the kernel: agents side by side in one test JVM. */
        public static final Ports EPHEMERAL = new Ports(0, 0, 0, 0, 0, 0, 0);
        private static final String ORDER = "outbound,inbound,hbone,socks5,admin,metrics,readiness";

        public Ports {
            for (int p : new int[]{outbound, inboundPlaintext, hbone, socks5, admin, metrics, readiness}) {
                if (p < 0 || p > 65535) {
                    throw new IllegalArgumentException("port " + p + " is outside 0-65535");
                }
            }
        }

        /** {@code "outbound,inbound,hbone,socks5,admin,metrics,readiness"}, as {@link #toString} writes it. */
        public static Ports parse(String list) {
            String[] parts = requireNonNull(list, "list").split(",", -1);
            if (parts.length != 7) {
                throw new IllegalArgumentException("needs 7 comma-separated ports (" + ORDER + "), got '"
                        + list + "'");
            }
            int[] p = new int[7];
            for (int i = 0; i < 7; i++) {
                try {
                    p[i] = Integer.parseInt(parts[i].trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("'" + parts[i] + "' is not a port number");
                }
            }
            return new Ports(p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
        }

        /** The HBONE port to dial on nodes whose resource names none. */
        public int hboneOrDefault() {
            return hbone == 0 ? ZTUNNEL.hbone : hbone;
        }

        @Override
        public String toString() {
            return outbound + "," + inboundPlaintext + "," + hbone + "," + socks5 + "," + admin + "," + metrics + ","
                    + readiness;
        }
    }

    /** Where the mesh state and the certificates come from. */
    public sealed interface Source {
        /**
         * Standalone: the state is read once from {@code stateFile} (YAML/JSON of Workload, Service,
         * Node and Authorization resources) and certificates are signed by the CA in {@code caDir},
         * created there when absent.
         */
        record Standalone(Path stateFile, Path caDir) implements Source {
            public Standalone {
                requireNonNull(stateFile, "stateFile");
                requireNonNull(caDir, "caDir");
            }
        }

        /**
         * A control plane: state by workload discovery and certificates from its CA, over TLS to
         * {@code host:port}, authenticated by the node credential in {@code tokenFile}; the control
         * plane must chain to {@code caBundle}.
         */
        record ControlPlane(String host, int port, Path tokenFile, Path caBundle, Credential credential)
                implements
                    Source {
            public ControlPlane {
                requireNonNull(host, "host");
                requireNonNull(tokenFile, "tokenFile");
                requireNonNull(caBundle, "caBundle");
                requireNonNull(credential, "credential");
                if (port <= 0 || port > 65535) {
                    throw new IllegalArgumentException("control plane port " + port + " is outside 1-65535");
                }
            }

            /** With local mode's node token file. */
            public ControlPlane(String host, int port, Path tokenFile, Path caBundle) {
                this(host, port, tokenFile, caBundle, Credential.NODE_TOKEN);
            }

            /** {@code HOST:PORT} or {@code [V6]:PORT}, with local mode's node token file. */
            public static ControlPlane parse(String hostPort, Path tokenFile, Path caBundle) {
                return parse(hostPort, tokenFile, caBundle, Credential.NODE_TOKEN);
            }

            /** {@code HOST:PORT} or {@code [V6]:PORT}. */
            public static ControlPlane parse(String hostPort, Path tokenFile, Path caBundle, Credential credential) {
                HostPort at = HostPort.parse(hostPort);
                return new ControlPlane(at.host(), at.port(), tokenFile, caBundle, credential);
            }
        }

        /** What the token file holds; both are sent as the same bearer credential, read at each call. */
        enum Credential {
            /** Local mode: the token the control plane wrote to {@code <state-dir>/node-credentials/<node>.token}. */
            NODE_TOKEN,
            /**
             * Kubernetes: the agent pod's projected service-account token (its own audience), which
             * the kubelet rotates; the control plane checks it with a TokenReview.
             */
            SERVICE_ACCOUNT_TOKEN
        }
    }

    /**
     * eBPF capture of the node's pods (needs root).
     *
     * @param podsDir one {@code <uid>.json} per local pod, written by the pod plumbing
     * @param pinRoot where programs and maps are pinned (one root per agent on a machine)
     * @param address the node address pods' redirected connects go to (empty: the node's first IPv4
     *            address)
     * @param workloadApiDir where each enrolled pod's SPIFFE Workload API socket is served
     *            ({@code <dir>/<pod uid>/socket}); empty: not served
     * @param discovery how pods already running without a pod file are found (empty: they are not)
     */
    public record Capture(Path podsDir, Path pinRoot, Optional<InetAddress> address, Optional<Path> workloadApiDir,
            Optional<Discovery> discovery) {
        public Capture {
            requireNonNull(podsDir, "podsDir");
            requireNonNull(pinRoot, "pinRoot");
            requireNonNull(address, "address");
            requireNonNull(workloadApiDir, "workloadApiDir");
            requireNonNull(discovery, "discovery");
        }

        /** Without the Workload API or discovery. */
        public Capture(Path podsDir, Path pinRoot, Optional<InetAddress> address) {
            this(podsDir, pinRoot, address, Optional.empty(), Optional.empty());
        }

        /** Finding the pods of this node the control plane lists and no pod file names ({@code PodDiscovery}). */
        public Capture withDiscovery(Discovery d) {
            return new Capture(podsDir, pinRoot, address, workloadApiDir, Optional.of(requireNonNull(d, "d")));
        }

        /** Serving each enrolled pod the Workload API under {@code dir}. */
        public Capture withWorkloadApiDir(Path dir) {
            return new Capture(podsDir, pinRoot, address, Optional.of(requireNonNull(dir, "dir")), discovery);
        }
    }

    /**
     * Where the agent looks for pods that run without a pod file.
     *
     * @param cgroupRoot the host's cgroup v2 root, under which the kubelet lays out pods' cgroups
     * @param netnsDirs where the container runtime pins pods' network namespaces
     */
    public record Discovery(Path cgroupRoot, List<Path> netnsDirs) {
        public Discovery {
            requireNonNull(cgroupRoot, "cgroupRoot");
            netnsDirs = List.copyOf(netnsDirs);
            if (netnsDirs.isEmpty()) {
                throw new IllegalArgumentException("discovery needs at least one network namespace directory");
            }
        }
    }

    /**
     * The DNS proxy: pods' queries for mesh service names are answered from the agent's state, the
     * rest relayed to {@code upstream}.
     *
     * @param port UDP and TCP port on the bind address ({@link #DEFAULT_PORT}; 0: a free port)
     * @param upstream the resolver everything but mesh names goes to
     */
    public record Dns(int port, InetSocketAddress upstream) {
        /** ztunnel's DNS proxy port. */
        public static final int DEFAULT_PORT = 15053;

        public Dns {
            requireNonNull(upstream, "upstream");
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("DNS port " + port + " is outside 0-65535");
            }
            if (upstream.isUnresolved() || upstream.getPort() == 0) {
                throw new IllegalArgumentException("the DNS upstream " + upstream
                        + " needs an IP address and a port");
            }
        }
    }
}
