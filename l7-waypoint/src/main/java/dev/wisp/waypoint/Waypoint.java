package dev.wisp.waypoint;

import dev.wisp.node.NodeSettings;
import static java.util.Objects.requireNonNull;

import dev.wisp.base.admin.AdminHttp;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.proxy.HbonePool;
import dev.wisp.node.proxy.ProxyContext;
import dev.wisp.node.proxy.Transport;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.waypoint.proxy.WaypointServer;
import dev.wisp.waypoint.xds.AdsClient;
import dev.wisp.waypoint.xds.EnvoyConfig;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The waypoint process ({@code wisp waypoint}): builds and owns its parts, in dependency order — the
 * control-plane link (certificate signing and the channel, no workload discovery: it is not a node
 * agent), its identity (the SVID is awaited before anything listens, up to 3 minutes with a progress line
 * every 10 s: {@link CertificateWait}), the Envoy ADS client, the event
 * loops, the agent's HBONE pool, the {@link WaypointServer} on 15008, and the Prometheus listener
 * ({@code /metrics} on 15020: the request series of {@code RequestMetrics} and the HBONE pool's). If a step fails, what was
 * started is closed, newest first. {@link #close} closes everything in reverse order after a drain
 * of open streams.
 *
 * <p>Threads: one accept loop and {@code workers} I/O loops ({@link Transport}), gRPC's threads for
 * the control plane, the certificate manager's renewal thread, the metrics listener's.
 */
public final class Waypoint implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Waypoint.class);
    private final Deque<AutoCloseable> parts = new ArrayDeque<>();
    private final AdsClient ads;
    private final WaypointServer server;
    private final InetSocketAddress address;
    private InetSocketAddress metricsAddress;

    private Waypoint(WaypointSettings s) throws IOException {
        try {
            ControlPlaneClient cp = push(ControlPlaneClient.withoutDiscovery(s.controlPlane(),
                    s.identity().trustDomain()));
            Identities identities = push(Identities.create(s.identity().trustDomain(), cp.signer(), cp.bundle()));
            CertificateWait.await(identities.certificates(), s.identity(), Duration.ofSeconds(
                    CertificateWait.LIMIT_SECONDS), Duration.ofSeconds(CertificateWait.PROGRESS_SECONDS), LOG::info);
            ads = push(new AdsClient(cp.channel(), cp.credentials(), "waypoint~" + s.identity().path() + "~"
                    + s.name(), this::published));
            ads.start();
            Transport transport = push(Transport.create(s.workers()));
            Telemetry telemetry = new Telemetry();
            ProxyContext ctx = new ProxyContext(s.name(), WorkloadIndex.create(), new HboneTls(identities),
                    telemetry, transport, Set.of(), NodeSettings.Ports.ZTUNNEL.hbone(), s.connectTimeout());
            HbonePool pool = push(new HbonePool(ctx, 100, Duration.ofMinutes(5)));
            server = push(
                    new WaypointServer(ctx, pool, s.identity(), ads::current, s.drainTimeout(), s.upstreamIdle()));
            address = server.bind(s.listen());
            if (s.metrics() != null) {
                AdminHttp metrics = push(AdminHttp.start("metrics", s.metrics(), AdminHttp.Access.ANY, AdminHttp
                        .routes().get("/metrics", r -> AdminHttp.Response.prometheus(telemetry.scrape()))));
                metricsAddress = metrics.address();
            }
            LOG.info("waypoint {} ready on {} as {}", s.name(), address, s.identity());
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Starts a waypoint; returns once it listens with its certificate in hand. */
    public static Waypoint start(WaypointSettings settings) throws IOException {
        return new Waypoint(requireNonNull(settings, "settings"));
    }

    private <T extends AutoCloseable> T push(T part) {
        parts.push(part);
        return part;
    }

    private void published(EnvoyConfig c) {
        LOG.info("waypoint holds {} route configurations, {} clusters", c.routes().size(), c.clusters().size());
    }

    /** The HBONE listener's address. */
    public InetSocketAddress address() {
        return address;
    }

    /** The metrics listener's address, or null when it serves none. */
    public InetSocketAddress metricsAddress() {
        return metricsAddress;
    }

    /** What the waypoint holds from the control plane now. */
    public EnvoyConfig config() {
        return ads.current();
    }

    /** Lets open streams finish (up to the drain timeout), then closes every part, newest first. */
    @Override
    public synchronized void close() {
        if (server != null) {
            server.drain();
        }
        while (!parts.isEmpty()) {
            try {
                parts.pop().close();
            } catch (Exception e) {
                LOG.warn("closing the waypoint: {}", e.toString());
            }
        }
    }
}
