package dev.wisp.spiffe.manager;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import java.util.random.RandomGenerator;

/**
 * Keeps one X.509-SVID per identity in use on a node. {@link #fetch} obtains a certificate on
 * first use; from then on it is renewed at half its validity. A failed attempt is retried with
 * exponential backoff (500 ms, ×2, at most 150 s, ±20 % jitter) while the current certificate keeps
 * being served as long as it is valid. {@link #release} forgets an identity no longer in use.
 * Listeners hear of every new certificate (first issue and each renewal).
 *
 * <p>Thread-safe. Renewals run on the {@link Scheduler}'s thread; signer callbacks on whatever
 * thread completes the signer's future; listeners on either of those.
 */
public interface CertificateManager extends AutoCloseable {
    /** The SVID for {@code id}: at once if a valid one is held, otherwise when the next attempt ends. */
    CompletableFuture<X509Svid> fetch(SpiffeId id);

    /** The valid SVID held for {@code id}, if any, without starting a request. */
    Optional<X509Svid> current(SpiffeId id);

    /** Stops renewing {@code id} and drops its certificate; pending fetches fail. */
    void release(SpiffeId id);

    /** The identities currently managed. */
    Set<SpiffeId> identities();

    /** Calls {@code listener} with each new SVID; closing the returned handle unsubscribes. */
    AutoCloseable addListener(Consumer<X509Svid> listener);

    /** Releases every identity and stops scheduling. */
    @Override
    void close();

    /** A builder of a manager that gets certificates from {@code signer}, renewing on {@code scheduler}. */
    static Builder builder(CertificateSigner signer, Scheduler scheduler) {
        return new Builder(signer, scheduler);
    }

    /** Configures a {@link CertificateManager}; defaults: 24 h TTL, system clock. */
    final class Builder {
        final CertificateSigner signer;
        final Scheduler scheduler;
        Clock clock = Clock.systemUTC();
        Duration ttl = Duration.ofHours(24);
        RandomGenerator random = RandomGenerator.getDefault();

        private Builder(CertificateSigner signer, Scheduler scheduler) {
            this.signer = requireNonNull(signer, "signer");
            this.scheduler = requireNonNull(scheduler, "scheduler");
        }

        public Builder clock(Clock clock) {
            this.clock = requireNonNull(clock, "clock");
            return this;
        }

        /** The lifetime requested for each certificate. */
        public Builder ttl(Duration ttl) {
            requireNonNull(ttl, "ttl");
            if (ttl.isZero() || ttl.isNegative()) {
                throw new IllegalArgumentException("ttl must be positive, got " + ttl);
            }
            this.ttl = ttl;
            return this;
        }

        /** The source of backoff jitter: tests in this package fix it; everyone else gets the default. */
        Builder random(RandomGenerator random) {
            this.random = requireNonNull(random, "random");
            return this;
        }

        public CertificateManager build() {
            return new DefaultCertificateManager(this);
        }
    }
}
