package dev.wisp.waypoint.proxy;

import dev.wisp.waypoint.route.EnvoyRoutes.Decision;
import dev.wisp.waypoint.route.Retries;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.netty.handler.codec.http.FullHttpResponse;

/**
 * Where one request's attempts go and how far they got: the routed cluster, read in the configuration
 * the request was routed with, under the route's retry plan; and the last endpoint and the count of
 * the attempts sent so far, for the request's {@link Attempts.Result}. Both {@link Attempts} (a request read whole)
 * and {@link StreamedCall} (a gRPC call relayed as it comes) send their attempts through one.
 *
 * <p>Not thread-safe: owned by the event loop of the request's client stream.
 */
final class ClusterTries {
    final Forwarder forwarder;
    final Retries plan;
    private final EnvoyConfig config;
    private final String cluster;
    private Forwarder.Endpoint endpoint;
    private int sent;

    /** The attempts at {@code forward}'s cluster under its route's retries, in {@code config}. */
    ClusterTries(Forwarder forwarder, EnvoyConfig config, Decision.Forward forward) {
        this(forwarder, config, forward.cluster(), Retries.of(forward.action()));
    }

    /** The attempts at {@code cluster} under {@code plan}, in {@code config}. */
    ClusterTries(Forwarder forwarder, EnvoyConfig config, String cluster, Retries plan) {
        this.forwarder = forwarder;
        this.config = config;
        this.cluster = cluster;
        this.plan = plan;
    }

    /** The endpoint of the next attempt ({@link Forwarder#pick}), counted as sent. */
    Forwarder.Endpoint next() throws Forwarder.Failure {
        endpoint = forwarder.pick(config, cluster);
        sent++;
        return endpoint;
    }

    /**
     * Whether the attempts go as HTTP/2: as the cluster says ({@link EnvoyConfig#upstreamHttp2}), else as
     * the client spoke ({@code clientHttp2}).
     */
    boolean http2(boolean clientHttp2) {
        return config.upstreamHttp2(cluster, clientHttp2);
    }

    /** How the request ended after the attempts so far; {@code response} null when the waypoint answers. */
    Attempts.Result result(FullHttpResponse response, int status, String reason) {
        String where = endpoint == null ? cluster : cluster + " " + endpoint.address();
        return new Attempts.Result(response, status, reason, sent, where, endpoint);
    }
}
