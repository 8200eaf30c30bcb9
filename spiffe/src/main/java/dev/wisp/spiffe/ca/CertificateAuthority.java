package dev.wisp.spiffe.ca;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;
import java.io.IOException;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * The mesh's certificate authority: signs PKCS#10 requests into ECDSA P-256 workload certificates
 * with exactly one URI SAN, after checking that the calling node hosts a workload with the requested
 * service account, and serves the trust bundle.
 *
 * <p>Roots rotate without a failed handshake: {@link #addRoot()} adds a new root to the bundle
 * while the old one keeps signing; once every peer has the new bundle, {@link #switchSigning}
 * signs with the new root; once every certificate of the old root has expired or been renewed,
 * {@link #retireRoot} drops the old root from the bundle.
 *
 * <p>Implementations are thread-safe; {@link #sign} runs concurrently without locking.
 */
public interface CertificateAuthority {
    /**
     * The CA kept in {@code directory}: loads it if present (the trust domain must match), otherwise
     * generates a root and writes it there (key file mode 0600, directory 0700).
     */
    static CertificateAuthority createOrLoad(Path directory, CaSettings settings) throws IOException {
        requireNonNull(directory, "directory");
        requireNonNull(settings, "settings");
        return CaDirectory.createOrLoad(directory, settings);
    }

    /**
     * An existing CA directory, with the trust domain and lifetimes it was created with; fails with
     * a message naming the directory if there is none.
     */
    static CertificateAuthority open(Path directory, NodeAuthorizer authorizer) throws IOException {
        requireNonNull(directory, "directory");
        requireNonNull(authorizer, "authorizer");
        return CaDirectory.open(directory, authorizer);
    }

    /**
     * A plug-in CA: a user-supplied signing certificate (a root or an intermediate) and its key, as
     * PEM files. {@code chainPem} lists the signing certificate first and ends with its self-signed
     * root, which becomes the trust bundle; issued chains carry the intermediates.
     */
    static CertificateAuthority pluggedIn(Path chainPem, Path keyPem, CaSettings settings) throws IOException {
        requireNonNull(chainPem, "chainPem");
        requireNonNull(keyPem, "keyPem");
        requireNonNull(settings, "settings");
        return CaDirectory.pluggedIn(chainPem, keyPem, settings);
    }

    /**
     * A plug-in CA in Istio's {@code cacerts} layout ({@code ca-cert.pem}, {@code ca-key.pem},
     * {@code root-cert.pem}, {@code cert-chain.pem} in {@code dir}), checked before use: the key
     * readable by its owner only and matching {@code ca-cert.pem}, which must be a CA certificate;
     * the chain from it ending at {@code root-cert.pem}; every certificate valid now. A refusal is an
     * {@link IllegalArgumentException} naming the file.
     */
    static CertificateAuthority fromCacerts(Path dir, CaSettings settings) throws IOException {
        requireNonNull(dir, "dir");
        requireNonNull(settings, "settings");
        return IstioCaCerts.load(dir, settings, settings.clock().instant());
    }

    /** Whether {@code dir} holds any file of Istio's {@code cacerts} layout (an absent directory: none). */
    static boolean hasCacerts(Path dir) {
        return IstioCaCerts.present(requireNonNull(dir, "dir"));
    }

    /** A CA with a fresh root held only in memory (tests, benchmarks). */
    static CertificateAuthority inMemory(CaSettings settings) {
        requireNonNull(settings, "settings");
        return DefaultCertificateAuthority.generate(settings, CaDirectory.NO_STORAGE);
    }

    String trustDomain();

    CaSettings settings();

    /**
     * Signs a PKCS#10 request (DER, or PEM text as bytes) for the node {@code callerNode}.
     *
     * @param ttl the requested lifetime; {@code null} or non-positive means the default; capped at the
     *        maximum and at the signing certificate's own expiry
     * @return the chain, leaf first, then intermediates (never the root)
     * @throws SigningRefusedException (a subclass saying why) when the request is refused
     */
    List<X509Certificate> sign(byte[] csr, Duration ttl, String callerNode);

    /** Generates a key and signs a request for {@code id}: what {@code wisp ca issue} does. */
    default X509Svid issue(SpiffeId id, Duration ttl, String callerNode) {
        CertificateRequest request = CertificateRequest.generate(id);
        return request.toSvid(sign(request.der(), ttl, callerNode));
    }

    /** The roots that certificates of this trust domain chain to (all of them during rotation). */
    TrustBundle bundle();

    /** The certificate new leaves are signed with. */
    X509Certificate signingCertificate();

    /** The root the signing certificate chains to (itself, unless a plug-in CA signs with an intermediate). */
    X509Certificate signingRoot();

    /** The root {@link #addRoot()} added that does not sign yet: present between steps 1 and 2 of rotation. */
    Optional<X509Certificate> addedRoot();

    /** Step 1 of rotation: generates a new root and adds it to the bundle; signing is unchanged. */
    X509Certificate addRoot() throws IOException;

    /** Step 2 of rotation: signs with {@code root}, which {@link #addRoot()} must have returned. */
    void switchSigning(X509Certificate root) throws IOException;

    /** Step 3 of rotation: removes {@code root} from the bundle; it must no longer be signing. */
    void retireRoot(X509Certificate root) throws IOException;
}
