package dev.wisp.spiffe.manager;

import dev.wisp.spiffe.SpiffeId;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Gets a CSR signed: the node agent implements it over gRPC to the control plane's CA; tests call a
 * {@code CertificateAuthority} directly. Implementations may complete on any thread.
 */
@FunctionalInterface
public interface CertificateSigner {
    /**
     * @param id the identity the CSR names (also its URI SAN)
     * @param csrDer the PKCS#10 request, DER
     * @param ttl the lifetime asked for
     * @return the chain, leaf first; or a failed future saying why signing failed
     */
    CompletableFuture<List<X509Certificate>> sign(SpiffeId id, byte[] csrDer, Duration ttl);
}
