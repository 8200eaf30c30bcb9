package dev.wisp.controlplane.xds;

import static java.util.Objects.requireNonNull;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the control plane refuses to an agent (no valid credential, a credential from another
 * node's address or of a removed node, another node's discovery, a certificate it may not have, too
 * many certificate requests, an oversized or unparsable message): each refusal is counted in
 * {@code wisp_controlplane_refused_total{reason}}, and logged at WARN at most once per reason and
 * node a minute, the next line saying how many were not logged, so that a hostile or broken agent
 * cannot flood the log.
 *
 * <p>Thread-safe: called from gRPC threads; the per-(reason, node) state is a concurrent map of
 * atomics, which holds one entry per reason and node name that ever reached a refusal (node names
 * are authenticated ones, or {@code -} for a call refused before its node is known).
 */
public final class Refusals {
    private static final Logger log = LoggerFactory.getLogger(Refusals.class);
    static final long LOG_INTERVAL_NANOS = 60_000_000_000L;

    /** Why a request was refused; {@link #tag} is the metric's {@code reason}. */
    public enum Reason {
        /** A call without a credential, or with one that authenticates no node. */
        UNAUTHENTICATED("unauthenticated"),
        /** A node's credential presented from an address its Node object does not declare. */
        CREDENTIAL_OTHER_ADDRESS("credential_other_address"),
        /** A credential of a node that is no longer in the configuration (revoked, or its Node deleted). */
        NODE_REMOVED("node_removed"),
        /** A discovery stream naming a node other than the credential's. */
        XDS_OTHER_NODE("xds_other_node"),
        /** A certificate for a service account with no pod on the caller's node, or another trust domain. */
        CSR_NOT_AUTHORIZED("csr_not_authorized"),
        /** A CSR that is not a valid, well-formed P-256 request. */
        CSR_INVALID("csr_invalid"),
        /** More certificate requests than the per-node rate allows. */
        CSR_RATE_LIMITED("csr_rate_limited"),
        /** A message larger than the server accepts, or one it cannot parse. */
        MESSAGE_REFUSED("message_refused");

        final String tag;

        Reason(String tag) {
            this.tag = tag;
        }
    }

    private record Key(Reason reason, String node) {}

    /** Nanos of the last logged line (Long.MIN_VALUE: never) and refusals since it. */
    private static final class Window {
        final AtomicLong lastLogged = new AtomicLong(Long.MIN_VALUE);
        final AtomicLong suppressed = new AtomicLong();
    }

    private final MeterRegistry registry;
    private final LongSupplier nanoClock;
    private final Map<Key, Window> windows = new ConcurrentHashMap<>();

    public Refusals(MeterRegistry registry) {
        this(registry, System::nanoTime);
    }

    Refusals(MeterRegistry registry, LongSupplier nanoClock) {
        this.registry = requireNonNull(registry, "registry");
        this.nanoClock = requireNonNull(nanoClock, "nanoClock");
        // At zero from the start: "none refused" is a series, not an absence.
        for (Reason r : Reason.values()) {
            counter(r);
        }
    }

    /**
     * Counts a refusal of {@code node}'s request and logs {@code message} unless a line for the same
     * reason and node was logged in the last minute.
     *
     * @return whether this refusal was logged
     */
    public boolean refuse(Reason reason, String node, String message) {
        requireNonNull(reason, "reason");
        counter(reason).increment();
        Window w = windows.computeIfAbsent(new Key(reason, node == null ? "-" : node), k -> new Window());
        long now = nanoClock.getAsLong();
        long last = w.lastLogged.get();
        if (last != Long.MIN_VALUE && now - last < LOG_INTERVAL_NANOS || !w.lastLogged.compareAndSet(last, now)) {
            w.suppressed.incrementAndGet();
            return false;
        }
        long skipped = w.suppressed.getAndSet(0);
        log.warn("refused {} of node {}: {}{}", reason.tag, node == null ? "-" : node, message, skipped == 0
                ? ""
                : " (" + skipped + " more refused for this reason and node in the last minute, not logged)");
        return true;
    }

    private Counter counter(Reason r) {
        return Counter.builder("wisp_controlplane_refused").description(
                "agent requests the control plane refused, by reason").tag("reason", r.tag).register(registry);
    }
}
