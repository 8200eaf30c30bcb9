package dev.wisp.spiffe.ca;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.tls.SvidVerifier;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Certificates issued at the same moment on several threads (the control plane's gRPC threads sign
 * every node's renewals in lock step) each name their issuer's key correctly: the leaf's authority
 * key identifier must equal the root's subject key identifier, or PKIX finds no trust anchor for a
 * certificate that the root did sign (the refusals "NO_TRUST_ANCHOR" seen in the local mesh).
 */
class ConcurrentIssueTest {
    @Test
    void leavesSignedConcurrentlyNameTheirRootsKeyAndVerify() throws Exception {
        CertificateAuthority ca = CertificateAuthority.inMemory(CaSettings.of("cluster.local",
                NodeAuthorizer.unrestricted()));
        X509Certificate root = ca.bundle().roots().getFirst();
        byte[] rootKeyId = keyId(root.getExtensionValue("2.5.29.14"));
        int threads = 8;
        int each = 150;
        CyclicBarrier start = new CyclicBarrier(threads);
        List<Future<List<X509Svid>>> done = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            for (int t = 0; t < threads; t++) {
                SpiffeId id = SpiffeId.forServiceAccount("cluster.local", "default", "sa" + t);
                done.add(pool.submit(() -> {
                    start.await();
                    List<X509Svid> issued = new ArrayList<>();
                    for (int i = 0; i < each; i++) {
                        issued.add(ca.issue(id, null, "n"));
                    }
                    return issued;
                }));
            }
            List<String> wrong = new ArrayList<>();
            for (Future<List<X509Svid>> f : done) {
                for (X509Svid svid : f.get()) {
                    byte[] akid = keyId(svid.leaf().getExtensionValue("2.5.29.35"));
                    if (!Arrays.equals(akid, rootKeyId)) {
                        wrong.add(svid.leaf().getSerialNumber().toString(16));
                        continue;
                    }
                    SvidVerifier.verify(svid.chain().toArray(X509Certificate[]::new), ca.bundle(), Instant.now(),
                            Set.of());
                }
            }
            assertThat(wrong).as("leaves whose authority key identifier is not the root's key, of %d", threads * each)
                    .isEmpty();
        }
    }

    /** The last 20 bytes of a key-identifier extension's value: the SHA-1 key identifier itself. */
    private static byte[] keyId(byte[] extension) {
        assertThat(extension).isNotNull();
        return Arrays.copyOfRange(extension, extension.length - 20, extension.length);
    }
}
