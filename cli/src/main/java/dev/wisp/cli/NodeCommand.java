package dev.wisp.cli;

import dev.wisp.node.NodeRuntime;
import dev.wisp.node.NodeSettings;
import dev.wisp.node.proxy.HboneClient;
import dev.wisp.node.proxy.Transport;
import dev.wisp.node.proxy.FairShare;
import dev.wisp.node.proxy.WorkloadLimits;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.ArrayList;
import java.util.List;
import dev.wisp.node.wireguard.MeshWireGuard;
import dev.wisp.wireguard.Prefix;
import java.util.concurrent.Callable;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code wisp node}: builds a node agent ({@link NodeRuntime#build}) from its options and runs it
 * until SIGTERM/SIGINT, then drains and closes it. The options' defaults are {@link NodeSettings}'s.
 */
@Command(name = "node", mixinStandardHelpOptions = true, defaultValueProvider = NodeCommand.Defaults.class, description = {
        "Run a node agent: carries workloads' TCP over HBONE (HTTP/2 CONNECT in mutual TLS 1.3).", "",
        "Standalone mode: the mesh state comes from --state (YAML/JSON of Workload, Service, Node and",
        "Authorization resources, see ARCHITECTURE.md) and certificates from the CA in --ca-dir",
        "(created by 'wisp ca init', or here when absent).", "",
        "Control-plane mode: --control-plane HOST:PORT --token-file F (on Kubernetes --service-account-token F)",
        "--ca-bundle F: state by workload",
        "discovery and certificates from the control plane's CA; the last state is kept while it is away.", "",
        "Ports: 15001 outbound, 15006 inbound plaintext, 15008 HBONE, 15080 SOCKS5 (127.0.0.1),",
        "15000 admin (127.0.0.1: /config_dump, /flows, POST /logging?level=), 15020 /metrics, 15021 /healthz/ready;",
        "with a control plane, 4244 /flows over mutual TLS for the control plane's flow relay only (--flows-port);",
        "with --dns-upstream, 15053 DNS (UDP and TCP, 127.0.0.1).", "",
        "Upgrade without dropping connections: start the new agent with the running one's options plus",
        "--takeover. It binds the listeners beside the running agent, re-points capture to itself, then asks it",
        "(POST 127.0.0.1:15000/drain?handover=1) to stop accepting: connections queued on its listeners move",
        "to the new agent, those it carries finish within its --drain-timeout (the rest are reset and counted),",
        "and it exits 0. The new agent is ready (15021) once it holds the admin ports."})
public final class NodeCommand implements Callable<Integer> {
    @Option(names = "--node", required = true, paramLabel = "NAME", description = "This node's name (the Node resource).")
    String node;

    @Option(names = "--state", paramLabel = "FILE", description = "Standalone mode: static state file (YAML or JSON); re-read on SIGHUP is not supported: restart to change it.")
    Path state;

    @Option(names = "--ca-dir", paramLabel = "DIR", description = "Standalone mode: directory of the local mesh CA.")
    Path caDir;

    /** {@code --control-plane}, {@code --token-file}, {@code --ca-bundle}, {@code --trust-domain}. */
    @Mixin
    ControlPlaneLink controlPlane;

    @Option(names = "--service-account-token", paramLabel = "FILE", description = "Control-plane mode on Kubernetes, instead of --token-file: the agent pod's projected service-account token (audience of the control plane's --token-audience), re-read at each call as the kubelet rotates it; the control plane checks it with a TokenReview.")
    Path serviceAccountToken;

    @Option(names = "--bind", paramLabel = "ADDR", description = "Address of the HBONE, outbound, inbound, metrics and readiness listeners (default: ${DEFAULT-VALUE}).")
    String bind;

    @Option(names = "--ports", paramLabel = "LIST", description = "outbound,inbound,hbone,socks5,admin,metrics,readiness; 0 picks a free port (default: ${DEFAULT-VALUE}).")
    String ports;

    @Option(names = "--flows-port", paramLabel = "PORT", description = "Control-plane mode: /flows for the control plane's flow relay, mutual TLS, on --bind (0 picks a free port; -1: not served; default: ${DEFAULT-VALUE}).")
    int flowsPort;

    @Option(names = "--dns-upstream", paramLabel = "IP:PORT", converter = SocketAddressConverter.class, description = "Run the DNS proxy (UDP and TCP on 127.0.0.1, port --dns-port; with --capture also on 127.0.0.1:15053 and [::1]:15053 in each pod, where pods' port-53 traffic to IPv4 and IPv6 servers is sent): mesh service names are answered from the state, other queries go to this resolver. Only local clients are served.")
    InetSocketAddress dnsUpstream;

    @Option(names = "--dns-port", paramLabel = "PORT", description = "With --dns-upstream: the DNS proxy's port (0 picks a free port; default: ${DEFAULT-VALUE}).")
    int dnsPort;

    @Option(names = "--socks5-workload", paramLabel = "UID", description = "The workload a SOCKS5 client on loopback stands for.")
    String socks5Workload;

    @Option(names = "--drain-timeout", paramLabel = "DURATION", description = "How long open connections (outbound, inbound, HBONE streams) may finish after SIGTERM or a hand-over (ISO-8601, default: ${DEFAULT-VALUE}); those still open then are reset and counted (wisp_drain_closed_at_deadline_total and the log).")
    Duration drainTimeout;

    @Option(names = "--takeover", description = "Replace this node's running agent without dropping a connection (an upgrade): bind the same listeners beside it (SO_REUSEPORT; both agents must be of a version that binds so), set net.ipv4.tcp_migrate_req=1 in the node's network namespace, re-point capture's pinned programs to this agent, then ask the running agent on its admin port (POST 127.0.0.1:15000/drain?handover=1) to stop accepting and drain for its --drain-timeout; this agent takes the admin ports once it gives them up. Not with --wireguard.")
    boolean takeover;

    @Option(names = "--workers", paramLabel = "N", description = "I/O threads (0: one per core; default: ${DEFAULT-VALUE}).")
    int workers;

    @Option(names = "--transport", paramLabel = "KIND", description = "Netty's socket transport: nio or io_uring (default: ${DEFAULT-VALUE}); io_uring needs a kernel and a seccomp policy that allow it, and the agent refuses to start when they do not.")
    String transport;

    @Option(names = "--hbone", paramLabel = "PROTOCOL", description = "How this agent dials other agents: h2 (HTTP/2 CONNECT over TLS/TCP), h3 (HTTP/3 CONNECT over QUIC, UDP on the HBONE port) or auto (h3, falling back to h2 when the peer does not answer on QUIC within 1.5 s). When given, it wins over the MeshConfig's spec.hbone.protocol; when not, the MeshConfig decides (h2 when it says nothing), and a change of it applies to new connections while the agent runs. The agent serves both.")
    String hbone;

    @Option(names = "--pool-streams-per-connection", paramLabel = "N", description = "HBONE client pool: streams one TLS connection carries at a time (default: ${DEFAULT-VALUE}).")
    int poolStreams;

    @Option(names = "--pool-idle-timeout", paramLabel = "DURATION", description = "HBONE client pool: how long a connection without streams stays open (ISO-8601, default: ${DEFAULT-VALUE}); PT0S closes it when its last stream ends, so with --pool-streams-per-connection 1 every stream makes its own mTLS handshake (bench/hbone compares that with haproxy).")
    Duration poolIdleTimeout;

    @Option(names = "--workload-connection-rate", paramLabel = "N", description = "Each local workload's new outbound connections per second, after its burst (default: ${DEFAULT-VALUE}); one over it waits for its slot, so that one pod opening connections as fast as it can does not starve the others.")
    double workloadConnectionRate;

    @Option(names = "--workload-connection-burst", paramLabel = "N", description = "Each local workload's new outbound connections that may start at once (default: ${DEFAULT-VALUE}).")
    int workloadConnectionBurst;

    @Option(names = "--workload-connection-wait", paramLabel = "DURATION", description = "How long a workload's connection over its rate may wait for its slot before it is refused, counted in wisp_workload_connections_refused_total and recorded as a failed flow (ISO-8601, default: ${DEFAULT-VALUE}).")
    Duration workloadConnectionWait;

    @Option(names = "--workload-max-connections", paramLabel = "N", description = "Each local workload's open outbound connections; one more is refused (default: ${DEFAULT-VALUE}).")
    int workloadMaxConnections;

    @Option(names = "--workload-byte-rate", paramLabel = "MIB_PER_S", description = "Each local workload's bytes relayed per second, both directions of all its outbound connections together, in MiB/s (default: ${DEFAULT-VALUE}: no limit); a connection over it stops reading for its share (counted in wisp_workload_bytes_paused_total), so that one pod pushing bytes at full speed does not take the agents' cores from the others.")
    double workloadByteRate;

    @Option(names = "--workload-fair-window", paramLabel = "DURATION", description = "Fair sharing of the agent between local workloads with no fixed rate, off by default (default: ${DEFAULT-VALUE}: off; PT0.02S is the measured setting): within each window of this length (ISO-8601) a workload that used more than --workload-fair-quantum is held until the window ends, reads paused and new connections waiting (wisp_workload_bytes_paused_total, wisp_workload_connections_delayed_total), but only while another workload that used a quantum less is kept waiting (one of its answers later than half a window within the last second, or a request of its unanswered for more than half a window); a workload alone or beside idle ones is never held. Switched at run time with POST /fair/switch?on=1|0 on the admin listener (GET /fair shows it).")
    Duration workloadFairWindow;

    @Option(names = "--workload-fair-quantum", paramLabel = "KIB", description = "What a workload may use per fair-share window before it can be held, in KiB of bytes relayed (default: ${DEFAULT-VALUE}).")
    long workloadFairQuantum;

    @Option(names = "--workload-fair-connection-cost", paramLabel = "KIB", description = "What a new connection is charged against the fair share, in KiB (default: ${DEFAULT-VALUE}; 0: connections are never held by it).")
    long workloadFairConnectionCost;

    @Option(names = "--capture", description = "Capture local pods' TCP with eBPF (needs root): pods come from --pods-dir.")
    boolean capture;

    @Option(names = "--pods-dir", paramLabel = "DIR", description = "With --capture: one <uid>.json per local pod (uid, cgroup, netns, ips), written by the pod plumbing.")
    Path podsDir;

    @Option(names = "--capture-address", paramLabel = "ADDR", description = "With --capture: the node address pods' redirected connects go to (default: the first IPv4 address of the node).")
    String captureAddress;

    @Option(names = "--workload-api-dir", paramLabel = "DIR", description = "With --capture: serve each enrolled pod the SPIFFE Workload API on DIR/<pod uid>/socket (callers attested by their cgroup; mount the pod's directory into the pod).")
    Path workloadApiDir;

    @Option(names = "--discover-pods", description = "With --capture: also enroll pods already running that no pod file announces (started before the agent or its CNI plugin): pods this node runs by the control plane's list, each found by its cgroup in the kubelet's layout under --cgroup-root and the one network namespace of --netns-dir holding all its addresses.")
    boolean discoverPods;

    /** {@code --cgroup-root}, {@code --netns-dir}: where discovery looks for pods on the host. */
    @Mixin
    PodHostOptions podHost;

    @Option(names = "--bpf-pin-root", paramLabel = "DIR", description = "With --capture: where programs and maps are pinned (default: ${DEFAULT-VALUE}).")
    Path pinRoot;

    @Option(names = "--wireguard", description = "Run this node's WireGuard device in the mesh (needs root): pod traffic to other nodes' pod CIDRs goes through it; the key is published to the control plane.")
    boolean wireguard;

    @Option(names = "--wireguard-address", paramLabel = "ADDR", description = "With --wireguard: this node's address, the device's endpoint (required).")
    String wireguardAddress;

    @Option(names = "--wireguard-pod-cidr", paramLabel = "CIDR", description = "With --wireguard: this node's pod CIDR, published to the registry (repeatable). Optional: without it the node's pod CIDRs are those the control plane serves for its Node (on Kubernetes spec.podCIDRs, where a claim outside them is refused).")
    List<String> wireguardPodCidrs = new ArrayList<>();

    @Option(names = "--wireguard-cluster-cidr", paramLabel = "CIDR", description = "With --wireguard: a CIDR holding every node's pods; in strict mode what of it is not this node's is dropped unless routed through the device (repeatable).")
    List<String> wireguardClusterCidrs = new ArrayList<>();

    @Option(names = "--wireguard-state-dir", paramLabel = "DIR", description = "With --wireguard: where the private key is kept, 0600 (required).")
    Path wireguardStateDir;

    @Option(names = "--wireguard-interface", paramLabel = "IFACE", description = "With --wireguard: interface name (default: ${DEFAULT-VALUE}).")
    String wireguardInterface;

    @Option(names = "--wireguard-port", paramLabel = "PORT", description = "With --wireguard: UDP port (default: ${DEFAULT-VALUE}).")
    int wireguardPort;

    @Option(names = "--wireguard-permissive", description = "With --wireguard: without a peer or a device, traffic for other nodes' pods takes the node's other routes (in clear) instead of being dropped (the default, strict).")
    boolean wireguardPermissive;

    @Option(names = "--wireguard-uapi-dir", paramLabel = "DIR", description = "With --wireguard: directory of the UAPI socket that wg(8) uses (default: ${DEFAULT-VALUE}).")
    Path wireguardUapiDir;

    /** The options' defaults, read from {@link NodeSettings} so that they are written once. */
    static final class Defaults implements CommandLine.IDefaultValueProvider {
        private static final NodeSettings DEFAULTS = NodeSettings.of("-", new NodeSettings.Source.Standalone(Path.of(
                "-"), Path.of("-")));
        private static final Map<String, String> BY_OPTION = Map
                .of("--bind", DEFAULTS.bindAddress().getHostAddress(), "--ports", DEFAULTS.ports().toString(),
                        "--drain-timeout", DEFAULTS.drainTimeout().toString(), "--workers", String.valueOf(DEFAULTS
                                .workerThreads()),
                        "--bpf-pin-root", NodeSettings.DEFAULT_PIN_ROOT.toString(), "--pool-streams-per-connection",
                        String
                                .valueOf(DEFAULTS.streamsPerConnection()),
                        "--pool-idle-timeout", DEFAULTS.idleTimeout()
                                .toString(),
                        "--transport", DEFAULTS.transport().label(), "--flows-port",
                        String.valueOf(NodeSettings.DEFAULT_FLOWS_PORT));
        /** The rest (Map.of takes at most ten pairs). */
        private static final Map<String, String> MORE = Map.of("--dns-port", String.valueOf(
                NodeSettings.Dns.DEFAULT_PORT), "--wireguard-interface", "wisp-wg0",
                "--wireguard-port", String.valueOf(MeshWireGuard.Settings.DEFAULT_PORT), "--wireguard-uapi-dir",
                "/var/run/wireguard", "--workload-connection-rate", String.valueOf(DEFAULTS.workloadLimits()
                        .connectionsPerSecond()),
                "--workload-connection-burst", String.valueOf(DEFAULTS
                        .workloadLimits().burst()),
                "--workload-connection-wait", DEFAULTS.workloadLimits()
                        .maxWait().toString(),
                "--workload-max-connections", String.valueOf(
                        DEFAULTS.workloadLimits().maxConnections()),
                "--workload-byte-rate",
                String.valueOf(DEFAULTS.workloadLimits().bytesPerSecond() / (double) (1 << 20)));
        /** And the fair share's. */
        private static final Map<String, String> FAIR = Map.of("--workload-fair-window",
                DEFAULTS.workloadLimits().fair().window().toString(), "--workload-fair-quantum",
                String.valueOf(DEFAULTS.workloadLimits().fair().quantum() / 1024), "--workload-fair-connection-cost",
                String.valueOf(DEFAULTS.workloadLimits().fair().connectionCost() / 1024));

        @Override
        public String defaultValue(CommandLine.Model.ArgSpec argSpec) {
            return argSpec instanceof CommandLine.Model.OptionSpec o
                    ? BY_OPTION.getOrDefault(o.longestName(), MORE.getOrDefault(o.longestName(), FAIR.get(o
                            .longestName())))
                    : null;
        }
    }

    @Override
    public Integer call() throws Exception {
        NodeRuntime runtime;
        try {
            runtime = NodeRuntime.build(settings());
        } catch (IOException | IllegalArgumentException e) {
            throw new UserException(e.getMessage(), e);
        }
        Foreground.holdUntilStopped("wisp-drain", () -> {
            runtime.drain();
            runtime.close();
        }, runtime.handedOver());
        return 0;
    }

    /** The options as {@link NodeSettings}; an inconsistent combination is one clear error. */
    NodeSettings settings() {
        NodeSettings s = NodeSettings.of(node, source()).withTrustDomain(controlPlane.trustDomain())
                .withDrainTimeout(drainTimeout).withTakeover(takeover)
                .withPool(poolStreams, poolIdleTimeout).withWorkerThreads(workers).withLogLevels(LogLevel::set);
        if (flowsPort >= 0) {
            s = s.withFlowsPort(flowsPort);
        }
        s = s.withTransport(parsed("--transport", () -> Transport.Kind.parse(transport)))
                .withBindAddress(parsed("--bind", () -> ip(bind)))
                .withPorts(parsed("--ports", () -> NodeSettings.Ports.parse(ports)))
                .withWorkloadLimits(parsed("--workload-* limits", () -> new WorkloadLimits.Settings(
                        workloadConnectionRate, workloadConnectionBurst, workloadConnectionWait,
                        workloadMaxConnections, Math.round(workloadByteRate * (1 << 20)), new FairShare.Settings(
                                workloadFairWindow, workloadFairQuantum * 1024, workloadFairConnectionCost * 1024))));
        if (hbone != null) {
            s = s.withHboneProtocol(parsed("--hbone", () -> HboneClient.Mode.parse(hbone)));
        }
        if (socks5Workload != null) {
            s = s.withSocks5Workload(socks5Workload);
        }
        if (dnsUpstream != null) {
            s = s.withDns(new NodeSettings.Dns(dnsPort, dnsUpstream));
        }
        if (workloadApiDir != null && !capture) {
            throw new UserException("--workload-api-dir needs --capture (pods and their cgroups come from --pods-dir)");
        }
        if (capture) {
            if (podsDir == null) {
                throw new UserException("--capture needs --pods-dir DIR (where the local pods' files appear)");
            }
            NodeSettings.Capture c = parsed("--capture", () -> new NodeSettings.Capture(podsDir, pinRoot, Optional
                    .ofNullable(captureAddress).map(InetAddress::ofLiteral)));
            c = workloadApiDir == null ? c : c.withWorkloadApiDir(workloadApiDir);
            s = s.withCapture(discoverPods
                    ? c.withDiscovery(new NodeSettings.Discovery(podHost.cgroupRoot, podHost.netnsDirsOrDefault()))
                    : c);
        } else if (discoverPods) {
            throw new UserException("--discover-pods needs --capture");
        }
        if (wireguard) {
            s = s.withWireGuard(wireguardSettings());
        }
        return s;
    }

    private MeshWireGuard.Settings wireguardSettings() {
        if (wireguardAddress == null || wireguardStateDir == null) {
            throw new UserException("--wireguard needs --wireguard-address ADDR (this node's address) and "
                    + "--wireguard-state-dir DIR (where its private key is kept)");
        }
        return parsed("--wireguard", () -> new MeshWireGuard.Settings(wireguardInterface, wireguardStateDir,
                wireguardPort, InetAddress.ofLiteral(wireguardAddress), wireguardPodCidrs.stream().map(Prefix::parse)
                        .toList(),
                wireguardClusterCidrs.stream().map(Prefix::parse).toList(), !wireguardPermissive,
                MeshWireGuard.Settings.DEFAULT_TABLE, wireguardUapiDir));
    }

    /** {@code parse}'s value; an {@link IllegalArgumentException} is the operator's error about {@code option}. */
    private static <T> T parsed(String option, Supplier<T> parse) {
        try {
            return parse.get();
        } catch (IllegalArgumentException e) {
            throw new UserException(option + ": " + e.getMessage());
        }
    }

    private static InetAddress ip(String text) {
        try {
            return InetAddress.ofLiteral(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("'" + text + "' is not an IP address", e);
        }
    }

    private NodeSettings.Source source() {
        ControlPlaneLink cp = controlPlane;
        if (!cp.given()) {
            if (state == null || caDir == null || cp.tokenFile != null || serviceAccountToken != null
                    || cp.caBundle != null) {
                throw new UserException("give either --state and --ca-dir (standalone) or --control-plane, "
                        + "--token-file and --ca-bundle");
            }
            return new NodeSettings.Source.Standalone(state, caDir);
        }
        if ((cp.tokenFile == null) == (serviceAccountToken == null) || cp.caBundle == null || state != null
                || caDir != null) {
            throw new UserException("--control-plane needs --ca-bundle and one of --token-file (local mode) or "
                    + "--service-account-token (Kubernetes), and excludes --state and --ca-dir");
        }
        return cp.tokenFile != null
                ? cp.parse(cp.tokenFile, NodeSettings.Source.Credential.NODE_TOKEN)
                : cp.parse(serviceAccountToken, NodeSettings.Source.Credential.SERVICE_ACCOUNT_TOKEN);
    }
}
