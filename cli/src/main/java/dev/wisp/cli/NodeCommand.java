package dev.wisp.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.wisp.node.NodeAgent;
import dev.wisp.node.NodeConfig;
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
        "Ports: 15001 outbound, 15006 inbound plaintext, 15008 HBONE, 15080 SOCKS5 (127.0.0.1),",
        "15000 admin (127.0.0.1: /config_dump, POST /logging?level=), 15020 /metrics, 15021 /healthz/ready."})
public final class NodeCommand implements Callable<Integer> {
    @Option(names = "--node", required = true, paramLabel = "NAME", description = "This node's name (the Node resource).")
    String node;

    @Option(names = "--state", required = true, paramLabel = "FILE", description = "Static state file (YAML or JSON); re-read on SIGHUP is not supported: restart to change it.")
    Path state;

    @Option(names = "--ca-dir", required = true, paramLabel = "DIR", description = "Directory of the local mesh CA.")
    Path caDir;

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
        CertificateAuthority ca;
        try {
            ca = CertificateAuthority.createOrLoad(caDir, CaSettings.of(trustDomain, NodeAuthorizer.unrestricted()));
        } catch (IOException e) {
            throw new UserException("cannot open the CA in " + caDir + ": " + e.getMessage(), e);
        }
        WorkloadIndex index = WorkloadIndex.create();
        try {
            StateFile.load(state, index);
        } catch (IOException | InvalidResourceException e) {
            throw new UserException("cannot load the state file " + state + ": " + e.getMessage(), e);
        }
        Identities identities = Identities.local(ca, node);
        NodeConfig.Builder config = NodeConfig.builder(node, identities).bindAddress(InetAddress.ofLiteral(bind))
                .ports(p[0], p[1], p[2], p[3], p[4], p[5], p[6]).drainTimeout(drainTimeout).workerThreads(workers)
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
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (nodeCapture != null) {
                nodeCapture.close();
            }
            agent.drain();
            agent.close();
            identities.close();
            stopped.countDown();
        }, "wisp-drain"));
        stopped.await();
        return 0;
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
