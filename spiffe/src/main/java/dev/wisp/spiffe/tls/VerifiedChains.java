package dev.wisp.spiffe.tls;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.tls.PeerRejectedException.Kind;
import java.security.cert.CertificateEncodingException;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * {@link SvidVerifier} with a memory of the chains it has accepted: a chain byte for byte the same
 * as one that passed under an equal trust bundle, looked at inside the validity of every
 * certificate of its path, is not verified again. What is remembered is the SPIFFE ID; the expected
 * identity is checked on every call.
 *
 * <p>Why: every fresh mTLS handshake between two agents verifies the peer's chain (a PKIX path with
 * an ECDSA signature, in Java) on both sides, and the server verifies it once more when the
 * connection's first stream checks that its credentials still hold ({@code PeerChain}). Agents
 * present the same SVID to every peer until it is renewed, so the same few chains come back
 * thousands of times; profiling put the path validation at a tenth to a fifth of the Java time
 * of such a handshake.
 *
 * <p>What can never be served from here: a chain that failed (only accepted chains are
 * remembered), a chain under a bundle that differs from the one it was accepted under (a root added
 * or retired re-verifies, and a chain whose root was retired is refused), a chain looked at before
 * the latest notBefore or after the earliest notAfter of its path (expired or not yet valid), and
 * any other chain: the key is the whole chain's DER encoding, so a certificate with another key,
 * serial or signature is another entry. Revocation is not checked by {@link SvidVerifier} either (an
 * SVID is short-lived and a compromised root is retired from the bundle).
 *
 * <p>Bounded: at most {@code capacity} chains, the least recently used dropped first. Thread-safe
 * (one monitor; the critical sections are a map lookup or insertion, never a verification).
 */
public final class VerifiedChains {
    private static final VerifiedChains SHARED = new VerifiedChains(256);

    private final int capacity;
    private final Verifier verifier;
    /** Guarded by {@code this}: chain encoding to what was verified, in access order. */
    private final Map<ChainKey, Accepted> accepted;

    /** A cache of at most {@code capacity} chains. */
    public VerifiedChains(int capacity) {
        this(capacity, SvidVerifier::verify);
    }

    /** With the full verification given: tests count how often it runs. */
    VerifiedChains(int capacity, Verifier verifier) {
        this.verifier = requireNonNull(verifier, "verifier");
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be at least 1, was " + capacity);
        }
        this.capacity = capacity;
        this.accepted = new LinkedHashMap<>(16, 0.75f, true) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<ChainKey, Accepted> eldest) {
                return size() > VerifiedChains.this.capacity;
            }
        };
    }

    /** The process's cache: the TLS trust managers and the per-stream credential checks share it. */
    public static VerifiedChains shared() {
        return SHARED;
    }

    /**
     * As {@link SvidVerifier#verify}: the peer's SPIFFE ID, or {@link PeerRejectedException} with the
     * reason. A remembered chain skips the path validation; everything else is verified in full.
     */
    public SpiffeId verify(X509Certificate[] chain, TrustBundle bundle, Instant now, Set<SpiffeId> expected)
            throws PeerRejectedException {
        requireNonNull(bundle, "bundle");
        requireNonNull(now, "now");
        requireNonNull(expected, "expected");
        Optional<ChainKey> key = ChainKey.of(chain);
        if (key.isPresent()) {
            Accepted hit;
            synchronized (this) {
                hit = accepted.get(key.get());
            }
            if (hit != null && hit.holds(bundle, now)) {
                if (!expected.isEmpty() && !expected.contains(hit.id())) {
                    throw new PeerRejectedException(Kind.UNEXPECTED_IDENTITY, Optional.of(hit.id()),
                            "the server identity " + hit.id() + " is not one of the expected " + expected, null);
                }
                return hit.id();
            }
        }
        SpiffeId id = verifier.verify(chain, bundle, now, expected);
        if (key.isPresent()) {
            Accepted fresh = Accepted.of(id, chain, bundle);
            synchronized (this) {
                accepted.put(key.get(), fresh);
            }
        }
        return id;
    }

    /** How many chains are remembered (for tests and the admin view). */
    public synchronized int size() {
        return accepted.size();
    }

    /** Forgets every chain. */
    public synchronized void clear() {
        accepted.clear();
    }

    /** The full verification: {@link SvidVerifier#verify}. */
    @FunctionalInterface
    interface Verifier {
        SpiffeId verify(X509Certificate[] chain, TrustBundle bundle, Instant now, Set<SpiffeId> expected)
                throws PeerRejectedException;
    }

    /** A chain's identity for the cache: the DER encoding of each of its certificates, in order. */
    private record ChainKey(byte[][] der, int hash) {
        static Optional<ChainKey> of(X509Certificate[] chain) {
            if (chain == null || chain.length == 0) {
                return Optional.empty();
            }
            byte[][] der = new byte[chain.length][];
            try {
                for (int i = 0; i < chain.length; i++) {
                    der[i] = chain[i].getEncoded();
                }
            } catch (CertificateEncodingException e) {
                return Optional.empty(); // not remembered: verified in full every time
            }
            return Optional.of(new ChainKey(der, Arrays.deepHashCode(der)));
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof ChainKey k && hash == k.hash && Arrays.deepEquals(der, k.der);
        }

        @Override
        public int hashCode() {
            return hash;
        }

        @Override
        public String toString() {
            return "ChainKey[" + der.length + " certificates]";
        }
    }

    /**
     * A chain that passed under {@code bundle}: its identity, and the instants between which every
     * certificate of its path (the chain less the bundle's roots) is valid.
     */
    private record Accepted(SpiffeId id, TrustBundle bundle, Instant validFrom, Instant validUntil) {
        static Accepted of(SpiffeId id, X509Certificate[] chain, TrustBundle bundle) {
            Instant from = Instant.MIN;
            Instant until = Instant.MAX;
            for (X509Certificate cert : chain) {
                if (bundle.contains(cert)) {
                    continue; // a trust anchor: PKIX does not check its validity either
                }
                Instant notBefore = cert.getNotBefore().toInstant();
                Instant notAfter = cert.getNotAfter().toInstant();
                from = notBefore.isAfter(from) ? notBefore : from;
                until = notAfter.isBefore(until) ? notAfter : until;
            }
            return new Accepted(id, bundle, from, until);
        }

        boolean holds(TrustBundle current, Instant now) {
            return (current == bundle || current.equals(bundle)) && !now.isBefore(validFrom)
                    && !now.isAfter(validUntil);
        }
    }
}
