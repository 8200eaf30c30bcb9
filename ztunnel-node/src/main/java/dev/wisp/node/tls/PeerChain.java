package dev.wisp.node.tls;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.tls.PeerRejectedException;
import dev.wisp.spiffe.tls.SvidVerifier;
import dev.wisp.spiffe.tls.VerifiedChains;
import java.security.cert.Certificate;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Whether the certificate chain a connection's peer was verified with at its handshake still holds
 * now: no certificate of the chain past its notAfter (the leaf or any other the peer sent), and a
 * path to a root of the trust bundle of now — a root retired since the handshake breaks it. A TLS
 * connection is verified once, at its handshake; this is what keeps a long-lived connection from
 * outliving the credentials it was admitted with.
 *
 * <p>Cheap per stream: the chain is verified again ({@link SvidVerifier}: signatures, path) only when
 * the bundle differs from the one it was last verified against (and then through
 * {@link VerifiedChains}, where the handshake left it: the first stream of a connection does not
 * validate the path a second time), and the expiry check is a
 * comparison with the chain's earliest notAfter. Once stale, a chain stays stale (its connection is
 * being closed). Thread-safe.
 */
public final class PeerChain {
    private final X509Certificate[] chain;
    /** The earliest notAfter over the chain. */
    private final Instant notAfter;
    private final X509Certificate expiresFirst;
    /** Guarded by {@code this}: the bundle the chain last verified against, null before the first check. */
    private TrustBundle verified;
    private Optional<String> stale = Optional.empty();

    PeerChain(X509Certificate[] chain) {
        if (chain.length == 0) {
            throw new IllegalArgumentException("a peer chain has at least its leaf");
        }
        this.chain = chain.clone();
        X509Certificate first = chain[0];
        for (X509Certificate c : chain) {
            if (c.getNotAfter().before(first.getNotAfter())) {
                first = c;
            }
        }
        this.expiresFirst = first;
        this.notAfter = first.getNotAfter().toInstant();
    }

    /** The verified peer chain of an established session; empty when the peer presented none. */
    public static Optional<PeerChain> of(SSLSession session) {
        Certificate[] peer;
        try {
            peer = session.getPeerCertificates();
        } catch (SSLPeerUnverifiedException e) {
            return Optional.empty();
        }
        if (peer == null || peer.length == 0 || !Arrays.stream(peer).allMatch(X509Certificate.class::isInstance)) {
            return Optional.empty();
        }
        return Optional.of(new PeerChain(Arrays.stream(peer).map(X509Certificate.class::cast)
                .toArray(X509Certificate[]::new)));
    }

    /** When the first certificate of the chain expires. */
    public Instant notAfter() {
        return notAfter;
    }

    /**
     * How a message names {@code cert}: its subject, or for an SVID (whose subject is empty) its URI
     * SAN, the SPIFFE ID; the serial when it has neither.
     */
    static String name(X509Certificate cert) {
        String subject = cert.getSubjectX500Principal().getName();
        if (!subject.isEmpty()) {
            return subject;
        }
        try {
            Collection<List<?>> sans = cert.getSubjectAlternativeNames();
            if (sans != null) {
                for (List<?> san : sans) {
                    if (Integer.valueOf(6).equals(san.get(0))) { // uniformResourceIdentifier
                        return String.valueOf(san.get(1));
                    }
                }
            }
        } catch (CertificateParsingException e) {
            // named by serial below
        }
        return "serial " + cert.getSerialNumber().toString(16);
    }

    /** Why the chain no longer holds under {@code bundle} at {@code now}; empty while it does. */
    public synchronized Optional<String> stale(TrustBundle bundle, Instant now) {
        requireNonNull(bundle, "bundle");
        if (stale.isPresent()) {
            return stale;
        }
        if (now.isAfter(notAfter)) {
            stale = Optional.of("the peer's certificate " + name(expiresFirst) + (expiresFirst == chain[0]
                    ? ""
                    : " (in its chain)") + " expired at " + notAfter);
            return stale;
        }
        if (bundle == verified || bundle.equals(verified)) { // the same bundle object until the roots change
            return Optional.empty();
        }
        try {
            VerifiedChains.shared().verify(chain, bundle, now, Set.of());
            verified = bundle;
        } catch (PeerRejectedException e) {
            stale = Optional.of(e.getMessage());
        }
        return stale;
    }
}
