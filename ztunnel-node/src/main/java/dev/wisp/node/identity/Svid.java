package dev.wisp.node.identity;

import static java.util.Objects.requireNonNull;

import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.List;

/**
 * An X.509-SVID the agent holds for one identity: the key and the chain (leaf first). The key never
 * leaves the process and is never logged ({@link #toString} omits it).
 *
 * @param spiffeId the identity, {@code spiffe://<trust domain>/...}
 * @param key the leaf's private key
 * @param chain leaf first, without the trust anchor
 */
public record Svid(String spiffeId, PrivateKey key, List<X509Certificate> chain) {
    public Svid {
        requireNonNull(spiffeId, "spiffeId");
        requireNonNull(key, "key");
        chain = List.copyOf(chain);
        if (chain.isEmpty()) {
            throw new IllegalArgumentException("an SVID needs at least its leaf certificate");
        }
    }

    public X509Certificate leaf() {
        return chain.getFirst();
    }

    /** When this SVID should be replaced: half its validity, as ztunnel and Istio renew. */
    public Instant renewAt() {
        Instant from = leaf().getNotBefore().toInstant();
        Instant to = leaf().getNotAfter().toInstant();
        return from.plusMillis((to.toEpochMilli() - from.toEpochMilli()) / 2);
    }

    @Override
    public String toString() {
        return "Svid[" + spiffeId + ", serial " + leaf().getSerialNumber().toString(16) + ", until "
                + leaf().getNotAfter().toInstant() + "]";
    }
}
