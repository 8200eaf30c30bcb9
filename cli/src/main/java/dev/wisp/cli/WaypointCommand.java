package dev.wisp.cli;

import dev.wisp.node.NodeSettings;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.waypoint.Waypoint;
import dev.wisp.waypoint.WaypointSettings;
import io.netty.util.ResourceLeakDetector;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code wisp waypoint}: runs the L7 waypoint proxy until SIGTERM (then drains and closes it). */
@Command(name = "waypoint", mixinStandardHelpOptions = true, description = {
        "Run an L7 waypoint: an HBONE server (15008, its own SPIFFE identity) that parses the HTTP/1.1",
        "requests inside each tunnel, routes them by the Envoy routes, clusters and endpoints the control",
        "plane serves over ADS (Gateway API HTTPRoutes: path and header matches, weighted backends, 404",
        "when no route matches), and sends each one over a new HBONE stream to the endpoint's node agent.", "",
        "It runs in a pod of the mesh that is not captured (label istio.io/dataplane-mode: none) and uses",
        "the node credential of that pod's node: the CA signs its service account's SVID only there."})
public final class WaypointCommand implements Callable<Integer> {
    @Option(names = "--name", required = true, paramLabel = "NAME", description = "The waypoint's name (its Gateway's).")
    String name;

    @Option(names = "--namespace", required = true, paramLabel = "NS", description = "The waypoint pod's namespace.")
    String namespace;

    @Option(names = "--service-account", required = true, paramLabel = "SA", description = "The waypoint pod's service account: its SPIFFE ID is spiffe://<td>/ns/<NS>/sa/<SA>.")
    String serviceAccount;

    /** {@code --control-plane}, {@code --token-file} and {@code --ca-bundle} (all required), {@code --trust-domain}. */
    @Mixin
    ControlPlaneLink controlPlane;

    @Option(names = "--listen", paramLabel = "IP:PORT", converter = SocketAddressConverter.class, defaultValue = "0.0.0.0:15008", description = "The HBONE listener (default: ${DEFAULT-VALUE}).")
    InetSocketAddress listen;

    @Option(names = "--metrics", paramLabel = "IP:PORT", converter = SocketAddressConverter.class, defaultValue = "0.0.0.0:15020", description = "The Prometheus listener, /metrics: the Istio request series (default: ${DEFAULT-VALUE}).")
    InetSocketAddress metrics;

    @Option(names = "--workers", paramLabel = "N", defaultValue = "1", description = "I/O event loops (default: ${DEFAULT-VALUE}).")
    int workers;

    @Option(names = "--upstream-idle-timeout", paramLabel = "DURATION", defaultValue = "30s", converter = CaCommand.DurationConverter.class, description = "How long a connection to an endpoint is kept without a request (default: ${DEFAULT-VALUE}).")
    Duration upstreamIdle;

    /** The JVM property that sets Netty's leak detection level; the waypoint runs without it unless it is given. */
    static final String LEAK_DETECTION = "io.netty.leakDetection.level";

    @Override
    public Integer call() throws Exception {
        // Netty's default (SIMPLE) records a stack trace for 1 buffer in 128, on the request path: part of
        // the waypoint's JVM time in the benchmark's profile (ARCHITECTURE, "Waypoint benchmark"). The tests
        // that hunt leaks set the property (paranoid), which then wins.
        if (System.getProperty(LEAK_DETECTION) == null) {
            ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
        }
        WaypointSettings settings;
        NodeSettings.Source.ControlPlane source = controlPlane.required();
        try {
            settings = WaypointSettings.of(name, SpiffeId.forServiceAccount(controlPlane.trustDomain(), namespace,
                    serviceAccount), source)
                    .withListen(listen)
                    .withWorkers(workers)
                    .withUpstreamIdle(upstreamIdle)
                    .withMetrics(metrics);
        } catch (IllegalArgumentException e) {
            throw new UserException(e.getMessage(), e);
        }
        Waypoint waypoint;
        try {
            waypoint = Waypoint.start(settings);
        } catch (IOException e) {
            throw new UserException(e.getMessage(), e);
        }
        Foreground.holdUntilStopped("wisp-drain", waypoint::close);
        return 0;
    }
}
