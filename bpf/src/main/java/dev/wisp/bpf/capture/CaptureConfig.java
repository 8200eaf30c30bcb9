package dev.wisp.bpf.capture;

import static java.util.Objects.requireNonNull;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;

/**
 * How capture steers traffic. {@code outbound4}/{@code outbound6} are the agent's outbound listener
 * (15001) as the pods reach it; either may be null (not both): connects of that family are then left
 * alone ({@code outbound4} is null on an IPv6-only node, {@code outbound6} where the listener takes no IPv6);
 * {@code agentCgroup} is the agent's cgroup v2 directory, where the {@code SO_ORIGINAL_DST} hook is
 * attached; {@code meshPorts} are never redirected and only the agent may bind them;
 * {@code bypassSources} are addresses whose inbound connections are never steered (the agent's own
 * node addresses, or its connections to the app would loop back to it); {@code pinRoot} holds the
 * pinned maps and links (default {@code /sys/fs/bpf/wisp}).
 */
public record CaptureConfig(Path pinRoot, Path agentCgroup, InetSocketAddress outbound4, InetSocketAddress outbound6,
        int inboundPort, int hbonePort, List<Integer> meshPorts, List<InetAddress> bypassSources) {
    /** Istio ambient's ports: outbound, inbound plaintext, HBONE, SOCKS5, admin, metrics, readiness, DNS. */
    public static final List<Integer> MESH_PORTS = List.of(15001, 15006, 15008, 15080, 15000, 15020, 15021, 15053);
    public static final Path DEFAULT_PIN_ROOT = Path.of("/sys/fs/bpf/wisp");

    public CaptureConfig {
        requireNonNull(pinRoot, "pinRoot");
        requireNonNull(agentCgroup, "agentCgroup");
        if (outbound4 == null && outbound6 == null) {
            throw new IllegalArgumentException("no outbound listener: give an IPv4 or an IPv6 one (or both)");
        }
        meshPorts = List.copyOf(requireNonNull(meshPorts, "meshPorts"));
        bypassSources = List.copyOf(requireNonNull(bypassSources, "bypassSources"));
        if (meshPorts.size() > 8) {
            throw new IllegalArgumentException("at most 8 mesh ports fit the eBPF config: " + meshPorts);
        }
        if ((outbound4 != null && outbound4.isUnresolved()) || (outbound6 != null && outbound6.isUnresolved())) {
            throw new IllegalArgumentException("outbound listener addresses must be resolved IP addresses");
        }
    }

    /** The defaults: pins under /sys/fs/bpf/wisp, Istio's ports, no IPv6 listener. */
    public static CaptureConfig of(Path agentCgroup, InetSocketAddress outbound4, List<InetAddress> bypassSources) {
        return new CaptureConfig(DEFAULT_PIN_ROOT, agentCgroup, outbound4, null, 15006, 15008, MESH_PORTS,
                bypassSources);
    }

    /** The defaults, with the outbound listener of each family as given (either may be null, not both). */
    public static CaptureConfig of(Path agentCgroup, InetSocketAddress outbound4, InetSocketAddress outbound6,
            List<InetAddress> bypassSources) {
        return new CaptureConfig(DEFAULT_PIN_ROOT, agentCgroup, outbound4, outbound6, 15006, 15008, MESH_PORTS,
                bypassSources);
    }

    public CaptureConfig withPinRoot(Path root) {
        return new CaptureConfig(root, agentCgroup, outbound4, outbound6, inboundPort, hbonePort, meshPorts,
                bypassSources);
    }

    public CaptureConfig withOutbound6(InetSocketAddress listener) {
        return new CaptureConfig(pinRoot, agentCgroup, outbound4, listener, inboundPort, hbonePort, meshPorts,
                bypassSources);
    }
}
