package dev.wisp.spiffe.manager;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.InMemoryNodeAuthorizer;
import dev.wisp.spiffe.ca.SigningRefusedException;
import dev.wisp.spiffe.testing.ManualScheduler;
import dev.wisp.spiffe.testing.MutableClock;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;

/** Drives renewal with a manual clock and scheduler: no test waits for real time. */
class CertificateManagerTest {
    static final String TD = "cluster.local";
    final MutableClock clock = new MutableClock(Instant.parse("2026-11-22T00:00:00Z"));
    final ManualScheduler scheduler = new ManualScheduler(clock);
    final InMemoryNodeAuthorizer pods = new InMemoryNodeAuthorizer().addPod("node-1", "shop", "cart")
            .addPod("node-1", "shop", "web");
    final CertificateAuthority ca = CertificateAuthority.inMemory(CaSettings.of(TD, pods).withClock(clock));
    final SpiffeId cart = SpiffeId.forServiceAccount(TD, "shop", "cart");
    final SpiffeId web = SpiffeId.forServiceAccount(TD, "shop", "web");

    /** Signs through the CA unless told to fail; counts calls. */
    final AtomicBoolean failing = new AtomicBoolean();
    final AtomicInteger calls = new AtomicInteger();
    final CertificateSigner signer = (id, csr, ttl) -> {
        calls.incrementAndGet();
        if (failing.get()) {
            return CompletableFuture.failedFuture(new IllegalStateException("CA unreachable"));
        }
        try {
            return CompletableFuture.completedFuture(ca.sign(csr, ttl, "node-1"));
        } catch (SigningRefusedException e) {
            return CompletableFuture.failedFuture(e);
        }
    };

    CertificateManager manager(Duration ttl) {
        // Jitter draws of 0.5: delays are exactly 500 ms x 2^n (until the cap).
        return CertificateManager.builder(signer, scheduler).clock(clock).ttl(ttl).random(new Fixed(0.5))
                .build();
    }

    @Test
    void fetchesOnDemandAndServesTheSameCertificateUntilRenewal() throws Exception {
        CertificateManager m = manager(Duration.ofHours(24));
        X509Svid first = m.fetch(cart).get();
        assertThat(first.id()).isEqualTo(cart);
        assertThat(first.notAfter()).isEqualTo(clock.instant().plus(Duration.ofHours(24)));
        assertThat(m.fetch(cart).get()).isSameAs(first);
        assertThat(m.current(cart)).containsSame(first);
        assertThat(calls).hasValue(1);
        assertThat(m.identities()).containsExactly(cart);
    }

    @Test
    void renewsAtHalfTheValidityAndTellsListeners() throws Exception {
        CertificateManager m = manager(Duration.ofHours(24));
        List<X509Svid> heard = new ArrayList<>();
        m.addListener(heard::add);
        X509Svid first = m.fetch(cart).get();
        // Validity runs from one minute before issue (clock skew allowance) to 24 h after.
        Duration half = Duration.between(first.notBefore(), first.notAfter()).dividedBy(2);
        Duration untilHalf = Duration.between(clock.instant(), first.notBefore().plus(half));
        assertThat(scheduler.pendingDelays()).containsExactly(untilHalf);

        scheduler.advance(untilHalf.minusSeconds(1));
        assertThat(calls).hasValue(1);
        scheduler.advance(Duration.ofSeconds(1));
        assertThat(calls).hasValue(2);
        X509Svid second = m.current(cart).orElseThrow();
        assertThat(second).isNotSameAs(first);
        assertThat(second.privateKey()).isNotEqualTo(first.privateKey());
        assertThat(heard).containsExactly(first, second);
        assertThat(m.fetch(cart).get()).isSameAs(second);
    }

    @Test
    void aShortLivedCertificateIsRenewedHalfwayThroughWhatRemainsWithoutAClockWarning() throws Exception {
        try (dev.wisp.testing.LogCapture log = new dev.wisp.testing.LogCapture(CertificateManager.class)) {
            CertificateManager m = manager(Duration.ofSeconds(30));
            X509Svid first = m.fetch(cart).get();
            // Backdated a minute: past half of its 90 s validity on arrival; renewed at 15 s of the 30 left.
            assertThat(Duration.between(first.notBefore(), first.notAfter())).isEqualTo(Duration.ofSeconds(90));
            assertThat(scheduler.pendingDelays()).containsExactly(Duration.ofSeconds(15));
            scheduler.advance(Duration.ofSeconds(15));
            assertThat(calls).hasValue(2);
            assertThat(log.lines()).as("no clock-skew warning for a short TTL").noneMatch(l -> l.contains("clock"));
        }
    }

    @Test
    void aCertificateArrivingWithLessThanHalfItsLifetimeLeftWarnsOfTheClocks() throws Exception {
        // The CA's clock is 20 s behind this node's: a 30 s certificate arrives with 10 s left.
        MutableClock behind = new MutableClock(clock.instant().minusSeconds(20));
        CertificateAuthority lagging = CertificateAuthority.inMemory(CaSettings.of(TD, pods).withClock(behind));
        CertificateSigner skewed = (id, csr, ttl) -> CompletableFuture.completedFuture(lagging.sign(csr, ttl,
                "node-1"));
        try (dev.wisp.testing.LogCapture log = new dev.wisp.testing.LogCapture(CertificateManager.class)) {
            CertificateManager m = CertificateManager.builder(skewed, scheduler).clock(clock).ttl(Duration.ofSeconds(
                    30)).random(new Fixed(0.5)).build();
            m.fetch(cart).get();
            assertThat(scheduler.pendingDelays()).containsExactly(Duration.ofSeconds(5));
            assertThat(log.lines().stream().filter(l -> l.contains("clock")).toList()).singleElement().asString()
                    .contains("arrived with 10000 ms of its validity left")
                    .contains("is this node's clock ahead of the CA's?");
        }
    }

    @Test
    void retriesWithExponentialBackoffCappedAt150sAndKeepsTheValidCertificate() throws Exception {
        CertificateManager m = manager(Duration.ofHours(24));
        X509Svid first = m.fetch(cart).get();
        failing.set(true);
        scheduler.advance(scheduler.pendingDelays().get(0));
        assertThat(calls).hasValue(2);

        List<Duration> delays = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            Duration next = scheduler.pendingDelays().get(0);
            delays.add(next);
            scheduler.advance(next);
            assertThat(m.current(cart)).as("still valid, still served").containsSame(first);
        }
        assertThat(delays).containsExactly(Duration.ofMillis(500), Duration.ofSeconds(1), Duration.ofSeconds(2),
                Duration.ofSeconds(4), Duration.ofSeconds(8), Duration.ofSeconds(16), Duration.ofSeconds(32),
                Duration.ofSeconds(64), Duration.ofSeconds(128), Duration.ofSeconds(150), Duration.ofSeconds(150),
                Duration.ofSeconds(150));
        assertThat(m.fetch(cart).get()).isSameAs(first);

        failing.set(false);
        scheduler.advance(scheduler.pendingDelays().get(0));
        X509Svid renewed = m.current(cart).orElseThrow();
        assertThat(renewed).isNotSameAs(first);
        assertThat(scheduler.pendingDelays()).singleElement()
                .isEqualTo(Duration.between(clock.instant(), renewed.notBefore()
                        .plus(Duration.between(renewed.notBefore(), renewed.notAfter()).dividedBy(2))));
    }

    /** With the CA down: {@code cart}'s first fetch fails, then {@code retries} retries in the background. */
    void failFirstFetchAndRetries(CertificateManager m, int retries) {
        failing.set(true);
        assertThat(m.fetch(cart)).isCompletedExceptionally();
        for (int i = 0; i < retries; i++) {
            scheduler.advance(scheduler.pendingDelays().get(0));
        }
        assertThat(calls).hasValue(1 + retries);
    }

    @Test
    void aCallerWaitingForACertificateIsNotHeldBehindALongBackoff() {
        CertificateManager m = manager(Duration.ofHours(1));
        // Six failures in the background: the next retry is 32 s away.
        failFirstFetchAndRetries(m, 6);
        assertThat(scheduler.pendingDelays()).containsExactly(Duration.ofSeconds(32));

        // The CA is back; a connection needs the certificate 5 s later: it is tried now, not in 27 s.
        failing.set(false);
        scheduler.advance(Duration.ofSeconds(5));
        CompletableFuture<X509Svid> needed = m.fetch(cart);
        assertThat(needed).isNotDone();
        assertThat(scheduler.pendingDelays()).containsExactly(Duration.ZERO);
        scheduler.advance(Duration.ZERO);
        assertThat(needed.join().id()).isEqualTo(cart);
        assertThat(calls).hasValue(8);
    }

    @Test
    void demandRetriesComeAtMostOneASecondWhileTheCaStaysDown() {
        CertificateManager m = manager(Duration.ofHours(1));
        failFirstFetchAndRetries(m, 4);
        // Right after a failed attempt, callers keep asking: one retry, a second after the last attempt.
        List<CompletableFuture<X509Svid>> asked = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            asked.add(m.fetch(cart));
        }
        assertThat(scheduler.pendingDelays()).containsExactly(Duration.ofSeconds(1));
        scheduler.advance(Duration.ofSeconds(1));
        assertThat(calls).hasValue(6);
        assertThat(asked).allMatch(CompletableFuture::isCompletedExceptionally);
        // The backoff goes on from where it was: after the 6th failure, 16 s.
        assertThat(scheduler.pendingDelays()).containsExactly(Duration.ofSeconds(16));
    }

    @Test
    void dropsTheCertificateOnceItExpiresDuringFailures() {
        CertificateManager m = manager(Duration.ofMinutes(10));
        m.fetch(cart).join();
        failing.set(true);
        scheduler.advance(Duration.ofMinutes(11));
        assertThat(m.current(cart)).isEmpty();
        CompletableFuture<X509Svid> waiting = m.fetch(cart);
        assertThat(waiting).isNotDone();
        failing.set(false);
        scheduler.advance(scheduler.pendingDelays().get(0));
        assertThat(waiting).isCompleted();
        assertThat(waiting.join().notAfter()).isAfter(clock.instant());
    }

    @Test
    void firstFetchFailsWithTheSignersReasonThenRetriesInTheBackground() {
        CertificateManager m = manager(Duration.ofHours(1));
        SpiffeId stranger = SpiffeId.forServiceAccount(TD, "shop", "stranger");
        assertThatThrownBy(() -> m.fetch(stranger).get()).isInstanceOf(ExecutionException.class)
                .hasMessageContaining("node 'node-1' hosts no pod running as service account shop/stranger");
        assertThat(scheduler.pendingDelays()).containsExactly(Duration.ofMillis(500));
        pods.addPod("node-1", "shop", "stranger");
        CompletableFuture<X509Svid> next = m.fetch(stranger);
        assertThat(next).isNotDone();
        scheduler.advance(Duration.ofMillis(500));
        assertThat(next.join().id()).isEqualTo(stranger);
    }

    @Test
    void releaseStopsRenewingAndFailsWaiters() {
        CertificateManager m = manager(Duration.ofHours(1));
        m.fetch(cart).join();
        m.fetch(web).join();
        assertThat(scheduler.pendingDelays()).hasSize(2);
        m.release(cart);
        assertThat(m.identities()).containsExactly(web);
        assertThat(m.current(cart)).isEmpty();
        assertThat(scheduler.pendingDelays()).hasSize(1);

        failing.set(true);
        CompletableFuture<X509Svid> pending = m.fetch(cart);
        assertThat(pending).isCompletedExceptionally();
        CompletableFuture<X509Svid> waiting = m.fetch(cart);
        m.release(cart);
        assertThatThrownBy(waiting::join).hasCauseInstanceOf(CancellationException.class);
        int before = calls.get();
        scheduler.advance(Duration.ofMinutes(10));
        assertThat(calls).as("no retries for a released identity").hasValue(before);
    }

    @Test
    void refusesAChainThatDoesNotCarryTheRequestedKey() {
        X509Certificate alien = ca.issue(cart, null, "node-1").leaf();
        CertificateManager m = CertificateManager
                .builder((id, csr, ttl) -> CompletableFuture.completedFuture(List.of(alien)), scheduler).clock(clock)
                .random(new Fixed(0.5)).build();
        assertThatThrownBy(() -> m.fetch(cart).join())
                .hasMessageContaining("does not carry this request's public key");
    }

    @Test
    void aCertificateAlreadyPastHalfLifeOnArrivalDoesNotCauseARenewalLoop() {
        // The CA's clock runs 40 minutes behind ours: a 1 h certificate arrives 40 min old.
        MutableClock caClock = new MutableClock(clock.instant().minus(Duration.ofMinutes(40)));
        CertificateAuthority lagging = CertificateAuthority.inMemory(CaSettings.of(TD, pods).withClock(caClock));
        CertificateManager m = CertificateManager
                .builder((id, csr, ttl) -> CompletableFuture.completedFuture(lagging.sign(csr, ttl, "node-1")),
                        scheduler)
                .clock(clock).ttl(Duration.ofHours(1)).random(new Fixed(0.5)).build();
        X509Svid svid = m.fetch(cart).join();
        assertThat(scheduler.pendingDelays())
                .containsExactly(Duration.between(clock.instant(), svid.notAfter()).dividedBy(2));
    }

    /** A "random" generator that always draws the same value. */
    record Fixed(double value) implements RandomGenerator {
        @Override
        public long nextLong() {
            return 0;
        }

        @Override
        public double nextDouble() {
            return value;
        }
    }
}
