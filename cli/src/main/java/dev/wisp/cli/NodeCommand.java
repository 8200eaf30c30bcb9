package dev.wisp.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.wisp.node.NodeAgent;
import dev.wisp.node.NodeConfig;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.node.capture.NodeCapture;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.proxy.OriginalDestinationResolver;
import dev.wisp.node.state.InvalidResourceException;
import dev.wisp.node.state.StateFile;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code wisp node}: runs a node agent (HBONE server, outbound/inbound/SOCKS5 listeners, admin,
 * metrics, readiness) until SIGTERM/SIGINT, then drains: stops accepting, sends GOAWAY, lets open
 * streams finish up to {@code --drain-timeout}.
 */
@Command(name = "node", mixinStandardHelpOptions = true, description = {
        "Run a node agent: carries workloads' TCP over HBONE (HTTP/2 CONNECT in mutual TLS 1.3).", "",
        "Standalone mode: the mesh state comes from --state (YAML/JSON of Workload, Service, Node and",
        "Authorization resources, see ARCHITECTURE.md) and certificates from the CA in --ca-dir",
        "(created by 'wisp ca init', or here when absent).", "",
        "Control-plane mode: --control-plane HOST:PORT --token-file F --ca-bundle F: state by workload",
        "discovery and certificates from the control plane's CA; the last state is kept while it is away.", "",
        "Ports: 15001 outbound, 15006 inbound plaintext, 15008 HBONE, 15080 SOCKS5 (127.0.0.1),",
        "15000 admin (127.0.0.1: /config_dump, POST /logging?level=), 15020 /metrics, 15021 /healthz/ready."})
public final class NodeCommand implements Callable<Integer> {
    @Option(names = "--node", required = true, paramLabel = "NAME", description = "This node's name (the Node resource).")
    String node;

    @Option(names = "--state", paramLabel = "FILE", description = "Standalone mode: static state file (YAML or JSON); re-read on SIGHUP is not supported: restart to change it.")
    Path state;

    @Option(names = "--ca-dir", paramLabel = "DIR", description = "Standalone mode: directory of the local mesh CA.")
    Path caDir;

    @Option(names = "--control-plane", paramLabel = "HOST:PORT", description = "Control-plane mode: the control plane's gRPC port (workload discovery and certificates over TLS).")
    String controlPlane;

    @Option(names = "--token-file", paramLabel = "FILE", description = "Control-plane mode: this node's credential (<state-dir>/node-credentials/<node>.token of the control plane).")
    Path tokenFile;

    @Option(names = "--ca-bundle", paramLabel = "FILE", description = "Control-plane mode: the mesh CA's roots (<state-dir>/ca/bundle.pem of the control plane), to verify the control plane.")
    Path caBundle;

    @Option(names = "--trust-domain", defaultValue = "cluster.local", paramLabel = "TD", description = "Trust domain (default: ${DEFAULT-VALUE}).")
    String trustDomain;

    @Option(names = "--bind", defaultValue = "0.0.0.0", paramLabel = "ADDR", description = "Address of the HBONE, outbound, inbound, metrics and readiness listeners (default: ${DEFAULT-VALUE}).")
    String bind;

    @Option(names = "--ports", defaultValue = "15001,15006,15008,15080,15000,15020,15021", paramLabel = "LIST", description = "outbound,inbound,hbone,socks5,admin,metrics,readiness (default: ${DEFAULT-VALUE}).")
    String ports;

    @Option(names = "--socks5-workload", paramLabel = "UID", description = "The workload a SOCKS5 client on loopback stands for.")
    String socks5Workload;

    @Option(names = "--drain-timeout", defaultValue = "PT30S", paramLabel = "DURATION", description = "How long open streams may finish after SIGTERM (ISO-8601, default: ${DEFAULT-VALUE}).")
    Duration drainTimeout;

    @Option(names = "--workers", defaultValue = "0", paramLabel = "N", description = "I/O threads (0: one per core).")
    int workers;

    @Option(names = "--pool-streams-per-connection", defaultValue = "100", paramLabel = "N", description = "HBONE client pool: streams one TLS connection carries at a time (default: ${DEFAULT-VALUE}).")
    int poolStreams;

    @Option(names = "--pool-idle-timeout", defaultValue = "PT5M", paramLabel = "DURATION", description = "HBONE client pool: how long a connection without streams stays open (ISO-8601, default: ${DEFAULT-VALUE}); PT0S closes it when its last stream ends, so with --pool-streams-per-connection 1 every stream makes its own mTLS handshake (bench/hbone compares that with haproxy).")
    Duration poolIdleTimeout;

    @Option(names = "--capture", description = "Capture local pods' TCP with eBPF (needs root): pods come from --pods-dir.")
    boolean capture;

    @Option(names = "--pods-dir", paramLabel = "DIR", description = "With --capture: one <uid>.json per local pod (uid, cgroup, netns, ips), written by the pod plumbing.")
    Path podsDir;

    @Option(names = "--capture-address", paramLabel = "ADDR", description = "With --capture: the node address pods' redirected connects go to (default: the first IPv4 address of the node).")
    String captureAddress;

    @Option(names = "--bpf-pin-root", defaultValue = "/sys/fs/bpf/wisp", paramLabel = "DIR", description = "With --capture: where programs and maps are pinned (default: ${DEFAULT-VALUE}).")
    Path pinRoot;

    @Override
    public Integer call() throws Exception {
        int[] p = parsePorts(ports);
        WorkloadIndex index = WorkloadIndex.create();
        ControlPlaneClient controlPlaneClient = null;
        Identities identities;
        if (controlPlane != null) {
            controlPlaneClient = connectControlPlane(index);
            identities = Identities.create(trustDomain, controlPlaneClient.signer(), controlPlaneClient.bundle());
        } else {
            identities = standalone(index);
        }
        NodeConfig.Builder config = NodeConfig.builder(node, identities).bindAddress(InetAddress.ofLiteral(bind))
                .ports(p[0], p[1], p[2], p[3], p[4], p[5], p[6]).drainTimeout(drainTimeout).workerThreads(workers)
                .streamsPerConnection(poolStreams).idleTimeout(poolIdleTimeout)
                .resolver(OriginalDestinationResolver.none()).logLevels(NodeCommand::setLevel);
        if (socks5Workload != null) {
            config.socks5Workload(socks5Workload);
        }
        NodeCapture nodeCapture = capture ? openCapture(p[0], p[1]) : null;
        if (nodeCapture != null) {
            config.resolver(nodeCapture.resolver());
        }
        NodeAgent agent;
        try {
            agent = NodeAgent.start(config.build(), index);
        } catch (IOException e) {
            if (nodeCapture != null) {
                nodeCapture.close();
            }
            throw new UserException(e.getMessage(), e);
        }
        if (nodeCapture != null) {
            try {
                nodeCapture.start(agent);
            } catch (IOException e) {
                nodeCapture.close();
                agent.close();
                throw new UserException(e.getMessage(), e);
            }
        }
        CountDownLatch stopped = new CountDownLatch(1);
        ControlPlaneClient cpClient = controlPlaneClient;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (nodeCapture != null) {
                nodeCapture.close();
            }
            agent.drain();
            agent.close();
            if (cpClient != null) {
                cpClient.close();
            }
            identities.close();
            stopped.countDown();
        }, "wisp-drain"));
        stopped.await();
        return 0;
    }

    private Identities standalone(WorkloadIndex index) {
        if (state == null || caDir == null || tokenFile != null || caBundle != null) {
            throw new UserException("give either --state and --ca-dir (standalone) or --control-plane, --token-file "
                    + "and --ca-bundle");
        }
        CertificateAuthority ca;
        try {
            ca = CertificateAuthority.createOrLoad(caDir, CaSettings.of(trustDomain, NodeAuthorizer.unrestricted()));
        } catch (IOException e) {
            throw new UserException("cannot open the CA in " + caDir + ": " + e.getMessage(), e);
        }
        try {
            StateFile.load(state, index);
        } catch (IOException | InvalidResourceException e) {
            throw new UserException("cannot load the state file " + state + ": " + e.getMessage(), e);
        }
        return Identities.local(ca, node);
    }

    private ControlPlaneClient connectControlPlane(WorkloadIndex index) {
        if (tokenFile == null || caBundle == null || state != null || caDir != null) {
            throw new UserException("--control-plane needs --token-file and --ca-bundle, and excludes --state and "
                    + "--ca-dir");
        }
        int colon = controlPlane.lastIndexOf(':');
        int port = -1;
        if (colon > 0) {
            try {
                port = Integer.parseInt(controlPlane.substring(colon + 1));
            } catch (NumberFormatException e) {
                port = -1;
            }
        }
        if (port <= 0 || port > 65535) {
            throw new UserException("--control-plane: '" + controlPlane + "' is not HOST:PORT (e.g. 10.0.0.2:15012)");
        }
        String host = controlPlane.substring(0, colon).replace("[", "").replace("]", "");
        try {
            return ControlPlaneClient.connect(
                    new ControlPlaneClient.Settings(host, port, node, trustDomain, tokenFile, caBundle), index);
        } catch (IOException | RuntimeException e) {
            throw new UserException(e.getMessage(), e);
        }
    }

    private NodeCapture openCapture(int outboundPort, int inboundPort) {
        if (podsDir == null) {
            throw new UserException("--capture needs --pods-dir DIR (where the local pods' files appear)");
        }
        if (outboundPort == 0 || inboundPort == 0) {
            throw new UserException("--capture needs fixed outbound and inbound ports, not 0");
        }
        try {
            InetAddress node = captureAddress != null
                    ? InetAddress.ofLiteral(captureAddress)
                    : NodeCapture.defaultNodeAddress();
            return NodeCapture.open(new NodeCapture.Settings(podsDir, pinRoot, new InetSocketAddress(node,
                    outboundPort), inboundPort, 1000));
        } catch (IOException | IllegalArgumentException e) {
            throw new UserException(e.getMessage(), e);
        }
    }

    static int[] parsePorts(String list) {
        String[] parts = list.split(",");
        if (parts.length != 7) {
            throw new UserException("--ports needs 7 comma-separated ports, got '" + list + "'");
        }
        int[] out = new int[7];
        for (int i = 0; i < 7; i++) {
            try {
                out[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new UserException("--ports: '" + parts[i] + "' is not a port number");
            }
            if (out[i] < 0 || out[i] > 65535) {
                throw new UserException("--ports: " + out[i] + " is outside 0-65535");
            }
        }
        return out;
    }

    static void setLevel(String logger, String level) {
        Level parsed = Level.toLevel(level, null);
        if (parsed == null) {
            throw new IllegalArgumentException("'" + level + "' is not one of error, warn, info, debug, trace");
        }
        ((Logger) LoggerFactory.getLogger(logger)).setLevel(parsed);
    }
}
