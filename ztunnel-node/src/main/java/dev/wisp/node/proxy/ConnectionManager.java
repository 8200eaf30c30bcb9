package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.base.IpText;
import dev.wisp.node.state.Snapshot;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.spiffe.SpiffeId;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The open inbound connections of this agent (HBONE and plaintext), each with what its
 * authorization was decided on, so that a policy change reaches connections already open, as
 * ztunnel's connection manager does: after every state update each open connection is decided again
 * ({@link #recheck}, pure), and one the new state denies — a DENY or a missing ALLOW, or plaintext to
 * a workload (or port) that became STRICT — is closed. Its flow is closed first with the denial (so
 * the access log's complete line, the closed counter's {@code response_flags="DENY"} and the flow
 * record say {@code denied} with the policy), then the connection to the workload is reset, which the
 * relay turns into a reset of the client's side (RST_STREAM on HBONE, RST on TCP).
 *
 * <p><b>Threads.</b> {@link #track} runs on a connection's event loop, {@link #reevaluate} on the
 * thread that applied the state update (under the index's monitor); the registry is a concurrent map,
 * and closing a flow twice or a channel twice does nothing, so the two may race. A connection is
 * registered before the state is read again: either the re-evaluation sees it, or {@link #track}
 * sees the newer snapshot and decides it itself. An entry leaves the registry when its upstream
 * channel closes.
 */
public final class ConnectionManager {
    private static final Logger LOG = LoggerFactory.getLogger(ConnectionManager.class);
    private final String nodeName;
    private final Set<Integer> agentPorts;
    private final WorkloadIndex index;
    private final Map<Long, Tracked> open = new ConcurrentHashMap<>();
    private final AtomicLong ids = new AtomicLong();
    private final AtomicLong closedByPolicy = new AtomicLong();

    private ConnectionManager(String nodeName, WorkloadIndex index, Set<Integer> agentPorts) {
        this.nodeName = nodeName;
        this.index = index;
        this.agentPorts = Set.copyOf(agentPorts);
    }

    /** A manager re-evaluating on every change of {@code index}. */
    public static ConnectionManager create(String nodeName, WorkloadIndex index, Set<Integer> agentPorts) {
        ConnectionManager m = new ConnectionManager(requireNonNull(nodeName, "nodeName"),
                requireNonNull(index, "index"), requireNonNull(agentPorts, "agentPorts"));
        index.onChange(m::reevaluate);
        return m;
    }

    /**
     * What an inbound connection's authorization was decided on.
     *
     * @param peerId the identity its certificate proved (empty: plaintext)
     * @param source the source address that counted ({@link SourceAddress})
     * @param target the destination workload's address and port
     */
    public record Basis(Optional<SpiffeId> peerId, InetAddress source, InetSocketAddress target) {
        public Basis {
            requireNonNull(peerId, "peerId");
            requireNonNull(source, "source");
            requireNonNull(target, "target");
        }
    }

    private record Tracked(Basis basis, Telemetry.Flow flow, Channel upstream) {}

    /**
     * The denial {@code state} gives a connection that was allowed on {@code basis}, if any. Only
     * authorization counts ({@link Outcome.Denied}: L4 policy, STRICT mTLS, a waypoint now required): a workload that left
     * the state or moved is not this check's business (its connections end with it).
     */
    static Optional<Outcome.Denied> recheck(Snapshot state, String nodeName, Set<Integer> agentPorts, Basis basis) {
        InboundDecision d = InboundDecision.decide(state, nodeName, agentPorts, basis.peerId(), basis.source(),
                basis.target());
        return switch (d.outcome()) {
            case Outcome.Policy p -> Optional.of(new Outcome.Policy(p.policy(), p.reason() + WHILE_OPEN));
            case Outcome.StrictMtls s -> Optional.of(new Outcome.StrictMtls(s.reason() + WHILE_OPEN));
            case Outcome.BypassedWaypoint b -> Optional.of(new Outcome.BypassedWaypoint(b.reason() + WHILE_OPEN));
            default -> Optional.empty();
        };
    }

    /** Appended to the reason of a denial that closed an open connection. */
    static final String WHILE_OPEN = " (policy changed while the connection was open)";

    /**
     * Registers an allowed inbound connection whose relay to the workload runs on {@code upstream},
     * decided on {@code decidedOn}; it leaves the registry when {@code upstream} closes.
     */
    public void track(Basis basis, Snapshot decidedOn, Telemetry.Flow flow, Channel upstream) {
        requireNonNull(basis, "basis");
        requireNonNull(decidedOn, "decidedOn");
        requireNonNull(flow, "flow");
        requireNonNull(upstream, "upstream");
        long id = ids.incrementAndGet();
        Tracked t = new Tracked(basis, flow, upstream);
        open.put(id, t);
        upstream.closeFuture().addListener(f -> open.remove(id));
        Snapshot now = index.snapshot();
        if (now != decidedOn) {
            check(now, id, t);
        }
    }

    /** Decides every open connection again on the current state; closes those it denies. */
    public void reevaluate() {
        Snapshot state = index.snapshot();
        open.forEach((id, t) -> check(state, id, t));
    }

    private void check(Snapshot state, long id, Tracked t) {
        Optional<Outcome.Denied> denied = recheck(state, nodeName, agentPorts, t.basis());
        if (denied.isEmpty() || open.remove(id) == null) {
            return;
        }
        closedByPolicy.incrementAndGet();
        LOG.info("closing the open connection {} -> {} ({}): {}", IpText.of(t.basis().source()),
                IpText.hostPort(t.basis().target()), t.basis().peerId().map(SpiffeId::toString).orElse("plaintext"),
                denied.get().reason());
        t.flow().close(denied.get());
        reset(t.upstream());
    }

    /** Closes {@code ch} with a reset, not a FIN: the far end must not take the end for a complete exchange. */
    static void reset(Channel ch) {
        ch.eventLoop().execute(() -> {
            ch.config().setOption(ChannelOption.SO_LINGER, 0);
            ch.close();
        });
    }

    /**
     * Resets every open connection (a drain's deadline: these did not end in time); how many.
     * Their relays record how they ended.
     */
    public int resetAll() {
        int n = 0;
        for (Long id : List.copyOf(open.keySet())) {
            Tracked t = open.remove(id);
            if (t != null) {
                LOG.info("resetting the open connection {} -> {} ({}): still open at the drain deadline", IpText.of(t
                        .basis().source()), IpText.hostPort(t.basis().target()), t.basis().peerId()
                                .map(
                                        SpiffeId::toString)
                                .orElse("plaintext"));
                reset(t.upstream());
                n++;
            }
        }
        return n;
    }

    /** Inbound connections open now. */
    public int openConnections() {
        return open.size();
    }

    /** Open connections closed because a policy change denied them, since start. */
    public long closedByPolicy() {
        return closedByPolicy.get();
    }
}
