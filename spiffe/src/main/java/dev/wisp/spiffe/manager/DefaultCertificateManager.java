package dev.wisp.spiffe.manager;

import dev.wisp.base.Backoff;
import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.random.RandomGenerator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The certificate manager: a table of identities under one lock, attempts run outside it. */
final class DefaultCertificateManager implements CertificateManager {
    private static final Logger log = LoggerFactory.getLogger(CertificateManager.class);

    /** One managed identity. Every field is guarded by the manager's monitor. */
    private static final class Entry {
        final SpiffeId id;
        X509Svid current;
        /** Callers waiting for the next attempt because no valid certificate is held; or null. */
        CompletableFuture<X509Svid> waiting;
        boolean inFlight;
        int failures;
        /** The next renewal or retry; null while an attempt is in flight. */
        Scheduler.Task timer;
        /** When {@link #timer} retries after a failure; null when it renews (or none is set). */
        Instant retryAt;
        /** When the last attempt started; null before the first. */
        Instant lastAttempt;

        Entry(SpiffeId id) {
            this.id = id;
        }
    }

    private final CertificateSigner signer;
    private final Scheduler scheduler;
    private final Clock clock;
    private final Duration ttl;
    private final RandomGenerator random;
    /** 500 ms doubling to 150 s, ±20 %. */
    private static final Backoff BACKOFF = new Backoff(Duration.ofMillis(500), Duration.ofSeconds(150), 0.2);
    /**
     * How soon after an attempt a caller that needs the certificate now brings the next one forward.
     * The backoff protects the CA from a node that keeps failing; it must not also hold a connection
     * for minutes once the CA is back (after an outage the backoff may have grown to 150 s): a waiting
     * caller gets an attempt at most this long after the last one, and never more than one at a time.
     */
    static final Duration DEMAND_RETRY_SPACING = Duration.ofSeconds(1);
    private final List<Consumer<X509Svid>> listeners = new CopyOnWriteArrayList<>();
    /** Guarded by {@code this}. */
    private final Map<SpiffeId, Entry> entries = new HashMap<>();
    /** Guarded by {@code this}. */
    private boolean closed;

    DefaultCertificateManager(CertificateManager.Builder b) {
        this.signer = b.signer;
        this.scheduler = b.scheduler;
        this.clock = b.clock;
        this.ttl = b.ttl;
        this.random = b.random;
    }

    @Override
    public CompletableFuture<X509Svid> fetch(SpiffeId id) {
        java.util.Objects.requireNonNull(id, "id");
        Entry start = null;
        CompletableFuture<X509Svid> result;
        synchronized (this) {
            if (closed) {
                return CompletableFuture.failedFuture(new IllegalStateException("the certificate manager is closed"));
            }
            Entry e = entries.computeIfAbsent(id, Entry::new);
            if (isValid(e.current)) {
                return CompletableFuture.completedFuture(e.current);
            }
            if (e.waiting == null) {
                e.waiting = new CompletableFuture<>();
            }
            result = e.waiting;
            if (!e.inFlight && e.timer == null) {
                e.inFlight = true;
                e.lastAttempt = clock.instant();
                start = e;
            } else if (!e.inFlight && e.retryAt != null) {
                bringRetryForward(e);
            }
        }
        if (start != null) {
            attempt(start);
        }
        return result.copy();
    }

    @Override
    public synchronized Optional<X509Svid> current(SpiffeId id) {
        Entry e = entries.get(id);
        return e != null && isValid(e.current) ? Optional.of(e.current) : Optional.empty();
    }

    @Override
    public void release(SpiffeId id) {
        java.util.Objects.requireNonNull(id, "id");
        Entry e;
        synchronized (this) {
            e = entries.remove(id);
            if (e == null) {
                return;
            }
            if (e.timer != null) {
                e.timer.cancel();
                e.timer = null;
            }
        }
        CompletableFuture<X509Svid> waiting = e.waiting;
        if (waiting != null) {
            waiting.completeExceptionally(new CancellationException(id + " was released"));
        }
        log.debug("released {}", id);
    }

    @Override
    public synchronized Set<SpiffeId> identities() {
        return Set.copyOf(entries.keySet());
    }

    @Override
    public AutoCloseable addListener(Consumer<X509Svid> listener) {
        java.util.Objects.requireNonNull(listener, "listener");
        listeners.add(listener);
        return () -> listeners.remove(listener);
    }

    @Override
    public void close() {
        Set<SpiffeId> ids;
        synchronized (this) {
            closed = true;
            ids = Set.copyOf(entries.keySet());
        }
        ids.forEach(this::release);
    }

    /** Called with {@code e.inFlight} already set, outside the lock. */
    private void attempt(Entry e) {
        CertificateRequest request;
        CompletableFuture<List<X509Certificate>> signed;
        try {
            request = CertificateRequest.generate(e.id);
            signed = signer.sign(e.id, request.der(), ttl);
            if (signed == null) {
                signed = CompletableFuture.failedFuture(new IllegalStateException("the signer returned no future"));
            }
        } catch (RuntimeException ex) {
            onResult(e, null, ex);
            return;
        }
        CertificateRequest req = request;
        signed.whenComplete((chain, err) -> {
            if (err != null) {
                onResult(e, null, err);
                return;
            }
            X509Svid svid;
            try {
                svid = req.toSvid(chain);
            } catch (RuntimeException ex) {
                onResult(e, null, ex);
                return;
            }
            onResult(e, svid, null);
        });
    }

    private void onResult(Entry e, X509Svid svid, Throwable failure) {
        CompletableFuture<X509Svid> waiting;
        Instant now = clock.instant();
        if (svid != null && !now.isBefore(svid.notAfter())) {
            failure = new IllegalStateException("the signer returned a certificate that expired at " + svid.notAfter());
            svid = null;
        }
        synchronized (this) {
            if (entries.get(e.id) != e) {
                return;
            }
            e.inFlight = false;
            waiting = e.waiting;
            e.waiting = null;
            if (svid != null) {
                e.current = svid;
                e.failures = 0;
                e.retryAt = null;
                e.timer = scheduler.schedule(renewalDelay(svid, now), () -> renew(e));
            } else {
                e.failures++;
                if (e.current != null && !isValid(e.current)) {
                    e.current = null;
                }
                Duration delay = BACKOFF.delay(e.failures - 1, random.nextDouble());
                e.retryAt = now.plus(delay);
                e.timer = scheduler.schedule(delay, () -> renew(e));
                if (e.current != null) {
                    log.warn("renewing the certificate of {} failed (attempt {}): {}; retrying in {} ms, "
                            + "the current certificate stays in use until {}", e.id, e.failures, message(failure),
                            delay.toMillis(), e.current.notAfter());
                } else {
                    log.warn("obtaining a certificate for {} failed (attempt {}): {}; retrying in {} ms", e.id,
                            e.failures, message(failure), delay.toMillis());
                }
            }
        }
        if (svid != null) {
            log.debug("new certificate for {} valid until {}", e.id, svid.notAfter());
            if (waiting != null) {
                waiting.complete(svid);
            }
            for (Consumer<X509Svid> listener : listeners) {
                try {
                    listener.accept(svid);
                } catch (RuntimeException ex) {
                    log.error("a certificate listener failed on {}", e.id, ex);
                }
            }
        } else if (waiting != null) {
            waiting.completeExceptionally(failure);
        }
    }

    /**
     * Half of the validity from notBefore. The CA backdates notBefore (a minute of clock skew
     * allowance), so a short-lived certificate (two minutes or less) is already past that point on
     * arrival: it is renewed halfway through what remains. Only a certificate that arrives with less
     * than half of the lifetime asked for left is a sign that the clocks disagree, and is logged.
     */
    private Duration renewalDelay(X509Svid svid, Instant now) {
        Duration validity = Duration.between(svid.notBefore(), svid.notAfter());
        Duration delay = Duration.between(now, svid.notBefore().plus(validity.dividedBy(2)));
        if (delay.isNegative() || delay.isZero()) {
            Duration left = Duration.between(now, svid.notAfter());
            delay = left.dividedBy(2);
            if (ttl == null || left.compareTo(ttl.dividedBy(2)) < 0) {
                log.warn("the new certificate of {} arrived with {} ms of its validity left (notBefore {}, notAfter "
                        + "{}, now {}): is this node's clock ahead of the CA's? renewing in {} ms", svid.id(),
                        left.toMillis(), svid.notBefore(), svid.notAfter(), now, delay.toMillis());
            }
        }
        return delay;
    }

    private void renew(Entry e) {
        synchronized (this) {
            if (entries.get(e.id) != e || e.inFlight) {
                return;
            }
            e.timer = null;
            e.retryAt = null;
            e.inFlight = true;
            e.lastAttempt = clock.instant();
        }
        attempt(e);
    }

    /**
     * A caller waits on {@code e}, whose retry after a failure is due later than
     * {@link #DEMAND_RETRY_SPACING} after the last attempt: the retry is moved to that time (now, if
     * it has passed). Caller holds the lock.
     */
    private void bringRetryForward(Entry e) {
        Instant now = clock.instant();
        Instant soonest = e.lastAttempt == null ? now : e.lastAttempt.plus(DEMAND_RETRY_SPACING);
        if (!e.retryAt.isAfter(soonest)) {
            return;
        }
        Duration delay = now.isBefore(soonest) ? Duration.between(now, soonest) : Duration.ZERO;
        e.timer.cancel();
        e.retryAt = now.plus(delay);
        e.timer = scheduler.schedule(delay, () -> renew(e));
        log.info("a connection needs a certificate for {}: retrying in {} ms instead of waiting out the backoff",
                e.id, delay.toMillis());
    }

    /** Valid means usable now: not yet past notAfter. Caller holds the lock or owns the value. */
    private boolean isValid(X509Svid svid) {
        return svid != null && clock.instant().isBefore(svid.notAfter());
    }

    private static String message(Throwable t) {
        Throwable cause = t instanceof java.util.concurrent.CompletionException && t.getCause() != null
                ? t.getCause()
                : t;
        return cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
    }
}
