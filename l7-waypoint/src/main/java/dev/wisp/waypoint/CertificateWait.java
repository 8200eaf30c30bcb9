package dev.wisp.waypoint;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.manager.CertificateManager;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * The waypoint's wait for its own certificate at startup, before anything listens. The control plane's CA
 * may be slow to answer (a loaded machine, a control plane still starting) or refuse at first (it signs a
 * service account only for a node where a pod with it runs, which it may not know yet): the wait lasts up
 * to {@code limit}, says every {@code progressEvery} how long it has waited and the last refusal, and takes
 * the certificate manager's next attempt after each refusal (for a caller that waits, the manager makes it
 * a second after the last one, not after its backoff).
 * Past the limit it fails with the last refusal, if any.
 */
final class CertificateWait {
    private CertificateWait() {}

    /** Up to {@value #LIMIT_SECONDS} s at startup, a progress line every {@value #PROGRESS_SECONDS} s. */
    static final int LIMIT_SECONDS = 180;
    static final int PROGRESS_SECONDS = 10;

    static X509Svid await(CertificateManager certificates, SpiffeId id, Duration limit, Duration progressEvery,
            Consumer<String> progress) throws IOException {
        requireNonNull(id, "id");
        long start = System.nanoTime();
        long deadline = start + limit.toNanos();
        long nextProgress = start + progressEvery.toNanos();
        String lastRefusal = null;
        CompletableFuture<X509Svid> attempt = certificates.fetch(id);
        while (true) {
            long now = System.nanoTime();
            try {
                return attempt.get(Math.max(0, Math.min(deadline, nextProgress) - now), TimeUnit.NANOSECONDS);
            } catch (ExecutionException e) {
                Throwable cause = e.getCause() != null ? e.getCause() : e;
                lastRefusal = cause.getMessage() != null ? cause.getMessage() : cause.toString();
                attempt = certificates.fetch(id);
                if (attempt.isCompletedExceptionally()) {
                    // The manager makes no further attempt (it is closed): nothing to wait for.
                    throw failure(id, start, lastRefusal);
                }
            } catch (TimeoutException e) {
                // no answer yet
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for the certificate of " + id, e);
            }
            now = System.nanoTime();
            if (now - deadline >= 0) {
                throw failure(id, start, lastRefusal);
            }
            if (now - nextProgress >= 0) {
                nextProgress = now + progressEvery.toNanos();
                progress.accept("still waiting for the certificate of " + id + ": " + TimeUnit.NANOSECONDS.toSeconds(
                        now - start) + " s of at most " + limit.toSeconds() + " s"
                        + (lastRefusal == null
                                ? ", no answer from the CA yet"
                                : "; the CA's last answer: " + lastRefusal));
            }
        }
    }

    private static IOException failure(SpiffeId id, long start, String lastRefusal) {
        return new IOException("no certificate for " + id + " after " + TimeUnit.NANOSECONDS.toSeconds(System
                .nanoTime() - start) + " s" + (lastRefusal == null
                        ? ": the CA did not answer"
                        : "; the CA's last answer: " + lastRefusal)
                + " (is the control plane reachable, and is the "
                + "waypoint's pod on the node of --token-file? the CA signs a service account only for a node where "
                + "a pod with it runs)");
    }
}
