package dev.wisp.controlplane.envoy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.route.RouteFixtures;
import dev.wisp.controlplane.translate.Translator;
import dev.wisp.testing.ConfigYaml;
import dev.wisp.testing.ExtAuthzServer;
import dev.wisp.waypoint.authz.ExtAuthzClient;
import dev.wisp.waypoint.authz.RequestGate;
import dev.wisp.waypoint.xds.AdsClient;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * CUSTOM AuthorizationPolicies end to end in this JVM: MeshConfig's {@code extensionProviders} and the
 * policy YAML are translated by the control plane ({@link CustomAuthz} through {@link EnvoyTranslator}:
 * the listener's ext_authz filter, the provider's cluster and load assignment, the virtual host's shadow
 * rules), read back as the waypoint reads xDS ({@link AdsClient#extAuthz}), and the waypoint's
 * {@link RequestGate} decides requests on it by calling a real ext_authz gRPC server
 * ({@link ExtAuthzServer} on loopback) through {@link ExtAuthzClient}.
 */
class CustomAuthzTest {
    static final String CLIENT = "spiffe://cluster.local/ns/shop/sa/client";
    static final String ROUTES = "reviews.shop.svc.cluster.local:9080";
    static final InetSocketAddress VIP = new InetSocketAddress(InetAddress.ofLiteral("10.96.0.10"), 9080);
    static final String CUSTOM = WaypointAuthzTest.policy("ext", "Gateway/waypoint", """
              action: CUSTOM
              provider: {name: authz}
              rules: [{to: [{operation: {paths: ["/private*"]}}]}]
            """);
    static ExtAuthzServer server;
    static ExtAuthzClient client;
    static final List<String> counted = new CopyOnWriteArrayList<>();

    @BeforeAll
    static void start() {
        server = ExtAuthzServer.start(new InetSocketAddress("127.0.0.1", 0), ExtAuthzServer.allowGet("no posting"));
        client = new ExtAuthzClient((provider, result) -> counted.add(provider + " " + result));
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
    }

    @BeforeEach
    void reset() {
        server.decide(ExtAuthzServer.allowGet("no posting"));
        server.delay(Duration.ZERO);
        counted.clear();
    }

    static String meshConfig(String providers) {
        return "apiVersion: wisp.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec:\n  extensionProviders:\n"
                + providers;
    }

    static String provider(String name, String service, int port, String more) {
        return "  - name: " + name + "\n    envoyExtAuthzGrpc: {service: \"" + service + "\", port: " + port + more
                + "}\n";
    }

    static MeshModel model(String mesh, String... policies) {
        List<String> docs = new ArrayList<>(List.of(WaypointAuthzTest.WAYPOINT, ConfigYaml.pod("waypoint-1", "shop",
                "gateway.networking.k8s.io/gateway-name: waypoint", "node-a", "waypoint", "10.1.1.9"), mesh));
        docs.addAll(List.of(policies));
        return RouteFixtures.model(docs.toArray(String[]::new));
    }

    /** The translation as the waypoint holds it, every resource passed through its bytes. */
    static EnvoyConfig config(MeshModel model) throws Exception {
        EnvoyResources r = EnvoyTranslator.translate(model);
        Map<String, ExtAuthz> authorizers = new java.util.HashMap<>();
        for (Listener l : r.listeners()) {
            HttpConnectionManager hcm = Listener.parseFrom(l.toByteArray()).getApiListener().getApiListener()
                    .unpack(HttpConnectionManager.class);
            AdsClient.extAuthz(hcm).ifPresent(f -> authorizers.put(hcm.getRds().getRouteConfigName(), f));
        }
        Map<String, RouteConfiguration> routes = r.routes().stream().collect(Collectors.toMap(
                RouteConfiguration::getName, Function.identity()));
        Map<String, ClusterLoadAssignment> endpoints = r.endpoints().stream().collect(Collectors.toMap(
                ClusterLoadAssignment::getClusterName, Function.identity()));
        return new EnvoyConfig(routes, r.clusters().stream().map(Cluster::getName).collect(Collectors.toSet()),
                endpoints, authorizers);
    }

    static String gate(EnvoyConfig config, WaypointAuthzTest.Req r) {
        VirtualHost host = config.virtualHost(VIP).orElseThrow();
        RequestGate.Outcome o = RequestGate.check(host, r.build(), client.bind(config, VIP)).join();
        return o.refusal().map(x -> x.status() + " " + x.policy() + " " + x.reason() + (x.body() == null
                ? ""
                : " body=" + x.body())).orElse("pass" + (o.edits() == null ? "" : " edited"));
    }

    @Test
    void theListenerCallsTheProviderThroughItsClusterAndTheVirtualHostSaysWhichRequests() throws Exception {
        MeshModel m = model(meshConfig(provider("authz", "127.0.0.1", server.port(), ", timeout: 2s, statusOnError: "
                + "\"503\"")), CUSTOM);
        EnvoyResources r = EnvoyTranslator.translate(m);
        String cluster = "outbound|" + server.port() + "||127.0.0.1";
        ExtAuthz filter = config(m).authorizers().get(ROUTES);
        assertThat(filter.getGrpcService().getEnvoyGrpc().getClusterName()).isEqualTo(cluster);
        assertThat(filter.getGrpcService().getTimeout().getSeconds()).isEqualTo(2);
        assertThat(filter.getStatPrefix()).isEqualTo("authz");
        assertThat(filter.getFailureModeAllow()).isFalse();
        assertThat(filter.getStatusOnError().getCodeValue()).isEqualTo(503);
        assertThat(filter.getFilterEnabledMetadata().getPath(0).getKey())
                .isEqualTo("istio_ext_authz_shadow_effective_policy_id");
        HttpConnectionManager hcm = r.listeners().stream().filter(l -> l.getName().equals(ROUTES)).findFirst()
                .orElseThrow().getApiListener().getApiListener().unpack(HttpConnectionManager.class);
        assertThat(hcm.getHttpFiltersList()).extracting(f -> f.getName()).as("ext_authz before the router")
                .containsExactly("envoy.filters.http.ext_authz", "envoy.filters.http.router");
        assertThat(r.clusters()).filteredOn(c -> c.getName().equals(cluster)).singleElement()
                .extracting(Cluster::getType).isEqualTo(Cluster.DiscoveryType.EDS);
        assertThat(r.endpoints()).filteredOn(e -> e.getClusterName().equals(cluster)).singleElement()
                .extracting(e -> e.getEndpoints(0).getLbEndpoints(0).getEndpoint().getAddress().getSocketAddress())
                .satisfies(a -> assertThat(a.getAddress() + ":" + a.getPortValue()).isEqualTo("127.0.0.1:"
                        + server.port()));
        VirtualHost host = config(m).virtualHost(VIP).orElseThrow();
        assertThat(host.getTypedPerFilterConfigMap()).containsKey(RequestGate.CUSTOM_FILTER)
                .doesNotContainKey("wisp.authz.deny");
    }

    @Test
    void aMeshServiceProviderIsThatServicesCluster() throws Exception {
        EnvoyConfig c = config(model(meshConfig(provider("authz", "reviews-v2.shop.svc.cluster.local", 9080, "")),
                CUSTOM));
        assertThat(c.authorizers().get(ROUTES).getGrpcService().getEnvoyGrpc().getClusterName())
                .isEqualTo("outbound|9080||reviews-v2.shop.svc.cluster.local");
        assertThat(c.authorizers().get(ROUTES).getGrpcService().getTimeout().getSeconds()).as("Istio's default")
                .isEqualTo(600);
    }

    @Test
    void anUnknownProviderDeniesEveryRequestOfTheServiceAndWarns() throws Exception {
        MeshModel m = model(meshConfig(provider("other", "127.0.0.1", server.port(), "")), CUSTOM);
        EnvoyConfig c = config(m);
        int before = server.checks().size();
        assertThat(c.authorizers()).isEmpty();
        assertThat(gate(c, WaypointAuthzTest.Req.of("GET /public"))).isEqualTo(
                "403 shop/ext[provider authz not usable] RBAC: denied by DENY policy shop/ext[provider authz not usable]");
        assertThat(Translator.translate(m, null).warnings().get(new ObjectRef("AuthorizationPolicy", "shop", "ext")))
                .containsExactly("spec.provider.name: 'authz' is not among MeshConfig's spec.extensionProviders "
                        + "[other]; the waypoint denies every request this policy applies to (fail closed)");
        assertThat(server.checks()).as("the authorizer is not asked").hasSize(before);
    }

    @Test
    void theAuthorizerDecidesTheRequestsTheRulesMatchWithTheVerifiedPrincipal() throws Exception {
        EnvoyConfig c = config(model(meshConfig(provider("authz", "127.0.0.1", server.port(), "")), CUSTOM));
        int before = server.checks().size();
        assertThat(gate(c, WaypointAuthzTest.Req.of("GET /public"))).as("not the rules': not asked").isEqualTo("pass");
        assertThat(server.checks()).hasSize(before);

        String spoof = "By=spiffe://cluster.local/ns/shop/sa/reviews;URI=spiffe://cluster.local/ns/other/sa/admin";
        assertThat(gate(c, WaypointAuthzTest.Req.of("GET /private/x").header("x-forwarded-client-cert", spoof)
                .header("x-user", "alice"))).isEqualTo("pass edited");
        CheckRequest check = server.checks().getLast();
        var attrs = check.getAttributes();
        assertThat(attrs.getSource().getPrincipal()).as("the certificate's, not the header's").isEqualTo(CLIENT);
        assertThat(attrs.getSource().getAddress().getSocketAddress().getAddress()).isEqualTo("10.1.1.7");
        assertThat(attrs.getDestination().getAddress().getSocketAddress().getPortValue()).isEqualTo(9080);
        assertThat(attrs.getRequest().getHttp().getMethod()).isEqualTo("GET");
        assertThat(attrs.getRequest().getHttp().getPath()).isEqualTo("/private/x");
        assertThat(attrs.getRequest().getHttp().getHost()).isEqualTo("reviews.shop.svc.cluster.local:9080");
        assertThat(attrs.getRequest().getHttp().getHeadersMap()).containsEntry("x-user", "alice")
                .doesNotContainKey("x-forwarded-client-cert");

        assertThat(gate(c, WaypointAuthzTest.Req.of("POST /private/x"))).isEqualTo(
                "403 authz ext_authz: denied by provider authz (CUSTOM policy shop/ext[0]) body=no posting");
        server.decide(r -> ExtAuthzServer.deny(401, "who are you"));
        assertThat(gate(c, WaypointAuthzTest.Req.of("GET /private/x"))).as("the authorizer's status").isEqualTo(
                "401 authz ext_authz: denied by provider authz (CUSTOM policy shop/ext[0]) body=who are you");
        assertThat(counted).containsExactly("authz allowed", "authz denied", "authz denied");
    }

    @Test
    void customComesBeforeDenyAndAllowWhichSeeTheAuthorizersHeaders() throws Exception {
        String deny = WaypointAuthzTest.policy("deny", "Gateway/waypoint", """
                  action: DENY
                  rules: [{to: [{operation: {paths: ["/private/deny"]}}]}]
                """);
        String allow = WaypointAuthzTest.policy("tagged", "Gateway/waypoint", """
                  rules: [{when: [{key: "request.headers[x-authz]", values: ["yes"]}]}]
                """);
        EnvoyConfig c = config(model(meshConfig(provider("authz", "127.0.0.1", server.port(), "")), CUSTOM, deny,
                allow));
        server.decide(r -> r.getAttributes().getRequest().getHttp().getMethod().equals("GET")
                ? ExtAuthzServer.allow("x-authz", "yes")
                : ExtAuthzServer.deny(403, "custom said no"));
        assertThat(gate(c, WaypointAuthzTest.Req.of("POST /private/deny"))).as("CUSTOM first").isEqualTo(
                "403 authz ext_authz: denied by provider authz (CUSTOM policy shop/ext[0]) body=custom said no");
        assertThat(gate(c, WaypointAuthzTest.Req.of("GET /private/deny"))).as("then DENY")
                .isEqualTo("403 shop/deny[0] RBAC: denied by DENY policy shop/deny[0]");
        assertThat(gate(c, WaypointAuthzTest.Req.of("GET /private/x"))).as("ALLOW sees the authorizer's header")
                .isEqualTo("pass edited");
        assertThat(gate(c, WaypointAuthzTest.Req.of("GET /public"))).as("not asked, so not tagged")
                .isEqualTo("403 - RBAC: no ALLOW policy matched");
    }

    @Test
    void aLateOrUnreachableAuthorizerDeniesUnlessFailOpen() throws Exception {
        server.delay(Duration.ofSeconds(5));
        EnvoyConfig c = config(model(meshConfig(provider("authz", "127.0.0.1", server.port(), ", timeout: 300ms")),
                CUSTOM));
        assertThat(gate(c, WaypointAuthzTest.Req.of("GET /private/x"))).startsWith(
                "403 authz ext_authz: provider authz failed (DEADLINE_EXCEEDED").endsWith(
                        "fail closed (CUSTOM policy "
                                + "shop/ext[0])");
        EnvoyConfig open = config(model(meshConfig(provider("authz", "127.0.0.1", server.port(),
                ", timeout: 300ms, failOpen: true")), CUSTOM));
        assertThat(gate(open, WaypointAuthzTest.Req.of("POST /private/x"))).as("failOpen").isEqualTo("pass edited");
        server.delay(Duration.ZERO);
        int unused;
        try (var s = new java.net.ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            unused = s.getLocalPort();
        }
        EnvoyConfig gone = config(model(meshConfig(provider("authz", "127.0.0.1", unused, ", statusOnError: \"503\"")),
                CUSTOM));
        assertThat(gate(gone, WaypointAuthzTest.Req.of("GET /private/x"))).startsWith(
                "503 authz ext_authz: provider authz failed (UNAVAILABLE");
        assertThat(counted).containsExactly("authz error", "authz error_allowed", "authz error");
    }

}
