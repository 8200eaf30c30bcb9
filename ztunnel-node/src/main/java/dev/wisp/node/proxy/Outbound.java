package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.telemetry.ConnectionLabels;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.spiffe.SpiffeId;
import io.micrometer.core.instrument.Counter;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The outbound side: takes a workload's TCP connection (captured on port 15001, or from SOCKS5),
 * routes it ({@link Route}: service VIP → endpoint round robin, workload → its node's agent or
 * waypoint, elsewhere → plain TCP) and relays it through an HBONE stream from the {@link HbonePool}
 * or a direct TCP connection.
 *
 * <p>The CONNECT request carries {@code :authority} = the destination workload's ip:port and
 * {@code forwarded: for="<source ip:port>"}. The accepted connection's auto-read stays off until the
 * tunnel answers 200, so nothing is read from the workload before the destination is reachable.
 */
public final class Outbound implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Outbound.class);
    private final ProxyContext ctx;
    private final HboneClient hbone;
    private final OriginalDestinationResolver resolver;
    private final WorkloadLimits limits;
    /** Service key → round-robin counter. Thread-safe. */
    private final Map<String, AtomicInteger> roundRobin = new ConcurrentHashMap<>();
    private Channel listener;
    /** Every client connection handed to {@link #tunnel} and not closed yet (a drain waits for them). */
    private final ChannelGroup open = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);

    /** Outbound over HBONE on HTTP/2 only. */
    public Outbound(ProxyContext ctx, HbonePool pool, OriginalDestinationResolver resolver) {
        this(ctx, new HboneClient(pool), resolver);
    }

    /** Outbound over the HBONE framing {@code hbone} chooses, with the default workload limits. */
    public Outbound(ProxyContext ctx, HboneClient hbone, OriginalDestinationResolver resolver) {
        this(ctx, hbone, resolver, new WorkloadLimits(WorkloadLimits.Settings.DEFAULTS));
    }

    /** Outbound over the HBONE framing {@code hbone} chooses; each source workload's new connections within {@code limits}. */
    public Outbound(ProxyContext ctx, HboneClient hbone, OriginalDestinationResolver resolver, WorkloadLimits limits) {
        this.ctx = requireNonNull(ctx, "ctx");
        this.hbone = requireNonNull(hbone, "hbone");
        this.resolver = requireNonNull(resolver, "resolver");
        this.limits = requireNonNull(limits, "limits");
    }

    /** Binds the captured-traffic listener (15001). */
    public InetSocketAddress bind(InetSocketAddress address) {
        listener = ctx.transport().listen(address, true, ch -> {
            Optional<InetSocketAddress> dst = resolver.originalDestination(ch);
            if (dst.isEmpty()) {
                LOG.warn("outbound connection from {} closed: its original destination is unknown "
                        + "(is capture set up for this workload?)", ch.remoteAddress());
                ch.close();
                return;
            }
            tunnel(ch, (InetSocketAddress) ch.remoteAddress(), dst.get(), outcome -> {});
        });
        return (InetSocketAddress) listener.localAddress();
    }

    /**
     * Carries {@code client} (auto-read off, active) to {@code dst}. {@code ready} runs once, before
     * any byte is relayed, with {@link Outcome.Allowed} when the tunnel is up or the refusal or
     * failure otherwise; on failure the client is closed after it.
     */
    public void tunnel(Channel client, InetSocketAddress src, InetSocketAddress dst, Consumer<Outcome> ready) {
        tunnel(client, src, dst, ctx.index().workloadByAddress(src.getAddress())
                .filter(w -> w.getNode().equals(ctx.nodeName())), ready);
    }

    /**
     * As {@link #tunnel(Channel, InetSocketAddress, InetSocketAddress, Consumer)}, with the source given.
     * A workload's connection is first admitted by its {@link WorkloadLimits}: at once, after a delay
     * (the client waits, connected, reading nothing), or refused with {@link Outcome.Limited} (at
     * once, or at the end of the longest wait when it is over the rate); then by the workloads'
     * {@link FairShare}, which may make it wait but never refuses it.
     */
    public void tunnel(Channel client, InetSocketAddress src, InetSocketAddress dst, Optional<Workload> source,
            Consumer<Outcome> ready) {
        open.add(client);
        if (source.isEmpty()) {
            admitted(client, src, dst, source, ready, null);
            return;
        }
        Workload w = source.get();
        WorkloadLimits.Admission a = limits.admit(w.getUid(), System.nanoTime());
        if (a.counted()) {
            client.closeFuture().addListener(f -> limits.release(w.getUid(), System.nanoTime()));
        }
        String name = w.getNamespace() + "/" + w.getName();
        Runnable next = a.admitted() ? () -> fairly(client, src, dst, w, ready, null) : () -> {
            ctx.telemetry().registry().counter(REFUSED, "workload", name, "reason", a.refused().label()).increment();
            fail(client, ready, new Outcome.Limited(a.refused(), "refused: workload " + name + " is over its "
                    + a.refused().label() + " limit (" + limits.settings() + ")"), unrouted(src, dst, source,
                            source
                                    .map(IdentityProvider::workloadId)));
        };
        if (a.delayNanos() == 0) {
            next.run();
            return;
        }
        if (a.admitted()) {
            ctx.telemetry().registry().counter(DELAYED, "workload", name).increment();
        }
        client.eventLoop().schedule(() -> {
            if (client.isActive()) {
                next.run();
            }
        }, a.delayNanos(), TimeUnit.NANOSECONDS);
    }

    /**
     * Starts the setup of {@code source}'s connection when its {@link FairShare} lets it, else waits
     * (on the client's loop, connected, reading nothing) until the share's window ends and asks again:
     * a workload opening connections as fast as it can beside others kept waiting is held to its
     * share of each window, never refused for it. The first wait of each connection is counted as
     * delayed. The connection's {@link FairShare.Exchange} starts at the first ask ({@code ex} null)
     * and ends when the client's connection closes.
     */
    private void fairly(Channel client, InetSocketAddress src, InetSocketAddress dst, Workload source,
            Consumer<Outcome> ready, FairShare.Exchange ex) {
        boolean waited = ex != null;
        FairShare.Exchange e = waited ? ex : limits.fair().exchange(source.getUid(), System.nanoTime());
        if (e == null) {
            admitted(client, src, dst, Optional.of(source), ready, null);
            return;
        }
        if (!waited) {
            client.closeFuture().addListener(f -> e.end());
        }
        long wait = limits.fair().connection(e, System.nanoTime());
        if (wait == 0) {
            admitted(client, src, dst, Optional.of(source), ready, e);
            return;
        }
        if (!waited) {
            ctx.telemetry().registry().counter(DELAYED, "workload", source.getNamespace() + "/" + source.getName())
                    .increment();
        }
        client.eventLoop().schedule(() -> {
            if (client.isActive()) {
                fairly(client, src, dst, source, ready, e);
            }
        }, wait, TimeUnit.NANOSECONDS);
    }

    /** The source workloads' limits and fair share. */
    public WorkloadLimits limits() {
        return limits;
    }

    /** Client connections being carried now (or waiting to be), from every listener that tunnels here. */
    public int openConnections() {
        return open.size();
    }

    /** Resets every open client connection (a drain's deadline: these did not end in time); how many. */
    public int resetAll() {
        int n = 0;
        for (Channel c : List.copyOf(open)) {
            if (open.remove(c)) {
                LOG.info("resetting the outbound connection from {}: still open at the drain deadline", c
                        .remoteAddress());
                ConnectionManager.reset(c);
                n++;
            }
        }
        return n;
    }

    /** The counter of connections refused by their workload's limit, by workload and reason. */
    public static final String REFUSED = "wisp_workload_connections_refused";
    /** The counter of connections that waited for their workload's rate or fair share. */
    public static final String DELAYED = "wisp_workload_connections_delayed";
    /** The counter of the times a connection stopped reading for its workload's byte rate or fair share. */
    public static final String PAUSED = "wisp_workload_bytes_paused";

    /**
     * The byte budget of {@code source}'s relay ({@link Relay#join(Channel, Channel, Telemetry.Flow,
     * Relay.Budget)}: its byte rate and its connection's fair-share exchange {@code ex}), each pause
     * counted; null without either or without a source workload.
     */
    private Relay.Budget budget(Optional<Workload> source, FairShare.Exchange ex) {
        if (source.isEmpty() || !limits.chargesBytes()) {
            return null;
        }
        Workload w = source.get();
        Counter paused = ctx.telemetry().registry().counter(PAUSED, "workload", w.getNamespace() + "/" + w.getName());
        return (fromClient, n) -> {
            long now = System.nanoTime();
            long pause = Math.max(limits.bytes(w.getUid(), n, now), ex == null ? 0 : ex.read(fromClient, n, now));
            if (pause > 0) {
                paused.increment();
            }
            return pause;
        };
    }

    private void admitted(Channel client, InetSocketAddress src, InetSocketAddress dst, Optional<Workload> source,
            Consumer<Outcome> ready, FairShare.Exchange ex) {
        Optional<SpiffeId> srcId = source.map(IdentityProvider::workloadId);
        if (Hbone.meshPort(dst.getPort(), ctx.agentPorts()) && ctx.index().workloadByAddress(dst.getAddress())
                .map(w -> w.getNode().equals(ctx.nodeName())).orElse(false)) {
            fail(client, ready, new Outcome.Loop("destination " + dst + " is an agent port (loop)"),
                    unrouted(src, dst, source, srcId));
            return;
        }
        Route route;
        try {
            route = Route.of(ctx.index().snapshot(), dst,
                    key -> roundRobin.computeIfAbsent(key, k -> new AtomicInteger()).getAndIncrement(),
                    ctx.hbonePort());
        } catch (Route.NoRouteException e) {
            fail(client, ready, e.outcome(), unrouted(src, dst, source, srcId));
            return;
        }
        Telemetry.Flow flow = ctx.telemetry().open("outbound",
                new ConnectionLabels("source", source, srcId, route.destination(), route.peerIdentity(),
                        route.service(), route.hbone())
                        .withProtocol(route.hbone() ? ConnectionLabels.NOT_CARRIED : ConnectionLabels.TCP),
                src, route.target(), route.hbone() ? Hbone.authority(route.connectTo()) : null);
        Relay.Budget budget = budget(source, ex);
        if (!route.hbone()) {
            direct(client, route, flow, budget, ready);
            return;
        }
        if (source.isEmpty()) {
            fail(client, ready, new Outcome.NoSourceIdentity("source " + src + " is not a workload of node "
                    + ctx.nodeName() + ": no identity to present"), flow);
            return;
        }
        PoolKey key = new PoolKey(srcId.get(), route.expectedIdentities(), route.connectTo());
        String authority = Hbone.authority(route.target());
        String forwarded = "for=\"" + Hbone.authority(forwardedFor(src, source.get())) + "\"";
        tunnel(new Tunnel(key, client, authority, forwarded, flow, budget, ready), true);
    }

    /**
     * One client connection's HBONE tunnel, as asked of the pool (and asked again after a 421).
     *
     * @param authority the CONNECT target, {@code ip:port}
     * @param forwarded the {@code forwarded} header's value: the client workload's address
     * @param budget the client workload's byte budget, for the relay
     * @param ready told the outcome once the tunnel is up or refused
     */
    private record Tunnel(PoolKey key, Channel client, String authority, String forwarded, Telemetry.Flow flow,
            Relay.Budget budget, Consumer<Outcome> ready) {}

    /**
     * Opens the HBONE stream and sends CONNECT; with {@code mayRetry}, a 421 answer (the server no
     * longer accepts the certificate that connection was made with, and sends GOAWAY ahead of the
     * answer) is retried once ({@link ConnectAnswer}'s rule, which {@link HboneTunnel} shares), which the
     * pool puts on a new connection, made with the current certificate.
     */
    private void tunnel(Tunnel t, boolean mayRetry) {
        Runnable again = mayRetry ? () -> tunnel(t, false) : null;
        Promise<Channel> stream = t.client().eventLoop().newPromise();
        hbone.open(t.key(), protocol -> new ConnectRequest(protocol, t, again), stream);
        stream.addListener((Future<Channel> f) -> {
            if (!f.isSuccess()) {
                fail(t.client(), t.ready(), f.cause() instanceof HboneException h
                        ? h.outcome()
                        : new Outcome.Unreachable("HBONE stream to " + t.key().destination() + " could not be "
                                + "opened: " + f.cause().getMessage()),
                        t.flow());
            }
        });
    }

    /**
     * The source address the destination sees in {@code forwarded}: the client's own, unless it is a
     * loopback address (a SOCKS5 client on the node), which means nothing elsewhere: then the
     * source workload's address.
     */
    private static InetSocketAddress forwardedFor(InetSocketAddress src, Workload source) {
        if (!src.getAddress().isLoopbackAddress() || source.getAddressesCount() == 0) {
            return src;
        }
        return new InetSocketAddress(Route.address(source.getAddresses(0)), src.getPort());
    }

    private void direct(Channel client, Route route, Telemetry.Flow flow, Relay.Budget budget,
            Consumer<Outcome> ready) {
        ctx.transport().connect(client.eventLoop(), route.connectTo(), ctx.connectTimeout())
                .addListener((ChannelFutureListener) f -> {
                    if (!f.isSuccess()) {
                        fail(client, ready, new Outcome.Unreachable("connection to " + route.connectTo() + " failed: "
                                + f.cause().getMessage()), flow);
                        return;
                    }
                    if (!client.isActive()) {
                        f.channel().close();
                        flow.close(new Outcome.ClientClosed("client closed before the connection was up"));
                        return;
                    }
                    ready.accept(Outcome.allowed());
                    Relay.join(client, f.channel(), flow, budget);
                });
    }

    /** The flow of a connection refused before it had a route: its destination is only the address asked for. */
    private Telemetry.Flow unrouted(InetSocketAddress src, InetSocketAddress dst, Optional<Workload> source,
            Optional<SpiffeId> srcId) {
        return ctx.telemetry().open("outbound", new ConnectionLabels("source", source, srcId, Optional.empty(),
                Optional.empty(), "", false).withProtocol(ConnectionLabels.NOT_CARRIED), src, dst, null);
    }

    /** Tells the client (SOCKS5 reply), closes it and records the outcome on {@code flow}. */
    private static void fail(Channel client, Consumer<Outcome> ready, Outcome outcome, Telemetry.Flow flow) {
        LOG.debug("outbound connection from {} failed: {}", client.remoteAddress(), outcome.error().orElse("-"));
        ready.accept(outcome);
        client.close();
        flow.close(outcome);
    }

    @Override
    public void close() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
    }

    /**
     * What the upstream agent's first frame on a CONNECT stream means: 200 (stream left open) is the
     * tunnel; 401 its policy's denial; another status a failure of that agent; anything that is not
     * a HEADERS frame with a numeric {@code :status}, or a 200 that ends the stream, is not HBONE.
     */
    static Outcome answer(CharSequence authority, Object first) {
        return answer(StreamProtocol.H2, authority, first);
    }

    /** {@link #answer(CharSequence, Object)} for a stream of {@code protocol}. */
    static Outcome answer(StreamProtocol protocol, CharSequence authority, Object first) {
        String what = "HBONE CONNECT " + authority;
        Optional<StreamProtocol.Head> head = protocol.head(first);
        if (head.isEmpty()) {
            return new Outcome.Malformed(what + " answered with " + first.getClass().getSimpleName()
                    + ", not HEADERS");
        }
        StreamProtocol.Head h = head.get();
        CharSequence status = h.status();
        if (status == null) {
            return new Outcome.Malformed(what + " answered without :status");
        }
        int code;
        try {
            code = Integer.parseInt(status.toString());
        } catch (NumberFormatException e) {
            return new Outcome.Malformed(what + " answered :status '" + status + "'");
        }
        return switch (code) {
            case 200 -> h.endStream()
                    ? new Outcome.Malformed(what + " answered 200 and ended the stream")
                    : Outcome.allowed();
            case 401 -> new Outcome.DeniedUpstream(what + " answered 401");
            default -> new Outcome.UpstreamStatus(code, what + " answered " + code);
        };
    }

    /**
     * On a new HBONE stream: sends CONNECT, waits for the response; on 200 joins the relay (frames
     * that follow the 200 in the same read are replayed into it), otherwise fails the client.
     */
    private static final class ConnectRequest extends ConnectAnswer {
        private final StreamProtocol protocol;
        private final Tunnel t;

        ConnectRequest(StreamProtocol protocol, Tunnel t, Runnable again) {
            super(t.authority(), again);
            this.protocol = protocol;
            this.t = t;
        }

        @Override
        ChannelFuture request(ChannelHandlerContext c) {
            return protocol.request(c, target(), t.forwarded());
        }

        @Override
        Outcome read(Object answer) {
            t.flow().protocol(protocol.label()); // the answer came over it, be it a refusal
            return answer(protocol, target(), answer);
        }

        @Override
        boolean answered(ChannelHandlerContext c, Outcome answer) {
            if (!(answer instanceof Outcome.Allowed)) {
                c.close();
                fail(t.client(), t.ready(), answer, t.flow());
                return false;
            }
            if (!t.client().isActive()) {
                c.close();
                t.flow().close(new Outcome.ClientClosed("client closed before the tunnel was up"));
                return false;
            }
            t.ready().accept(answer);
            // As on the server: the relay's handlers go in behind this one, which then leaves, and
            // frames that followed the answer continue from here into them.
            Channel stream = c.channel();
            protocol.toRelay(stream);
            Relay.join(t.client(), stream, t.flow(), t.budget());
            return true;
        }

        @Override
        void unanswered(Outcome why) {
            fail(t.client(), t.ready(), why, t.flow());
        }
    }
}
