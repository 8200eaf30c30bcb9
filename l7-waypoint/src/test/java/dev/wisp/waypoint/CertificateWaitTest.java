package dev.wisp.waypoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.identity.Identities;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.spiffe.manager.CertificateManager;
import dev.wisp.spiffe.manager.CertificateSigner;
import dev.wisp.spiffe.manager.Scheduler;
import java.io.IOException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The waypoint's startup wait for its certificate ({@link CertificateWait}) against a real certificate
 * manager and an in-memory CA whose answers the test holds back or refuses: a slow CA is waited for with
 * progress lines (the wait that failed waypoint e2e classes at 10 s under load), a refusal is followed by
 * the manager's retry and shown in the progress, and a CA that never answers fails the start after the
 * limit, naming the identity.
 */
class CertificateWaitTest {
    static final SpiffeId ID = SpiffeId.forServiceAccount("cluster.local", "default", "waypoint");
    final CertificateSigner ca = Identities.localSigner(CertificateAuthority.inMemory(CaSettings.of("cluster.local",
            NodeAuthorizer.unrestricted())), "n1");
    final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
    final List<String> progress = new CopyOnWriteArrayList<>();

    @AfterEach
    void stop() {
        scheduler.shutdownNow();
    }

    CertificateManager manager(CertificateSigner signer) {
        return CertificateManager.builder(signer, Scheduler.of(scheduler)).build();
    }

    CompletableFuture<X509Svid> waitFor(CertificateManager m, Duration limit, Duration every) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return CertificateWait.await(m, ID, limit, every, progress::add);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
    }

    @Test
    void aSlowCaIsWaitedForWithProgressLines() throws Exception {
        CompletableFuture<Void> release = new CompletableFuture<>();
        CertificateManager m = manager((id, csr, ttl) -> release.thenCompose(x -> ca.sign(id, csr, ttl)));
        CompletableFuture<X509Svid> svid = waitFor(m, Duration.ofSeconds(120), Duration.ofMillis(50));
        // The CA answers only once the wait has said twice that it is still waiting.
        await().atMost(Duration.ofSeconds(60)).until(() -> progress.size() >= 2);
        assertThat(svid).as("still waiting").isNotDone();
        release.complete(null);
        assertThat(svid.get(60, TimeUnit.SECONDS).id()).isEqualTo(ID);
        assertThat(progress.getFirst()).startsWith("still waiting for the certificate of " + ID + ": ").endsWith(
                "s of at most 120 s, no answer from the CA yet");
        m.close();
    }

    @Test
    void aRefusalIsRetriedByTheManagerAndShownInTheProgress() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        CompletableFuture<Void> release = new CompletableFuture<>();
        CertificateSigner signer = (id, csr, ttl) -> calls.incrementAndGet() == 1
                ? CompletableFuture.<List<X509Certificate>>failedFuture(new IllegalStateException(
                        "node n1 runs no pod of default/waypoint"))
                : release.thenCompose(x -> ca.sign(id, csr, ttl));
        CertificateManager m = manager(signer);
        CompletableFuture<X509Svid> svid = waitFor(m, Duration.ofSeconds(120), Duration.ofMillis(50));
        await().atMost(Duration.ofSeconds(60)).until(() -> progress.stream().anyMatch(l -> l.contains(
                "the CA's last answer: node n1 runs no pod of default/waypoint")));
        await("the manager's retry").atMost(Duration.ofSeconds(60)).until(() -> calls.get() >= 2);
        release.complete(null);
        assertThat(svid.get(60, TimeUnit.SECONDS).id()).isEqualTo(ID);
        m.close();
    }

    @Test
    void aCaThatNeverAnswersFailsTheStartAfterTheLimit() {
        CertificateManager m = manager((id, csr, ttl) -> new CompletableFuture<>());
        assertThatThrownBy(() -> CertificateWait.await(m, ID, Duration.ofMillis(300), Duration.ofMillis(100),
                progress::add)).isInstanceOf(IOException.class).hasMessageContaining("no certificate for " + ID
                        + " after ")
                .hasMessageContaining("the CA did not answer");
        m.close();
    }

    @Test
    void aClosedManagerFailsAtOnceWithItsReason() {
        CertificateManager m = manager(ca);
        m.close();
        assertThatThrownBy(() -> CertificateWait.await(m, ID, Duration.ofSeconds(120), Duration.ofSeconds(10),
                progress::add)).isInstanceOf(IOException.class).hasMessageContaining("closed");
        assertThat(progress).isEmpty();
    }
}
