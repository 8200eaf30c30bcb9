package dev.wisp.node.rbac;

import static java.util.Objects.requireNonNull;

import java.net.InetAddress;
import java.util.Optional;

/**
 * What L4 authorization may look at for one inbound connection.
 *
 * @param sourceIp the client's address (from {@code forwarded}, or the TCP peer for plaintext)
 * @param sourcePrincipal the client's SPIFFE ID without {@code spiffe://}; empty for plaintext
 * @param destinationIp the destination workload's address
 * @param destinationPort the destination workload's port
 */
public record ConnectionAttributes(InetAddress sourceIp, Optional<String> sourcePrincipal, InetAddress destinationIp,
        int destinationPort) {

    public ConnectionAttributes {
        requireNonNull(sourceIp, "sourceIp");
        requireNonNull(sourcePrincipal, "sourcePrincipal");
        requireNonNull(destinationIp, "destinationIp");
        sourcePrincipal = sourcePrincipal.map(p -> p.startsWith("spiffe://") ? p.substring("spiffe://".length()) : p);
    }

    /** The source namespace, read from the principal's {@code /ns/<namespace>/} segment. */
    public Optional<String> sourceNamespace() {
        return sourcePrincipal.flatMap(p -> {
            String[] parts = p.split("/");
            for (int i = 1; i + 1 < parts.length; i++) {
                if (parts[i].equals("ns")) {
                    return Optional.of(parts[i + 1]);
                }
            }
            return Optional.empty();
        });
    }
}
