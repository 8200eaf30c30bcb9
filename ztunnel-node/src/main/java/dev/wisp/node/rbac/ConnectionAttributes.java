package dev.wisp.node.rbac;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import java.net.InetAddress;
import java.util.Optional;

/**
 * What L4 authorization may look at for one inbound connection.
 *
 * @param sourceIp the client's address (from {@code forwarded}, or the TCP peer for plaintext)
 * @param sourceIdentity the SPIFFE ID the client's certificate proved; empty for plaintext
 * @param destinationIp the destination workload's address
 * @param destinationPort the destination workload's port
 */
public record ConnectionAttributes(InetAddress sourceIp, Optional<SpiffeId> sourceIdentity,
        InetAddress destinationIp, int destinationPort) {

    public ConnectionAttributes {
        requireNonNull(sourceIp, "sourceIp");
        requireNonNull(sourceIdentity, "sourceIdentity");
        requireNonNull(destinationIp, "destinationIp");
    }

    /** The source principal as Istio's policies name it: the SPIFFE ID without {@code spiffe://}. */
    public Optional<String> sourcePrincipal() {
        return sourceIdentity.map(SpiffeId::principal);
    }

    /** The source namespace, read from the identity's {@code /ns/<namespace>/} segment. */
    public Optional<String> sourceNamespace() {
        return sourceIdentity.flatMap(id -> {
            String[] parts = id.path().split("/");
            for (int i = 1; i + 1 < parts.length; i++) {
                if (parts[i].equals("ns")) {
                    return Optional.of(parts[i + 1]);
                }
            }
            return Optional.empty();
        });
    }
}
