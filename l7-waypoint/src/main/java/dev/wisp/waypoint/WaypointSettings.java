package dev.wisp.waypoint;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.NodeSettings;
import dev.wisp.spiffe.SpiffeId;
import java.net.InetSocketAddress;
import java.time.Duration;

/**
 * Everything {@code wisp waypoint} is told, with its defaults in one place.
 *
 * @param name the waypoint's name (its Gateway's; the Envoy node id is {@code waypoint~<ns>~<name>})
 * @param identity the SPIFFE ID it presents and signs for: its pod's service account, which the CA
 *     signs only for a node where a pod with that account runs (the credential's node)
 * @param controlPlane the control plane's gRPC port, the node credential and the bootstrap CA bundle
 * @param listen the HBONE listener (15008)
 * @param workers I/O event loops
 * @param drainTimeout how long open streams may finish at shutdown
 * @param connectTimeout for HBONE connections to endpoints' nodes
 * @param metrics the Prometheus listener ({@code /metrics}, 15020 as Istio's proxies), or null for none
 * @param upstreamIdle how long an upstream connection to an endpoint (an HBONE stream kept for HTTP/1.1, an
 *     h2c connection) stays open without a request
 */
public record WaypointSettings(String name, SpiffeId identity, NodeSettings.Source.ControlPlane controlPlane,
        InetSocketAddress listen, int workers, Duration drainTimeout, Duration connectTimeout,
        InetSocketAddress metrics, Duration upstreamIdle) {
    public WaypointSettings {
        requireNonNull(name, "name");
        requireNonNull(identity, "identity");
        requireNonNull(controlPlane, "controlPlane");
        requireNonNull(listen, "listen");
        requireNonNull(drainTimeout, "drainTimeout");
        requireNonNull(connectTimeout, "connectTimeout");
        requireNonNull(upstreamIdle, "upstreamIdle");
        if (upstreamIdle.isNegative() || upstreamIdle.isZero()) {
            throw new IllegalArgumentException("upstream idle timeout " + upstreamIdle + " is not positive");
        }
        if (workers < 1) {
            throw new IllegalArgumentException("workers " + workers + " is below 1");
        }
    }

    /**
     * Defaults: 0.0.0.0:15008, one I/O loop, 5 s drain, 5 s connect, metrics on 0.0.0.0:15020 (the HBONE and
     * metrics ports of an agent, {@link NodeSettings.Ports#ZTUNNEL}, as Istio's waypoints share ztunnel's),
     * upstream connections closed after {@link #UPSTREAM_IDLE} unused.
     */
    public static WaypointSettings of(String name, SpiffeId identity, NodeSettings.Source.ControlPlane controlPlane) {
        NodeSettings.Ports ports = NodeSettings.Ports.ZTUNNEL;
        return new WaypointSettings(name, identity, controlPlane, new InetSocketAddress(ports.hbone()), 1,
                Duration.ofSeconds(5), Duration.ofSeconds(5), new InetSocketAddress(ports.metrics()), UPSTREAM_IDLE);
    }

    /** How long an upstream connection is kept without a request, by default. */
    public static final Duration UPSTREAM_IDLE = Duration.ofSeconds(30);

    public WaypointSettings withListen(InetSocketAddress a) {
        return new WaypointSettings(name, identity, controlPlane, a, workers, drainTimeout, connectTimeout, metrics,
                upstreamIdle);
    }

    public WaypointSettings withWorkers(int n) {
        return new WaypointSettings(name, identity, controlPlane, listen, n, drainTimeout, connectTimeout, metrics,
                upstreamIdle);
    }

    /** The metrics listener's address; null serves no metrics. */
    public WaypointSettings withMetrics(InetSocketAddress a) {
        return new WaypointSettings(name, identity, controlPlane, listen, workers, drainTimeout, connectTimeout, a,
                upstreamIdle);
    }

    /** How long an upstream connection stays open without a request. */
    public WaypointSettings withUpstreamIdle(Duration d) {
        return new WaypointSettings(name, identity, controlPlane, listen, workers, drainTimeout, connectTimeout,
                metrics,
                d);
    }
}
