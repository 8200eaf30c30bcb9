package dev.wisp.controlplane.envoy;

import static dev.wisp.controlplane.route.RouteFixtures.httpRoute;
import static dev.wisp.controlplane.route.RouteFixtures.model;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.route.HttpRequest;
import dev.wisp.controlplane.route.RouteDecision;
import dev.wisp.controlplane.route.RouteEngine;
import dev.wisp.waypoint.route.EnvoyRoutes;
import dev.wisp.waypoint.route.Faults;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.extensions.filters.common.fault.v3.FaultDelay;
import io.envoyproxy.envoy.extensions.filters.http.fault.v3.FaultAbort;
import io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault;
import io.envoyproxy.envoy.type.v3.FractionalPercent;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * An HTTPFault named by a rule's ExtensionRef: emitted as Envoy's fault filter configuration on the
 * rule's routes (the proto round-trips through its wire form), applied alike by the waypoint's
 * {@link Faults} and by {@code wisp route check} ({@link RouteEngine}); a name no HTTPFault has makes
 * the rule answer 500 on both.
 */
class FaultTranslationTest {
    private static final String FAULTS = """
            apiVersion: wisp.dev/v1alpha1
            kind: HTTPFault
            metadata: {name: broken, namespace: shop}
            spec:
              delay: {fixedDelay: 300ms}
              abort: {httpStatus: 503, percentage: 100}
            ---
            apiVersion: wisp.dev/v1alpha1
            kind: HTTPFault
            metadata: {name: slow, namespace: shop}
            spec:
              delay: {fixedDelay: 1s250ms, percentage: 40}
            """;
    private static final MeshModel MODEL = model(FAULTS, httpRoute("r", """
              rules:
              - matches: [{path: {value: /broken}}]
                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: broken}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{path: {value: /slow}}]
                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: slow}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{path: {value: /missing}}]
                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: nothing}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{path: {value: /plain}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
            """));

    @Test
    void theRuleCarriesEnvoysFaultFilterConfigurationThatRoundTrips() throws Exception {
        RouteConfiguration parsed = roundTripped(MODEL);
        List<Route> broken = routes(parsed, "/broken");
        assertThat(broken).as("a PathPrefix is two Envoy routes, each with the fault").hasSize(2);
        FractionalPercent all = FractionalPercent.newBuilder().setNumerator(100).build();
        HTTPFault expected = HTTPFault.newBuilder()
                .setDelay(FaultDelay.newBuilder().setFixedDelay(com.google.protobuf.Duration.newBuilder()
                        .setNanos(300_000_000)).setPercentage(all))
                .setAbort(FaultAbort.newBuilder().setHttpStatus(503).setPercentage(all)).build();
        for (Route r : broken) {
            Any config = r.getTypedPerFilterConfigMap().get("envoy.filters.http.fault");
            assertThat(config.getTypeUrl())
                    .isEqualTo("type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault");
            assertThat(config.unpack(HTTPFault.class)).isEqualTo(expected);
            assertThat(Faults.draw(r, new Random(1))).isEqualTo(new Faults.Injected(Duration.ofMillis(300), 503));
        }
        assertThat(routes(parsed, "/plain").getFirst().getTypedPerFilterConfigMap()).isEmpty();
        assertThat(routes(parsed, "/missing")).allSatisfy(r -> {
            assertThat(r.hasDirectResponse()).as("an ExtensionRef to nothing answers 500").isTrue();
            assertThat(r.getDirectResponse().getStatus()).isEqualTo(500);
        });
    }

    @Test
    void routeCheckAndTheWaypointAnswerTheAbortAndTheMissingReferenceAlike() {
        RouteDecision aborted = decide("/broken", new Random(3));
        assertThat(aborted.status()).isEqualTo(503);
        assertThat(aborted.delay()).isEqualTo(Duration.ofMillis(300));
        assertThat(aborted.reason()).isEqualTo("aborted by HTTPFault shop/broken of HTTPRoute shop/r rule 0 after a "
                + "delay of 300 ms");
        RouteDecision missing = decide("/missing", new Random(3));
        assertThat(missing.status()).isEqualTo(500);
        assertThat(missing.reason()).contains("HTTPFault shop/nothing, which does not exist");
        EnvoyRoutes.Decision d = EnvoyRoutes.decide(EnvoyTranslatorTest.routeConfiguration(MODEL).getVirtualHosts(0),
                new EnvoyRoutes.Request("GET", "/missing", "", Map.of("host", List.of("reviews"))), 0.5);
        assertThat(d).isInstanceOfSatisfying(EnvoyRoutes.Decision.Respond.class,
                r -> assertThat(r.status()).isEqualTo(500));
    }

    @Test
    void aGrpcStatusAbortIsEmittedAsEnvoysGrpcStatusAndAnsweredAlikeOnBothSides() throws Exception {
        MeshModel model = model("""
                apiVersion: wisp.dev/v1alpha1
                kind: HTTPFault
                metadata: {name: busy, namespace: shop}
                spec:
                  abort: {grpcStatus: 14}
                """, httpRoute("r", """
                  rules:
                  - matches: [{path: {value: /busy}}]
                    filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: busy}}]
                    backendRefs: [{name: reviews-v1, port: 9080}]
                """));
        Route r = routes(roundTripped(model), "/busy").getFirst();
        FaultAbort abort = r.getTypedPerFilterConfigMap().get("envoy.filters.http.fault").unpack(HTTPFault.class)
                .getAbort();
        assertThat(abort.getErrorTypeCase()).isEqualTo(FaultAbort.ErrorTypeCase.GRPC_STATUS);
        assertThat(abort.getGrpcStatus()).isEqualTo(14);
        assertThat(Faults.draw(r, new Random(1))).isEqualTo(new Faults.Injected(Duration.ZERO, 200, 14));
        RouteDecision d = RouteEngine.of(model).decide(new RouteEngine.Target("shop", "reviews", 9080), null,
                new HttpRequest("GET", "/busy", "", "reviews.shop.svc.cluster.local:9080", List.of()), new Random(1));
        assertThat(d.status()).isEqualTo(200);
        assertThat(d.grpcStatus()).isEqualTo(14);
        assertThat(d.forwarded()).isFalse();
        assertThat(d.reason()).endsWith("with grpc-status 14");
    }

    @Test
    void aFortyPercentDelayHoldsAboutFortyPercentOfRequestsOnBothSides() {
        Random engine = new Random(11);
        Random waypoint = new Random(11);
        Route slow = routes(EnvoyTranslatorTest.routeConfiguration(MODEL), "/slow").getFirst();
        int byEngine = 0;
        int byWaypoint = 0;
        for (int i = 0; i < 2000; i++) {
            RouteDecision d = decide("/slow", engine);
            assertThat(d.status()).isEqualTo(200);
            if (d.delay() != null) {
                assertThat(d.delay()).isEqualTo(Duration.ofMillis(1250));
                byEngine++;
            }
            Faults.Injected f = Faults.draw(slow, waypoint);
            assertThat(f.aborted()).isFalse();
            if (f.delayed()) {
                assertThat(f.delay()).isEqualTo(Duration.ofMillis(1250));
                byWaypoint++;
            }
        }
        assertThat(byEngine).isBetween(700, 900);
        assertThat(byWaypoint).isBetween(700, 900);
    }

    private static RouteDecision decide(String path, Random random) {
        return RouteEngine.of(MODEL).decide(new RouteEngine.Target("shop", "reviews", 9080), null,
                new HttpRequest("GET", path, "", "reviews.shop.svc.cluster.local:9080", List.of()), random);
    }

    /** {@code model}'s route configuration, through its wire form and back (asserted equal). */
    static RouteConfiguration roundTripped(MeshModel model) throws Exception {
        RouteConfiguration rc = EnvoyTranslatorTest.routeConfiguration(model);
        RouteConfiguration parsed = RouteConfiguration.parseFrom(rc.toByteArray());
        assertThat(parsed).isEqualTo(rc);
        return parsed;
    }

    static List<Route> routes(RouteConfiguration rc, String prefix) {
        return rc.getVirtualHosts(0).getRoutesList().stream()
                .filter(r -> r.getMatch().getPath().equals(prefix) || r.getMatch().getPrefix().equals(prefix + "/"))
                .toList();
    }
}
