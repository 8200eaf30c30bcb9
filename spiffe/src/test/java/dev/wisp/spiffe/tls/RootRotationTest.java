package dev.wisp.spiffe.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.spiffe.testing.Loopback;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Handshakes run in a loop while the CA rotates its root (add the new root to the bundle, switch
 * signing, renew both peers, retire the old root): none may fail. A control step shows that retiring
 * the old root while a peer still holds a certificate from it does fail, so the loop can fail.
 */
class RootRotationTest {
    static final String TD = "cluster.local";
    static final SpiffeId CLIENT = SpiffeId.forServiceAccount(TD, "shop", "cart");
    static final SpiffeId SERVER = SpiffeId.forServiceAccount(TD, "shop", "payments");

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void noHandshakeFailsAcrossAddSwitchRetire(SslProvider provider) throws Exception {
        CertificateAuthority ca = CertificateAuthority.inMemory(CaSettings.of(TD, NodeAuthorizer.unrestricted()));
        AtomicReference<X509Svid> serverSvid = new AtomicReference<>(ca.issue(SERVER, null, "n"));
        AtomicReference<X509Svid> clientSvid = new AtomicReference<>(ca.issue(CLIENT, null, "n"));
        // Each peer reads the CA's bundle at every handshake: distribution is immediate here.
        SslContext server = SpiffeTls.forServer(serverSvid::get, ca::bundle, provider);
        SslContext client = SpiffeTls.forClient(clientSvid::get, ca::bundle, Set.of(SERVER), provider);

        AtomicReference<String> phase = new AtomicReference<>("one root");
        Map<String, AtomicInteger> okPerPhase = new ConcurrentHashMap<>();
        List<String> failures = new CopyOnWriteArrayList<>();
        AtomicBoolean stop = new AtomicBoolean();
        try (Loopback loopback = new Loopback()) {
            Thread loop = Thread.ofPlatform().name("handshake-loop").start(() -> {
                for (int i = 0; i < 5000 && !stop.get(); i++) {
                    String during = phase.get();
                    try {
                        Loopback.Outcome o = loopback.handshake(server, client);
                        if (o.bothOk()) {
                            okPerPhase.computeIfAbsent(during, k -> new AtomicInteger()).incrementAndGet();
                        } else {
                            failures.add(during + ": " + o);
                        }
                    } catch (Exception e) {
                        failures.add(during + ": " + e);
                    }
                }
            });
            try {
                awaitHandshakes(okPerPhase, "one root");
                X509Certificate oldRoot = ca.signingCertificate();

                X509Certificate newRoot = ca.addRoot();
                step(phase, okPerPhase, "both roots, old signs");

                ca.switchSigning(newRoot);
                serverSvid.set(ca.issue(SERVER, null, "n"));
                step(phase, okPerPhase, "new signs, server renewed");

                clientSvid.set(ca.issue(CLIENT, null, "n"));
                step(phase, okPerPhase, "both renewed");

                ca.retireRoot(oldRoot);
                assertThat(ca.bundle().roots()).containsExactly(newRoot);
                step(phase, okPerPhase, "old root retired");
            } finally {
                stop.set(true);
                loop.join(Duration.ofSeconds(30));
            }
            assertThat(failures).as("handshakes that failed during rotation").isEmpty();
            assertThat(okPerPhase.keySet()).containsExactlyInAnyOrder("one root", "both roots, old signs",
                    "new signs, server renewed", "both renewed", "old root retired");

            // Control: a peer still holding a certificate of a retired root is refused.
            CertificateAuthority stale = CertificateAuthority
                    .inMemory(CaSettings.of(TD, NodeAuthorizer.unrestricted()));
            clientSvid.set(stale.issue(CLIENT, null, "n"));
            Loopback.Outcome o = loopback.handshake(server, client);
            assertThat(o.server().ok()).isFalse();
        }
    }

    private static void step(AtomicReference<String> phase, Map<String, AtomicInteger> ok, String next) {
        phase.set(next);
        awaitHandshakes(ok, next);
    }

    /** Waits until three handshakes started in {@code phase} have succeeded. */
    private static void awaitHandshakes(Map<String, AtomicInteger> ok, String phase) {
        await().atMost(Duration.ofSeconds(60))
                .until(() -> ok.getOrDefault(phase, new AtomicInteger()).get() >= 3);
    }

}
