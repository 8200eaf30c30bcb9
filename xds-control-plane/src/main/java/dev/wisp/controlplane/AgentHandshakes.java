package dev.wisp.controlplane;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.tls.GrpcTls;
import io.grpc.ServerCredentials;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import java.net.SocketAddress;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agents' port's TLS handshakes, watched: each one that does not complete is counted in
 * {@code wisp_controlplane_tls_handshake_failures_total{reason}} and logged at WARN at most once per
 * reason a minute (the next line says how many were not logged), and each may take {@link
 * GrpcTls#HANDSHAKE_TIMEOUT} (Netty's default of 10 s closed agents' handshakes that waited for CPU on
 * a loaded machine, silently: see {@link GrpcTls}).
 *
 * <p>Thread-safe: the counters and log windows are atomics; called on the connections' event loops.
 */
final class AgentHandshakes {
    private static final Logger log = LoggerFactory.getLogger(AgentHandshakes.class);
    static final long LOG_INTERVAL_NANOS = 60_000_000_000L;

    /** Why a handshake did not complete; {@link #tag} is the metric's {@code reason}. */
    enum Reason {
        /** Not completed within the timeout. */
        TIMEOUT("timeout"),
        /** The agent closed the connection (or it was reset) before the handshake completed. */
        CLOSED("closed"),
        /** A TLS error: no shared version or cipher, a bad record, an alert from the agent, no certificate to present. */
        TLS_ERROR("tls_error");

        final String tag;

        Reason(String tag) {
            this.tag = tag;
        }
    }

    private final Map<Reason, Counter> counters = new EnumMap<>(Reason.class);
    private final Map<Reason, AtomicLong> lastLogged = new EnumMap<>(Reason.class);
    private final Map<Reason, AtomicLong> suppressed = new EnumMap<>(Reason.class);
    private final LongSupplier nanoClock;
    private final Duration timeout;

    AgentHandshakes(MeterRegistry registry) {
        this(registry, System::nanoTime, GrpcTls.HANDSHAKE_TIMEOUT);
    }

    AgentHandshakes(MeterRegistry registry, LongSupplier nanoClock, Duration timeout) {
        requireNonNull(registry, "registry");
        this.nanoClock = requireNonNull(nanoClock, "nanoClock");
        this.timeout = requireNonNull(timeout, "timeout");
        for (Reason r : Reason.values()) {
            // At zero from the start: "no failed handshake" is a series, not an absence.
            counters.put(r, Counter.builder("wisp_controlplane_tls_handshake_failures").description(
                    "agents' TLS handshakes on the xDS port that did not complete, by reason").tag("reason", r.tag)
                    .register(registry));
            lastLogged.put(r, new AtomicLong(Long.MIN_VALUE));
            suppressed.put(r, new AtomicLong());
        }
    }

    /** Server credentials for {@code tls}, watched as above. */
    ServerCredentials credentials(SslContext tls) {
        return GrpcTls.server(tls, timeout, this::failed);
    }

    /** Counts a handshake that did not complete and logs it unless its reason was logged in the last minute. */
    boolean failed(Throwable cause, SocketAddress remote) {
        Reason reason = reason(cause);
        counters.get(reason).increment();
        AtomicLong last = lastLogged.get(reason);
        long now = nanoClock.getAsLong();
        long then = last.get();
        if (then != Long.MIN_VALUE && now - then < LOG_INTERVAL_NANOS || !last.compareAndSet(then, now)) {
            suppressed.get(reason).incrementAndGet();
            return false;
        }
        long skipped = suppressed.get(reason).getAndSet(0);
        log.warn("TLS handshake of an agent from {} did not complete ({}): {}{}", remote, reason.tag, message(cause),
                skipped == 0 ? "" : " (" + skipped + " more for this reason in the last minute, not logged)");
        return true;
    }

    static Reason reason(Throwable cause) {
        for (Throwable t = cause; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof SslHandshakeTimeoutException) {
                return Reason.TIMEOUT;
            }
            if (t instanceof ClosedChannelException) {
                return Reason.CLOSED;
            }
        }
        for (Throwable t = cause; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof SSLException) {
                return Reason.TLS_ERROR;
            }
        }
        return Reason.CLOSED;
    }

    private static String message(Throwable cause) {
        Throwable root = cause;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String m = root.getClass().getSimpleName() + (root.getMessage() == null ? "" : ": " + root.getMessage());
        return root == cause ? m : cause.getClass().getSimpleName() + " <- " + m;
    }
}
