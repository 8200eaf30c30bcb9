package dev.wisp.cli;

import dev.wisp.node.NodeSettings;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.base.HostPort;
import dev.wisp.local.InNetns;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code wisp wireguard rotate}: asks a node agent to rotate its WireGuard key ({@code POST
 * /wireguard/rotate} on its admin listener, which is on loopback only): in a local cluster inside the
 * node's network namespace, otherwise on this host. With {@code --wait} it follows the rotation
 * ({@code GET /wireguard}) until the old key is dropped.
 */
@Command(name = "rotate", mixinStandardHelpOptions = true, description = {
        "Rotate a node agent's WireGuard key with no lost traffic: the new public key is published to the control "
                + "plane first, used once the control plane sends it back, and the old key is answered until every "
                + "peer has handshaken with the new one.",
        "Needs root for --cluster: the agent's admin API listens on 127.0.0.1:15000 inside the node's network "
                + "namespace."})
public final class WireguardRotateCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The agent's admin API, on loopback in its node's network namespace. */
    private static final int ADMIN_PORT = NodeSettings.Ports.ZTUNNEL.admin();

    @Option(names = "--cluster", paramLabel = "NAME", description = "Local cluster whose node's agent rotates.")
    String cluster;

    private int node = 1;
    private Integer waitSeconds;

    @Spec
    CommandSpec spec;

    @Option(names = "--node", paramLabel = "N", description = "With --cluster: the node number (default: 1).")
    void node(int n) {
        node = atLeastOne("--node", n);
    }

    @Option(names = "--admin", defaultValue = "127.0.0.1:15000", paramLabel = "HOST:PORT", description = "Without --cluster: the agent's admin API on this host (default: ${DEFAULT-VALUE}).")
    String admin;

    @Option(names = "--wait", paramLabel = "SECONDS", description = "Follow the rotation until it is done, at most this many seconds, e.g. 60.")
    void waitSeconds(int s) {
        waitSeconds = atLeastOne("--wait", s);
    }

    private int atLeastOne(String option, int v) {
        if (v < 1) {
            throw new ParameterException(spec.commandLine(), option + " must be 1 or more");
        }
        return v;
    }

    @Override
    public Integer call() throws Exception {
        String netns = null;
        InetSocketAddress server;
        if (cluster != null) {
            netns = "wisp-" + cluster + "-node" + node;
            server = new InetSocketAddress("127.0.0.1", ADMIN_PORT);
        } else {
            try {
                HostPort hp = HostPort.parse(admin);
                server = new InetSocketAddress(hp.host(), hp.port());
            } catch (IllegalArgumentException e) {
                throw UserException.invalid("--admin: " + e.getMessage());
            }
        }
        PrintWriter out = spec.commandLine().getOut();
        JsonNode status = JSON.readTree(call(netns, server, true));
        out.println("rotating: new public key " + status.path("published_key").asText() + " (phase " + status.path(
                "phase").asText() + ")");
        if (waitSeconds == null) {
            return 0;
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(waitSeconds).toNanos();
        long before = status.path("rotations").asLong();
        while (!status.path("phase").asText().equals("idle") || status.path("rotations").asLong() == before) {
            if (System.nanoTime() > deadline) {
                out.println("not done after " + waitSeconds + " s: phase " + status.path("phase").asText() + ", "
                        + status.path("peers_without_new_key").asInt() + " peer(s) without the new key yet");
                return 1;
            }
            Thread.sleep(500);
            status = JSON.readTree(call(netns, server, false));
        }
        out.println("done: public key " + status.path("public_key").asText() + ", the old key is dropped");
        return 0;
    }

    private String call(String netns, InetSocketAddress server, boolean rotate) {
        try {
            return rotate
                    ? InNetns.httpPost(netns, server, "/wireguard/rotate")
                    : InNetns.httpGet(netns, server, "/wireguard");
        } catch (IOException | RuntimeException e) {
            throw new UserException("the node agent " + (netns == null ? "at " + server : "in " + netns)
                    + " did not rotate: " + e.getMessage());
        }
    }
}
