package dev.wisp.node;

import dev.wisp.base.UdpTcpPair;
import dev.wisp.node.proxy.HboneServer;
import dev.wisp.node.proxy.QuicHboneServer;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.BiPredicate;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Binds the HBONE listener, and HBONE over HTTP/3 on UDP at its port's number (clients find it
 * there). An agent that cannot bind that UDP port (taken) still serves HTTP/2: clients in
 * {@code auto} fall back. With port 0 the kernel picks the TCP number without looking at UDP's, so
 * when its UDP twin is taken both are given up and another number tried
 * ({@link UdpTcpPair#EPHEMERAL_ATTEMPTS} in all), as {@link UdpTcpPair} does for DNS.
 */
final class HboneListeners {
    private static final Logger LOG = LoggerFactory.getLogger(HboneListeners.class);

    private HboneListeners() {}

    /**
     * Binds {@code hbone} on {@code address} and a server of {@code quic} on its UDP twin, recording
     * both in {@code bound} ({@code hbone}, {@code hbone_quic}).
     *
     * @return the QUIC server, bound; null when its port could not be bound (HTTP/2 only)
     */
    static QuicHboneServer bind(HboneServer hbone, Supplier<QuicHboneServer> quic, InetSocketAddress address,
            Map<String, InetSocketAddress> bound) {
        for (int attempt = 1;; attempt++) {
            InetSocketAddress tcp = hbone.bind(address);
            bound.put("hbone", tcp);
            QuicHboneServer server = quic.get();
            Optional<String> failure = bindQuic(server, new InetSocketAddress(address.getAddress(), tcp.getPort()),
                    bound);
            if (failure.isEmpty()) {
                return server;
            }
            if (address.getPort() != 0 || attempt >= UdpTcpPair.EPHEMERAL_ATTEMPTS) {
                LOG.warn("HBONE over HTTP/3 not served: UDP {} could not be bound ({}); HTTP/2 only", tcp,
                        failure.get());
                return null;
            }
            LOG.debug("HBONE port {}: its UDP twin is taken ({}); trying another number", tcp, failure.get());
            hbone.unbind();
        }
    }

    /**
     * After a take-over: binds a server of {@code quic} on {@code address} as soon as the old agent
     * gives its UDP socket up (at the end of its drain), trying every half second for {@code within},
     * on a virtual thread; {@code bound} takes it (false: the agent stopped meanwhile, and it is closed).
     */
    static void bindQuicLater(Supplier<QuicHboneServer> quic, InetSocketAddress address, Duration within,
            BiPredicate<QuicHboneServer, InetSocketAddress> bound) {
        long deadline = System.nanoTime() + within.toNanos();
        Thread.ofVirtual().name("wisp-quic-bind").start(() -> {
            Map<String, InetSocketAddress> at = new HashMap<>();
            for (;;) {
                QuicHboneServer server = quic.get();
                Optional<String> failure = bindQuic(server, address, at);
                if (failure.isEmpty()) {
                    if (bound.test(server, at.get("hbone_quic"))) {
                        LOG.info("HBONE over HTTP/3 served on UDP {} (the old agent gave it up)", at.get("hbone_quic"));
                    } else {
                        server.close();
                    }
                    return;
                }
                if (System.nanoTime() - deadline > 0) {
                    LOG.warn("HBONE over HTTP/3 not served: UDP {} still taken after {} ({}); HTTP/2 only", address,
                            within, failure.get());
                    return;
                }
                try {
                    Thread.sleep(500); // polling a port the old agent releases; no event tells us
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
    }

    /** Binds {@code server} on {@code address}; why not, when it cannot (it is closed then). */
    private static Optional<String> bindQuic(QuicHboneServer server, InetSocketAddress address,
            Map<String, InetSocketAddress> bound) {
        try {
            bound.put("hbone_quic", server.bind(address));
            return Optional.empty();
        } catch (Exception e) { // a taken port arrives as a BindException, thrown unchecked through Netty's sync
            server.close();
            return Optional.of(e.toString());
        }
    }
}
