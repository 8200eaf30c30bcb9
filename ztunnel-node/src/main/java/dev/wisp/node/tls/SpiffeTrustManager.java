package dev.wisp.node.tls;

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * Verifies a peer's X.509-SVID: the chain must lead to one of the trust anchors (PKIX, no
 * revocation) and the leaf must carry a {@code spiffe://} URI SAN in our trust domain. Which
 * identity may do what is decided later (authorization on the server, expected identities on the
 * client); this class answers only "is this a valid SVID of our mesh". Hostname verification does
 * not apply to SPIFFE and is never done.
 */
final class SpiffeTrustManager extends X509ExtendedTrustManager {
    private static final int URI_SAN = 6;
    private final Set<TrustAnchor> anchors;
    private final List<X509Certificate> roots;
    private final String trustDomain;

    SpiffeTrustManager(List<X509Certificate> roots, String trustDomain) {
        this.roots = List.copyOf(roots);
        this.anchors = roots.stream().map(r -> new TrustAnchor(r, null)).collect(Collectors.toUnmodifiableSet());
        this.trustDomain = trustDomain;
    }

    /** The {@code spiffe://} URI SAN of {@code cert}, if it has exactly one. */
    static Optional<String> spiffeId(X509Certificate cert) {
        try {
            var sans = cert.getSubjectAlternativeNames();
            if (sans == null) {
                return Optional.empty();
            }
            List<String> ids = sans.stream().filter(s -> ((Integer) s.get(0)) == URI_SAN)
                    .map(s -> (String) s.get(1)).filter(s -> s.startsWith("spiffe://")).toList();
            return ids.size() == 1 ? Optional.of(ids.getFirst()) : Optional.empty();
        } catch (java.security.cert.CertificateParsingException e) {
            return Optional.empty();
        }
    }

    private void check(X509Certificate[] chain) throws CertificateException {
        if (chain == null || chain.length == 0) {
            throw new CertificateException("peer sent no certificate");
        }
        String id = spiffeId(chain[0]).orElseThrow(
                () -> new CertificateException("peer certificate has no single spiffe:// URI SAN"));
        String rest = id.substring("spiffe://".length());
        int slash = rest.indexOf('/');
        String td = slash < 0 ? rest : rest.substring(0, slash);
        if (!td.equals(trustDomain)) {
            throw new CertificateException("peer " + id + " is not in trust domain " + trustDomain);
        }
        try {
            PKIXParameters params = new PKIXParameters(anchors);
            params.setRevocationEnabled(false);
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            CertPathValidator.getInstance("PKIX").validate(cf.generateCertPath(Arrays.asList(chain)), params);
        } catch (GeneralSecurityException e) {
            throw new CertificateException("peer " + id + ": chain does not lead to this mesh's trust anchors: "
                    + e.getMessage(), e);
        }
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        check(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        check(chain);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
            throws CertificateException {
        check(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
            throws CertificateException {
        check(chain);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        check(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        check(chain);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return roots.toArray(X509Certificate[]::new);
    }
}
