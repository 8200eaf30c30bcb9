package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import java.net.InetSocketAddress;
import java.util.Comparator;
import java.util.List;

/**
 * What makes two HBONE streams share a TLS connection (ztunnel's key): the identity the client
 * presents, the identities it accepts from the server, and the server's address.
 *
 * @param sourceIdentity the SPIFFE ID presented as client certificate
 * @param destinationIdentities the server SVIDs accepted (any one), sorted
 * @param destination the HBONE server's address (node agent or waypoint, port 15008)
 */
public record PoolKey(SpiffeId sourceIdentity, List<SpiffeId> destinationIdentities,
        InetSocketAddress destination) {
    public PoolKey {
        requireNonNull(sourceIdentity, "sourceIdentity");
        destinationIdentities = destinationIdentities.stream().distinct()
                .sorted(Comparator.comparing(SpiffeId::toString)).toList();
        requireNonNull(destination, "destination");
    }
}
