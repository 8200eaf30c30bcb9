package dev.wisp.node.proxy;

import dev.wisp.api.workload.v1.Workload;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * The destination agent's part of the workloads' {@link FairShare} (issue 18): the agent that ends an
 * HBONE stream relays for every client workload that calls its node's pods, on the same event loops,
 * so a noisy client can keep a quiet one's answers waiting there as well as in its own node's agent.
 * Each stream of a known source workload is an {@link FairShare.Exchange} of that workload in the same
 * share as the agent's outbound connections (one share per agent: what is shared is the agent's loops,
 * whichever way a byte goes). Its connection to the destination waits, as an outbound connection does,
 * while the share holds its workload ({@link FairShare#connection}); then each read of its relay is
 * charged and may pause that side ({@link Relay.Budget}). The client side's reads are the requests, the
 * destination's the answers. Waits and pauses are counted on {@link Outbound#DELAYED} and {@link
 * Outbound#PAUSED} under the source workload's name.
 *
 * <p>A stream whose source is no workload the agent knows (a peer outside the mesh's index) is not
 * shared: it starts at once and its reads are not charged. Runs on the stream's event loop; the share
 * itself is thread-safe.
 */
final class InboundShare {
    private InboundShare() {}

    /**
     * Calls {@code go} with the relay's budget once {@code fair} lets {@code source}'s new stream
     * connect (at once, with a null budget, without a share or a known source, or when the share is
     * off); meanwhile the stream waits on its loop, reading nothing. A stream closed while it waits is
     * dropped. The exchange ends when the stream closes. Waits and pauses are counted in {@code
     * registry}; {@code clock} is {@link System#nanoTime} but in tests.
     */
    static void admit(MeterRegistry registry, FairShare fair, Optional<Workload> source, Channel stream,
            LongSupplier clock, Consumer<Relay.Budget> go) {
        FairShare.Exchange e = fair == null || source.isEmpty()
                ? null
                : fair.exchange(source.get().getUid(), clock.getAsLong());
        if (e == null) {
            go.accept(null);
            return;
        }
        stream.closeFuture().addListener(f -> e.end());
        Workload w = source.get();
        new Waiting(registry, fair, e, w.getNamespace() + "/" + w.getName(), stream, clock, go).ask(false);
    }

    /** One stream waiting for its workload's share; on the stream's loop. */
    private record Waiting(MeterRegistry registry, FairShare fair, FairShare.Exchange e, String workload,
            Channel stream, LongSupplier clock, Consumer<Relay.Budget> go) {
        void ask(boolean waited) {
            long wait = fair.connection(e, clock.getAsLong());
            if (wait == 0) {
                go.accept(budget());
                return;
            }
            if (!waited) {
                registry.counter(Outbound.DELAYED, "workload", workload).increment();
            }
            stream.eventLoop().schedule(() -> {
                if (stream.isActive()) {
                    ask(true);
                }
            }, wait, TimeUnit.NANOSECONDS);
        }

        private Relay.Budget budget() {
            Counter paused = registry.counter(Outbound.PAUSED, "workload", workload);
            return (fromClient, n) -> {
                long pause = e.read(fromClient, n, clock.getAsLong());
                if (pause > 0) {
                    paused.increment();
                }
                return pause;
            };
        }
    }
}
