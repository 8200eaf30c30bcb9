package dev.wisp.waypoint.route;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The routes' filters unpacked once per configuration, not per request. */
class RouteFiltersTest {
    static RouteConfiguration config(Route... routes) {
        return RouteConfiguration.newBuilder().setName("c").addVirtualHosts(VirtualHost.newBuilder().setName("v")
                .addAllRoutes(List.of(routes))).build();
    }

    @Test
    void aConfigurationsRoutesAreUnpackedOnceAndKeptUntilAnotherConfigurationComes() {
        RouteConfiguration one = config(FaultsTest.route(FaultsTest.abort(503, 100)), Route.newBuilder()
                .setName("plain").build());
        Route faulty = one.getVirtualHosts(0).getRoutes(0);
        Route plain = one.getVirtualHosts(0).getRoutes(1);
        RouteFilters filters = new RouteFilters();
        Object version = new Object();
        RouteFilters.Table t = filters.table(version, List.of(one));
        RouteFilters.Resolved first = t.of(faulty);
        assertThat(first.fault().getAbort().getHttpStatus()).isEqualTo(503);
        assertThat(first.rateLimit()).isNull();
        assertThat(t.of(plain)).isSameAs(RouteFilters.Resolved.NONE);
        // The same configuration again: the same table, the same unpacked objects.
        assertThat(filters.table(version, List.of(one))).isSameAs(t);
        assertThat(filters.table(version, List.of(one)).of(faulty)).isSameAs(first);
        // Another configuration (another object): a new table with its own routes.
        RouteConfiguration two = config(FaultsTest.route(FaultsTest.abort(418, 100)));
        RouteFilters.Table t2 = filters.table(new Object(), List.of(two));
        assertThat(t2).isNotSameAs(t);
        assertThat(t2.of(two.getVirtualHosts(0).getRoutes(0)).fault().getAbort().getHttpStatus()).isEqualTo(418);
        // A route outside the table (a test's, built by hand) is unpacked as it is asked about.
        assertThat(t2.of(faulty).fault().getAbort().getHttpStatus()).isEqualTo(503);
    }
}
