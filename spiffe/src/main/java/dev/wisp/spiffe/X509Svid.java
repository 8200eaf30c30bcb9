package dev.wisp.spiffe;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.internal.Pem;
import dev.wisp.spiffe.internal.SecureFiles;
import java.io.IOException;
import java.nio.file.Path;
import dev.wisp.spiffe.internal.X509;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.List;

/**
 * An X.509-SVID: a workload's SPIFFE ID, its certificate chain (leaf first, then intermediates up
 * to but excluding the root) and the private key of the leaf. The constructor checks that the leaf
 * carries exactly the one URI SAN {@code id}.
 *
 * <p>{@link #toString()} never shows the private key.
 */
public record X509Svid(SpiffeId id, List<X509Certificate> chain, PrivateKey privateKey) {
    public X509Svid {
        requireNonNull(id, "id");
        requireNonNull(privateKey, "privateKey");
        chain = List.copyOf(requireNonNull(chain, "chain"));
        if (chain.isEmpty()) {
            throw new IllegalArgumentException("an X.509-SVID needs at least its leaf certificate");
        }
        List<String> uris = X509.uriSans(chain.get(0));
        if (!uris.equals(List.of(id.toString()))) {
            throw new IllegalArgumentException(
                    "the leaf certificate's URI SANs " + uris + " are not exactly [" + id + "]");
        }
    }

    /**
     * Reads an SVID from PEM text: the certificate chain (leaf first) and its private key. The SPIFFE
     * ID is taken from the leaf's URI SAN.
     */
    public static X509Svid fromPem(String chainPem, String keyPem) {
        requireNonNull(chainPem, "chainPem");
        requireNonNull(keyPem, "keyPem");
        List<X509Certificate> chain = Pem.certificates(chainPem, "certificate chain");
        List<String> uris = X509.uriSans(chain.get(0));
        if (uris.size() != 1) {
            throw new IllegalArgumentException("the leaf certificate has " + uris.size()
                    + " URI SANs; an X.509-SVID has exactly one");
        }
        return new X509Svid(SpiffeId.parse(uris.get(0)), chain, Pem.privateKey(keyPem, "private key"));
    }

    public X509Certificate leaf() {
        return chain.get(0);
    }

    public Instant notBefore() {
        return leaf().getNotBefore().toInstant();
    }

    public Instant notAfter() {
        return leaf().getNotAfter().toInstant();
    }

    /** The chain as PEM, leaf first. */
    public String chainPem() {
        return Pem.encode(chain);
    }

    /** The private key as PKCS#8 PEM. Write it only to a 0600 file. */
    public String privateKeyPem() {
        return Pem.encode(privateKey);
    }

    /**
     * Writes the chain (mode 0644) and the private key (mode 0600, never readable by others, not
     * even briefly) as PEM files, each atomically.
     */
    public void writePem(Path chainFile, Path keyFile) throws IOException {
        requireNonNull(chainFile, "chainFile");
        requireNonNull(keyFile, "keyFile");
        SecureFiles.writeSecret(keyFile, privateKeyPem());
        SecureFiles.writePublic(chainFile, chainPem());
    }

    @Override
    public String toString() {
        return "X509Svid[" + id + ", serial " + leaf().getSerialNumber().toString(16) + ", notAfter " + notAfter()
                + "]";
    }
}
