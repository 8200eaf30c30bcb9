package dev.wisp.controlplane.model;

import static java.util.Objects.requireNonNull;

import dev.wisp.base.IpText;
import java.net.InetSocketAddress;
import java.util.List;

/**
 * A node's WireGuard entry as the key registry accepted it from that node's own agent: its public
 * key (base64), the UDP endpoint its device listens on, and the pod CIDRs the other nodes route to
 * it through WireGuard.
 */
public record WireGuardEntry(String publicKey, InetSocketAddress endpoint, List<Cidr> podCidrs) {
    public WireGuardEntry {
        requireNonNull(publicKey, "publicKey");
        requireNonNull(endpoint, "endpoint");
        podCidrs = List.copyOf(requireNonNull(podCidrs, "podCidrs"));
    }

    /** {@code ip:port}, {@code [v6]:port} for IPv6. */
    public String endpointText() {
        return IpText.hostPort(endpoint);
    }
}
