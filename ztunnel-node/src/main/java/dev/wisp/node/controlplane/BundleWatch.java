package dev.wisp.node.controlplane;

import dev.wisp.api.ca.v1.CertificateServiceGrpc;
import dev.wisp.api.ca.v1.TrustBundleRequest;
import dev.wisp.api.ca.v1.TrustBundleResponse;
import dev.wisp.base.Backoff;
import io.grpc.CallCredentials;
import io.grpc.Channel;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.security.cert.CertificateException;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps {@link TrustedRoots} following the control plane's {@code WatchTrustBundle} call: the bundle
 * at each (re)connect and again at each root rotation step, so that an agent or a waypoint trusts a
 * new root as soon as the control plane adds it, without waiting for its next certificate. A call
 * that ends is reopened after the mesh's reconnect backoff (reset by an answer).
 *
 * <p>Threads: gRPC's for answers, one private scheduler thread for reconnects; state under this
 * object's monitor.
 */
final class BundleWatch implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(BundleWatch.class);
    private final Channel channel;
    private final CallCredentials credentials;
    private final TrustedRoots roots;
    private final Backoff backoff;
    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("wisp-bundle-watch").daemon().factory());
    /** Guarded: the open call's context (cancelled on close), failed attempts in a row, closed. */
    private Context.CancellableContext call;
    private int attempt;
    private boolean closed;

    BundleWatch(Channel channel, CallCredentials credentials, TrustedRoots roots, Backoff backoff) {
        this.channel = channel;
        this.credentials = credentials;
        this.roots = roots;
        this.backoff = backoff;
    }

    synchronized void start() {
        if (closed || call != null) {
            return;
        }
        Context.CancellableContext c = Context.current().withCancellation();
        call = c;
        c.run(() -> CertificateServiceGrpc.newStub(channel).withCallCredentials(credentials)
                .watchTrustBundle(TrustBundleRequest.getDefaultInstance(), new StreamObserver<>() {
                    @Override
                    public void onNext(TrustBundleResponse r) {
                        answered();
                        try {
                            roots.update(r.getRootsList());
                        } catch (CertificateException e) {
                            log.warn("the control plane sent an unusable trust bundle, keeping the current one: {}",
                                    e.getMessage());
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                        ended(c, Status.fromThrowable(t));
                    }

                    @Override
                    public void onCompleted() {
                        ended(c, Status.UNAVAILABLE.withDescription("closed by the control plane"));
                    }
                }));
    }

    private synchronized void answered() {
        attempt = 0;
    }

    private synchronized void ended(Context.CancellableContext c, Status status) {
        if (call != c || closed) {
            return;
        }
        call = null;
        c.cancel(null);
        Duration delay = backoff.delay(attempt++, ThreadLocalRandom.current().nextDouble());
        log.debug("trust bundle watch ended ({}: {}); reopening in {} ms", status.getCode(), status.getDescription(),
                delay.toMillis());
        scheduler.schedule(this::start, delay.toNanos(), TimeUnit.NANOSECONDS);
    }

    @Override
    public void close() {
        Context.CancellableContext c;
        synchronized (this) {
            closed = true;
            c = call;
            call = null;
        }
        scheduler.shutdownNow();
        if (c != null) {
            c.cancel(null);
        }
    }
}
