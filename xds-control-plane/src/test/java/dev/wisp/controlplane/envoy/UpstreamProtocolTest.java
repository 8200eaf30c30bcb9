package dev.wisp.controlplane.envoy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.ServiceDef.ServicePort;
import dev.wisp.controlplane.route.RouteFixtures;
import dev.wisp.waypoint.xds.AdsClient;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * The HTTP version a service port's endpoints are spoken to in: from {@code appProtocol}, else the port
 * name (Istio's rules), written on the port's cluster, and read back by the waypoint's xDS client from the
 * cluster's bytes.
 */
class UpstreamProtocolTest {
    @ParameterizedTest(name = "name {0}, appProtocol {1} → {2}")
    @CsvSource(nullValues = "-", value = {
            "-, http, HTTP1", "web, HTTP, HTTP1", "web, http2, HTTP2", "web, grpc, HTTP2", "web, grpc-web, HTTP2",
            "web, kubernetes.io/h2c, HTTP2", "web, kubernetes.io/ws, HTTP1", "http2-x, http, HTTP1",
            "web, mysql, AS_CLIENT", "web, -, AS_CLIENT", "http, -, HTTP1", "http-web, -, HTTP1", "http2, -, HTTP2",
            "grpc-api, -, HTTP2", "grpc-web-x, -, HTTP2", "tcp-80, -, AS_CLIENT", "httpx, -, AS_CLIENT",
            "'', -, AS_CLIENT"})
    void theProtocolComesFromAppProtocolElseTheName(String name, String appProtocol, UpstreamProtocol expected) {
        assertThat(UpstreamProtocol.of(new ServicePort(name == null ? "" : name, 80, 8080, null, appProtocol)))
                .isEqualTo(expected);
    }

    @Test
    void eachPortsClusterSaysItsVersionAndTheWaypointReadsIt() throws Exception {
        EnvoyResources r = EnvoyTranslator.translate(RouteFixtures.model("""
                apiVersion: v1
                kind: Service
                metadata: {name: web, namespace: shop}
                spec:
                  selector: {app: reviews}
                  clusterIP: 10.96.0.20
                  ports:
                  - {name: plain, port: 80, targetPort: 9080, appProtocol: http}
                  - {name: grpc-api, port: 81, targetPort: 9080}
                  - {name: tcp-x, port: 82, targetPort: 9080}
                """));
        assertThat(read(r, 80)).as("appProtocol http: HTTP/1.1").contains(false);
        assertThat(read(r, 81)).as("named grpc-…: HTTP/2").contains(true);
        assertThat(read(r, 82)).as("neither: what the client spoke").isEmpty();
        assertThat(upstream(r, EnvoyNames.cluster("shop", "reviews", 9080, "cluster.local")))
                .as("reviews' port has no name: what the client spoke")
                .isEmpty();
    }

    static Optional<Boolean> read(EnvoyResources r, int port) throws Exception {
        return upstream(r, EnvoyNames.cluster("shop", "web", port, "cluster.local"));
    }

    static Optional<Boolean> upstream(EnvoyResources r, String name) throws Exception {
        Cluster c = r.clusters().stream().filter(x -> x.getName().equals(name)).findFirst().orElseThrow();
        return AdsClient.upstreamHttp2(Cluster.parseFrom(c.toByteArray()));
    }
}
