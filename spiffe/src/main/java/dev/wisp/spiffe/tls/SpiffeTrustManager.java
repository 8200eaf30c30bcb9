package dev.wisp.spiffe.tls;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import java.net.Socket;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.Set;
import java.util.function.Supplier;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Verifies peers with {@link SvidVerifier} against the bundle current at each handshake (through the
 * process's {@link VerifiedChains}, which skips the path validation of a chain already accepted
 * under the same bundle and within its validity), and logs
 * one line per rejection saying why (WARN on the client side; DEBUG on the server side, whose
 * caller records refusals itself). A server-side instance checks clients (chain and trust domain);
 * a client-side instance checks servers (chain, trust domain and expected identity).
 *
 * <p>An {@link X509ExtendedTrustManager}, although the checks read neither the socket nor the
 * engine: the JDK wraps a plain {@code X509TrustManager} in one that adds endpoint identification
 * (host name or IP against the SAN), which an SVID (one URI SAN) never passes. gRPC's client turns
 * that on, so the control-plane channel would fail with "No subject alternative names matching IP
 * address" (CertificateServiceTest shows it).
 */
final class SpiffeTrustManager extends X509ExtendedTrustManager {
    private static final Logger log = LoggerFactory.getLogger(SpiffeTls.class);

    private final Supplier<TrustBundle> bundle;
    private final Set<SpiffeId> expectedServerIds;
    private final Clock clock;
    private final boolean serverSide;

    SpiffeTrustManager(Supplier<TrustBundle> bundle, Set<SpiffeId> expectedServerIds, Clock clock,
            boolean serverSide) {
        this.bundle = requireNonNull(bundle, "bundle");
        this.expectedServerIds = Set.copyOf(requireNonNull(expectedServerIds, "expectedServerIds"));
        this.clock = requireNonNull(clock, "clock");
        this.serverSide = serverSide;
    }

    private void check(X509Certificate[] chain, boolean peerIsClient) throws CertificateException {
        if (peerIsClient != serverSide) {
            throw new CertificateException("this trust manager verifies " + (serverSide ? "clients" : "servers")
                    + " only");
        }
        TrustBundle current = bundle.get();
        try {
            VerifiedChains.shared().verify(chain, current, clock.instant(),
                    peerIsClient ? Set.of() : expectedServerIds);
        } catch (PeerRejectedException e) {
            if (serverSide) {
                // Any client can cause this, as often as it likes: the server's caller records the
                // refusal (rate-limited, with the peer's address) from the handshake's cause.
                log.debug("TLS server rejected the client's certificate: {}", e.getMessage());
            } else {
                log.warn("TLS client rejected the server's certificate: {} [chain {}; bundle roots {}]", e.getMessage(),
                        java.util.Arrays.stream(chain).map(c -> c.getSerialNumber().toString(16) + " issued by "
                                + c.getIssuerX500Principal().getName() + " until " + c.getNotAfter().toInstant())
                                .toList(),
                        current.roots().stream().map(r -> r.getSerialNumber().toString(16)).toList());
            }
            throw e;
        }
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        check(chain, true);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
            throws CertificateException {
        check(chain, true);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        check(chain, true);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        check(chain, false);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
            throws CertificateException {
        check(chain, false);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        check(chain, false);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return bundle.get().roots().toArray(X509Certificate[]::new);
    }
}
