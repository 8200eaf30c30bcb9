package dev.wisp.controlplane.xds;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.List;
import java.util.Optional;

/**
 * What binds an authenticated credential to its node beyond the credential itself (pure): the node
 * must still be in the live configuration, and the call must come from one of the addresses its
 * {@code Node} object declares, or from a pod on it (an address in one of its declared pod CIDRs). A
 * loopback source passes (it is the control plane's own host, which
 * holds every local token file anyway), as does a node that declares no address (nothing to bind
 * to), a transport without an IP peer (in-process, tests only) and any node before the first valid
 * reading. See ARCHITECTURE.md, "Refusing agents' abuse", for why and for the limits (NAT).
 */
final class NodeBinding {
    /**
     * {@code -Dwisp.controlplane.bindAgentAddresses=false} turns the address check off, for networks
     * that translate agents' source addresses on the way to the control plane.
     */
    static final boolean BIND_ADDRESSES = !"false".equals(System.getProperty("wisp.controlplane.bindAgentAddresses"));

    /** Why a call of an authenticated node is refused. */
    record Refusal(Refusals.Reason reason, String message) {}

    private NodeBinding() {}

    /** Checks a call of {@code node} (authenticated) from {@code remote}; empty when it may go on. */
    static Optional<Refusal> check(String node, SocketAddress remote, NodeDirectory directory, boolean bindAddresses) {
        if (!directory.loaded()) {
            return Optional.empty();
        }
        Optional<List<InetAddress>> declared = directory.addresses(node);
        if (declared.isEmpty()) {
            return Optional.of(new Refusal(Refusals.Reason.NODE_REMOVED, "the credential is node " + node
                    + "'s, and the mesh's configuration has no Node " + node + " (removed?): its agent may "
                    + "connect again once the Node object is back"));
        }
        if (!bindAddresses || declared.get().isEmpty() || !(remote instanceof InetSocketAddress inet)
                || inet.getAddress() == null || inet.getAddress().isLoopbackAddress()
                || declared.get().contains(inet.getAddress()) || directory.inPodCidrs(node, inet.getAddress())) {
            return Optional.empty();
        }
        return Optional.of(new Refusal(Refusals.Reason.CREDENTIAL_OTHER_ADDRESS, "the credential is node " + node
                + "'s, whose Node object declares " + declared.get().stream().map(InetAddress::getHostAddress)
                        .toList()
                + ", and the call came from " + inet.getAddress().getHostAddress()
                + ": is the token copied to another host, or the agent's --node wrong?"));
    }
}
