package dev.wisp.controlplane.translate;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.testing.ConfigYaml;
import java.net.InetAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Which Service and Workload resources carry a {@code waypoint}: the Gateway, its pod, and the
 * {@code use-waypoint} labels on the namespace, the service or the pod, as Istio reads them.
 */
class WaypointsTest {
    static final String WAYPOINT_POD = ConfigYaml.pod("waypoint-7f", "shop",
            "gateway.networking.k8s.io/gateway-name: waypoint", "node-a", "waypoint-sa", "10.1.1.9");

    static String gateway(String name, String waypointFor) {
        return ConfigYaml.waypointGateway(name, "shop", waypointFor);
    }

    static final String SHOP_USES_WAYPOINT = """
            apiVersion: v1
            kind: Namespace
            metadata: {name: shop, labels: {istio.io/use-waypoint: waypoint}}
            """;

    static Translation translate(String... docs) {
        return Translator.translate(TranslatorTest.model(ConfigYaml.documents(docs)), null);
    }

    static Resource service(Translation t) {
        return t.resources(TypeUrls.SERVICE).get("shop/web.shop.svc.cluster.local");
    }

    static Resource workload(Translation t, String name) {
        return t.resources(TypeUrls.WORKLOAD).values().stream().filter(r -> r.getWorkload().getName().equals(name))
                .findFirst().orElseThrow();
    }

    static GatewayAddress expected() throws Exception {
        return GatewayAddress.newBuilder().setAddress(Translator.bytes(InetAddress.getByName("10.1.1.9")))
                .setHbonePort(15008).setIdentity("spiffe://cluster.local/ns/shop/sa/waypoint-sa").build();
    }

    @Test
    void aNamespaceLabelGivesItsServicesTheWaypointsPodAddressAndIdentityButNotItsPods() throws Exception {
        Translation t = translate(gateway("waypoint", "service"), WAYPOINT_POD, SHOP_USES_WAYPOINT);
        assertThat(service(t).getService().getWaypoint()).isEqualTo(expected());
        assertThat(workload(t, "web-1").getWorkload().hasWaypoint()).as("waypoint-for: service").isFalse();
        assertThat(workload(t, "waypoint-7f").getWorkload().hasWaypoint()).isFalse();
        assertThat(t.warnings()).isEmpty();
    }

    @Test
    void waypointForAllServesPodsTooExceptTheWaypointsOwn() throws Exception {
        Translation t = translate(gateway("waypoint", "all"), WAYPOINT_POD, SHOP_USES_WAYPOINT);
        assertThat(service(t).getService().getWaypoint()).isEqualTo(expected());
        assertThat(workload(t, "web-1").getWorkload().getWaypoint()).isEqualTo(expected());
        assertThat(workload(t, "waypoint-7f").getWorkload().hasWaypoint()).as("its traffic would loop").isFalse();
    }

    @Test
    void aServiceLabelNoneOptsOutOfItsNamespacesWaypoint() {
        Translation t = translate(gateway("waypoint", "service"), WAYPOINT_POD, SHOP_USES_WAYPOINT, """
                apiVersion: v1
                kind: Service
                metadata: {name: admin, namespace: shop, labels: {istio.io/use-waypoint: none}}
                spec: {selector: {app: web}, clusterIP: 10.96.0.11, ports: [{port: 81, targetPort: 8081}]}
                """);
        assertThat(t.resources(TypeUrls.SERVICE).get("shop/admin.shop.svc.cluster.local").getService()
                .hasWaypoint()).isFalse();
        assertThat(service(t).getService().hasWaypoint()).as("the namespace's label").isTrue();
    }

    @Test
    void aPodLabelNamesAWaypointInAnotherNamespace() throws Exception {
        Translation t = translate(gateway("waypoint", "workload"), WAYPOINT_POD, ConfigYaml.pod("db-2", "data",
                "app: db, istio.io/use-waypoint: waypoint, istio.io/use-waypoint-namespace: shop", "node-b", "db",
                "10.1.2.8"));
        assertThat(workload(t, "db-2").getWorkload().getWaypoint()).isEqualTo(expected());
        assertThat(service(t).getService().hasWaypoint()).isFalse();
    }

    @Test
    void aLabelNamingNoWaypointAndAWaypointWithoutAPodAreWarningsAndTheTrafficGoesDirect() {
        Translation t = translate(gateway("waypoint", "service"), SHOP_USES_WAYPOINT, ConfigYaml.pod("db-2", "data",
                "app: db, istio.io/use-waypoint: missing", "node-b", "db", "10.1.2.8"));
        assertThat(service(t).getService().hasWaypoint()).isFalse();
        assertThat(t.warnings()).containsOnlyKeys(new ObjectRef("Gateway", "shop", "waypoint"),
                new ObjectRef("Pod", "data", "db-2"));
        assertThat(t.warnings().get(new ObjectRef("Gateway", "shop", "waypoint"))).containsExactly(
                "no ready pod labelled gateway.networking.k8s.io/gateway-name: waypoint runs this waypoint in "
                        + "namespace shop; the traffic that uses it goes direct until one runs");
        assertThat(t.warnings().get(new ObjectRef("Pod", "data", "db-2"))).isEqualTo(List.of(
                "use-waypoint names data/missing, which no Gateway of a waypoint class with the listener "
                        + "{name: mesh, port: 15008, protocol: HBONE} declares; its traffic goes direct"));
    }

    @Test
    void aGatewayOfAnotherClassIsNoWaypoint() {
        Translation t = translate(gateway("waypoint", "service").replace("istio-waypoint", "nginx"), WAYPOINT_POD,
                SHOP_USES_WAYPOINT);
        assertThat(service(t).getService().hasWaypoint()).isFalse();
        assertThat(t.warnings()).containsOnlyKeys(new ObjectRef("Service", "shop", "web"),
                new ObjectRef("Pod", "shop", "web-1"), new ObjectRef("Pod", "shop", "waypoint-7f"));
    }
}
