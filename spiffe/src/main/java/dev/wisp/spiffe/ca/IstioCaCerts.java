package dev.wisp.spiffe.ca;

import dev.wisp.spiffe.internal.Pem;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;

/**
 * An operator's CA in Istio's {@code cacerts} layout: {@code ca-cert.pem} (the signing certificate,
 * usually an intermediate), {@code ca-key.pem} (its key), {@code root-cert.pem} (the root, which
 * becomes the trust bundle) and {@code cert-chain.pem} (from {@code ca-cert.pem} up to the root;
 * the root itself may be left out). Everything is checked before a certificate is signed, each
 * refusal naming the file and the fix: the key readable by its owner only or also by a group of
 * this process (a Kubernetes Secret mounted with the pod's fsGroup, see {@link KeyFileAccess}), the key matching
 * {@code ca-cert.pem}, {@code ca-cert.pem} a CA certificate, the chain starting at it and ending at
 * {@code root-cert.pem}, every certificate valid now.
 */
final class IstioCaCerts {
    static final String CA_CERT = "ca-cert.pem";
    static final String CA_KEY = "ca-key.pem";
    static final String ROOT_CERT = "root-cert.pem";
    static final String CERT_CHAIN = "cert-chain.pem";
    static final List<String> FILES = List.of(CA_CERT, CA_KEY, ROOT_CERT, CERT_CHAIN);

    private IstioCaCerts() {}

    /** Whether {@code dir} holds any of the four files (an empty or absent directory holds none). */
    static boolean present(Path dir) {
        return FILES.stream().anyMatch(f -> Files.exists(dir.resolve(f)));
    }

    static CertificateAuthority load(Path dir, CaSettings settings, Instant now) throws IOException {
        for (String f : FILES) {
            if (!Files.isRegularFile(dir.resolve(f))) {
                throw new IllegalArgumentException(dir + ": missing " + f + " (Istio's cacerts layout needs "
                        + String.join(", ", FILES) + ")");
            }
        }
        Path keyFile = dir.resolve(CA_KEY);
        KeyFileAccess.require(keyFile);
        X509Certificate caCert = Pem.certificates(CaDirectory.read(dir.resolve(CA_CERT)), CA_CERT).getFirst();
        X509Certificate root = Pem.certificates(CaDirectory.read(dir.resolve(ROOT_CERT)), ROOT_CERT).getFirst();
        List<X509Certificate> chain = new ArrayList<>(Pem.certificates(CaDirectory.read(dir.resolve(CERT_CHAIN)),
                CERT_CHAIN));
        PrivateKey key = Pem.privateKey(CaDirectory.read(keyFile), CA_KEY);
        CaDirectory.requireKeyMatches(caCert, key, keyFile.toString());
        if (caCert.getBasicConstraints() < 0) {
            throw new IllegalArgumentException(dir.resolve(CA_CERT) + " is not a CA certificate (no basicConstraints "
                    + "CA:true): the CA needs an intermediate or root it may sign with");
        }
        if (!chain.getFirst().equals(caCert)) {
            throw new IllegalArgumentException(dir.resolve(CERT_CHAIN) + " does not start with " + CA_CERT
                    + "; it lists " + CA_CERT + " first, then each issuer up to " + ROOT_CERT);
        }
        if (!chain.getLast().equals(root)) {
            try {
                chain.getLast().verify(root.getPublicKey());
            } catch (GeneralSecurityException e) {
                throw new IllegalArgumentException(dir.resolve(CERT_CHAIN) + " does not end at " + ROOT_CERT
                        + ": its last certificate (" + chain.getLast().getSubjectX500Principal().getName()
                        + ") is neither " + ROOT_CERT + " nor signed by it", e);
            }
            chain.add(root);
        }
        for (int i = 0; i < chain.size(); i++) {
            X509Certificate c = chain.get(i);
            String name = i == 0 ? CA_CERT : c.equals(root) ? ROOT_CERT : CERT_CHAIN + " certificate " + (i + 1);
            try {
                c.checkValidity(Date.from(now));
            } catch (CertificateExpiredException e) {
                throw new IllegalArgumentException(dir + ": " + name + " (" + c.getSubjectX500Principal().getName()
                        + ") expired on " + c.getNotAfter().toInstant() + "; plug in a valid certificate", e);
            } catch (CertificateNotYetValidException e) {
                throw new IllegalArgumentException(dir + ": " + name + " (" + c.getSubjectX500Principal().getName()
                        + ") is not valid before " + c.getNotBefore().toInstant() + "; check the clocks", e);
            }
        }
        return CaDirectory.pluggedIn(chain, key, dir.resolve(CERT_CHAIN).toString(), keyFile.toString(), settings);
    }
}
