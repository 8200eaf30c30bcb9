package dev.wisp.node.xds;

import static java.util.Objects.requireNonNull;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.function.ToDoubleFunction;

/**
 * The agent's workload discovery stream on its {@code /metrics}, read from
 * {@link WorkloadXdsClient#status()} at scrape time (the scraping thread; nothing on the stream's
 * path): {@code wisp_xds_connected} (1 while the stream is open and has answered), {@code
 * wisp_xds_last_update_age_seconds} (since the last configuration applied; before the first, since
 * the client started — so "no configuration for N minutes" is one threshold either way), {@code
 * wisp_xds_config_generation} (the control plane's generation the agent last applied, beside the
 * control plane's own {@code wisp_config_generation}; an agent is sent only what concerns it, so a
 * lower number alone is not staleness, one that stays lower after a rejected update is) and
 * {@code wisp_xds_updates_total{result="applied"|"rejected"}} (ACKed and NACKed responses). Istio's
 * agents have no series for these; Envoy's nearest is {@code control_plane.connected_state}.
 *
 * <p>Registering holds the client until the registry is dropped; nothing to close.
 */
public final class XdsMetrics {
    private XdsMetrics() {}

    /** Registers the stream's series for {@code client} on {@code registry}. */
    public static void bind(WorkloadXdsClient client, MeterRegistry registry) {
        requireNonNull(client, "client");
        requireNonNull(registry, "registry");
        gauge(registry, client, "wisp_xds_connected", "1 while the workload discovery stream to the control plane "
                + "is open and has answered, else 0", c -> c.status().connected() ? 1 : 0);
        gauge(registry, client, "wisp_xds_last_update_age_seconds", "seconds since the agent last applied "
                + "configuration from the control plane (before the first, since it started asking)",
                c -> c.status().sinceUpdate().toMillis() / 1e3);
        gauge(registry, client, "wisp_xds_config_generation", "the control plane's configuration generation the "
                + "agent last applied (0 before the first)", c -> c.status().generation());
        for (boolean applied : new boolean[]{true, false}) {
            FunctionCounter.builder("wisp_xds_updates", client, c -> applied ? c.status().acks() : c.status().nacks())
                    .tag("result", applied ? "applied" : "rejected").description("configuration responses from the "
                            + "control plane, applied (ACKed) or rejected (NACKed)")
                    .register(registry);
        }
    }

    private static void gauge(MeterRegistry registry, WorkloadXdsClient client, String name, String help,
            ToDoubleFunction<WorkloadXdsClient> value) {
        Gauge.builder(name, client, value).description(help).register(registry);
    }
}
