package dev.wisp.node.identity;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.tls.PeerRejectedException;
import dev.wisp.spiffe.tls.SvidVerifier;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * What {@code /config_dump} says of the certificates an agent holds and the roots it trusts: for
 * each held SVID its identity, serial, validity and the trusted root its chain ends at (by serial,
 * as {@code wisp ca rotate status} names roots, and by SHA-256 of its DER), so an operator — and
 * the rotation test — sees a chain move from the old root to the new one. Public data only: no key.
 */
public final class HeldCertificates {
    private HeldCertificates() {}

    /**
     * One entry per identity with a valid certificate in {@code held}, ordered by identity;
     * {@code root_serial} is empty when no root of {@code bundle} signed the chain's last certificate
     * (a root retired while a certificate of it is still held).
     */
    public static List<Map<String, Object>> certificates(Iterable<SpiffeId> ids,
            Function<SpiffeId, Optional<X509Svid>> held, TrustBundle bundle) {
        List<Map<String, Object>> out = new ArrayList<>();
        List<SpiffeId> sorted = new ArrayList<>();
        ids.forEach(sorted::add);
        sorted.sort(Comparator.comparing(SpiffeId::toString));
        for (SpiffeId id : sorted) {
            held.apply(id).ifPresent(svid -> {
                Optional<X509Certificate> root = rootOf(svid, bundle);
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("identity", id.toString());
                m.put("serial", serial(svid.leaf()));
                m.put("not_before", svid.notBefore().toString());
                m.put("not_after", svid.notAfter().toString());
                m.put("root_serial", root.map(HeldCertificates::serial).orElse(""));
                m.put("root_sha256", root.map(HeldCertificates::sha256).orElse(""));
                m.put("peers_accept", peersAccept(svid, bundle));
                out.add(m);
            });
        }
        return out;
    }

    /**
     * {@code yes}, or {@code no: } and the reason, as a peer trusting {@code bundle} would decide now
     * (the same check as the TLS handshake's, PKIX included). {@code root_serial} is found by
     * signature alone, so a certificate with a wrong key identifier shows a root there and a
     * {@code no} here.
     */
    static String peersAccept(X509Svid svid, TrustBundle bundle) {
        try {
            SvidVerifier.verify(svid.chain().toArray(X509Certificate[]::new), bundle, java.time.Instant.now(),
                    java.util.Set
                            .of());
            return "yes";
        } catch (PeerRejectedException e) {
            return "no: " + e.getMessage();
        }
    }

    /** The trusted roots, each by serial and SHA-256. */
    public static List<Map<String, Object>> roots(TrustBundle bundle) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (X509Certificate r : bundle.roots()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("serial", serial(r));
            m.put("sha256", sha256(r));
            m.put("not_after", r.getNotAfter().toInstant().toString());
            out.add(m);
        }
        return out;
    }

    /** The root of {@code bundle} whose key signed the last certificate of {@code svid}'s chain. */
    static Optional<X509Certificate> rootOf(X509Svid svid, TrustBundle bundle) {
        X509Certificate top = svid.chain().getLast();
        for (X509Certificate root : bundle.roots()) {
            if (!root.getSubjectX500Principal().equals(top.getIssuerX500Principal())) {
                continue;
            }
            try {
                top.verify(root.getPublicKey());
                return Optional.of(root);
            } catch (GeneralSecurityException notThisOne) {
                // same name, another key: the next root may be it (rotation keeps a root's name)
            }
        }
        return Optional.empty();
    }

    /** Hexadecimal, as the control plane's rotation status prints it. */
    static String serial(X509Certificate c) {
        return c.getSerialNumber().toString(16);
    }

    static String sha256(X509Certificate c) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(c.getEncoded()));
        } catch (NoSuchAlgorithmException | java.security.cert.CertificateEncodingException e) {
            throw new IllegalStateException("cannot fingerprint " + c.getSubjectX500Principal(), e);
        }
    }
}
