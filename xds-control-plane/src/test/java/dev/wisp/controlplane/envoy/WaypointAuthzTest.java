package dev.wisp.controlplane.envoy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.route.RouteFixtures;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.testing.ConfigYaml;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import dev.wisp.waypoint.authz.AuthzRequest;
import dev.wisp.waypoint.authz.RequestGate;
import dev.wisp.waypoint.authz.WaypointAuthorizer;
import dev.wisp.waypoint.authz.WaypointAuthorizer.Verdict;
import dev.wisp.waypoint.route.EnvoyRoutes;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Istio's L7 AuthorizationPolicy semantics at the waypoint, case by case, through both halves: the
 * policy YAML is decoded and translated by the control plane ({@link AuthzTranslator}: Envoy RBAC on
 * the virtual host of {@code shop/reviews:9080}, which the namespace's waypoint serves), and the
 * waypoint's {@link WaypointAuthorizer} decides one request on that virtual host. Each case is a
 * request and the outcome: {@code allow} or {@code 403 <policy>} ({@code -} when no ALLOW matched).
 */
class WaypointAuthzTest {
    static final String CLIENT = "spiffe://cluster.local/ns/shop/sa/client";
    static final String OTHER = "spiffe://cluster.local/ns/other/sa/robot";
    static final String WAYPOINT = ConfigYaml.waypointGateway("waypoint", "shop", "service")
            + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/use-waypoint: waypoint}}\n";

    /** A policy in {@code shop} attached to {@code target} ("Gateway/name" or "Service/name"). */
    static String policy(String name, String target, String spec) {
        String[] t = target.split("/");
        String group = t[0].equals("Gateway") ? "gateway.networking.k8s.io" : "\"\"";
        return ConfigYaml.policyHead(name, "shop") + "  targetRefs: [{group: " + group + ", kind: " + t[0]
                + ", name: " + t[1] + "}]\n" + spec;
    }

    /** A request to reviews: "METHOD /path", from {@code peer} at {@code ip}, with headers and JWT facts. */
    record Req(String line, String peer, String ip, Map<String, String> headers,
            Map<List<String>, List<String>> authn) {
        static Req of(String line) {
            return new Req(line, CLIENT, "10.1.1.7", Map.of(), Map.of());
        }

        Req from(String p, String address) {
            return new Req(line, p, address, headers, authn);
        }

        Req header(String name, String value) {
            Map<String, String> h = new HashMap<>(headers);
            h.put(name, value);
            return new Req(line, peer, ip, h, authn);
        }

        Req jwt(String principal, String claim, String... values) {
            return new Req(line, peer, ip, headers, Map.of(List.of("request.auth.principal"), List.of(principal),
                    List.of("request.auth.claims", claim), List.of(values)));
        }

        AuthzRequest build() {
            String[] parts = line.split(" ", 2);
            Map<String, List<String>> hs = new HashMap<>();
            hs.put("host", List.of("reviews.shop.svc.cluster.local:9080"));
            headers.forEach((k, v) -> hs.put(k, List.of(v)));
            return new AuthzRequest(new EnvoyRoutes.Request(parts[0], parts[1], "", hs),
                    Optional.ofNullable(peer).map(SpiffeId::parse), InetAddress.ofLiteral(ip),
                    new InetSocketAddress(InetAddress.ofLiteral("10.96.0.10"), 9080), authn);
        }

        @Override
        public String toString() {
            return line + (peer == null ? " (no peer)" : "") + " " + headers + " " + authn;
        }
    }

    static Stream<Arguments> cases() {
        String denyPost = policy("deny-post", "Gateway/waypoint", """
                  action: DENY
                  rules: [{to: [{operation: {methods: [POST]}}]}]
                """);
        return Stream.of(
                Arguments.of("no policy: allowed", List.of(), Req.of("POST /x"), "allow"),
                Arguments.of("DENY POST on the Gateway: POST refused", List.of(denyPost), Req.of("POST /x"),
                        "403 shop/deny-post[0]"),
                Arguments.of("DENY POST on the Gateway: GET passes", List.of(denyPost), Req.of("GET /x"), "allow"),
                Arguments.of("DENY on the Service applies", List.of(policy("svc", "Service/reviews", """
                          action: DENY
                          rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
                        """)), Req.of("GET /admin/users"), "403 shop/svc[0]"),
                Arguments.of("a policy on another Service does not", List.of(policy("svc", "Service/reviews-v1", """
                          action: DENY
                          rules: [{}]
                        """)), Req.of("GET /"), "allow"),
                Arguments.of("a policy on another Gateway does not", List.of(policy("gw", "Gateway/other", """
                          action: DENY
                          rules: [{}]
                        """)), Req.of("GET /"), "allow"),
                Arguments.of("a selector policy is the agents', not the waypoint's",
                        List.of(ConfigYaml.policyHead("sel", "shop") + """
                                  selector: {matchLabels: {app: reviews}}
                                  action: DENY
                                  rules: [{}]
                                """), Req.of("GET /"), "allow"),
                Arguments.of("{*} is one segment", List.of(allow("/api/{*}/items")), Req.of("GET /api/v1/items"),
                        "allow"),
                Arguments.of("{*} is not two", List.of(allow("/api/{*}/items")), Req.of("GET /api/v1/x/items"),
                        "403 -"),
                Arguments.of("{*} is not none", List.of(allow("/api/{*}/items")), Req.of("GET /api/items"), "403 -"),
                Arguments.of("{**} is the rest", List.of(allow("/files/{**}")), Req.of("GET /files/a/b/c"), "allow"),
                Arguments.of("{**} needs its parent segment", List.of(allow("/files/{**}")), Req.of("GET /filesx"),
                        "403 -"),
                Arguments.of("suffix path", List.of(allow("*.png")), Req.of("GET /img/a.png"), "allow"),
                Arguments.of("exact path only", List.of(allow("/health")), Req.of("GET /health/x"), "403 -"),
                Arguments.of("hosts ignore case", List.of(policy("h", "Gateway/waypoint", """
                          rules: [{to: [{operation: {hosts: ["Reviews.Shop*"]}}]}]
                        """)), Req.of("GET /"), "allow"),
                Arguments.of("an exact host matches with the request's port",
                        List.of(policy("h", "Gateway/waypoint", """
                                  rules: [{to: [{operation: {hosts: ["reviews.shop.svc.cluster.local"]}}]}]
                                """)), Req.of("GET /"), "allow"),
                Arguments.of("an exact host is not a prefix", List.of(policy("h", "Gateway/waypoint", """
                          rules: [{to: [{operation: {hosts: ["reviews.shop"]}}]}]
                        """)), Req.of("GET /"), "403 -"),
                Arguments.of("notHosts", List.of(policy("h", "Gateway/waypoint", """
                          rules: [{to: [{operation: {notHosts: ["reviews.*"]}}]}]
                        """)), Req.of("GET /"), "403 -"),
                Arguments.of("principals: the verified peer", List.of(principals()), Req.of("GET /"), "allow"),
                Arguments.of("principals: another peer", List.of(principals()), Req.of("GET /").from(OTHER,
                        "10.1.1.7"), "403 -"),
                Arguments.of("principals: no peer certificate", List.of(principals()), Req.of("GET /").from(null,
                        "10.1.1.7"), "403 -"),
                Arguments.of("namespaces", List.of(policy("ns", "Gateway/waypoint", """
                          action: DENY
                          rules: [{from: [{source: {namespaces: ["oth*"]}}]}]
                        """)), Req.of("GET /").from(OTHER, "10.1.1.7"), "403 shop/ns[0]"),
                Arguments.of("notNamespaces", List.of(policy("ns", "Gateway/waypoint", """
                          rules: [{from: [{source: {notNamespaces: [shop]}}]}]
                        """)), Req.of("GET /"), "403 -"),
                Arguments.of("ipBlocks: inside", List.of(ipBlocks()), Req.of("GET /"), "allow"),
                Arguments.of("ipBlocks: outside", List.of(ipBlocks()), Req.of("GET /").from(CLIENT, "10.2.0.1"),
                        "403 -"),
                Arguments.of("when request.headers: the value", List.of(header()), Req.of("GET /").header("x-user",
                        "alice"), "allow"),
                Arguments.of("when request.headers: another value", List.of(header()), Req.of("GET /").header(
                        "x-user", "bob"), "403 -"),
                Arguments.of("when request.headers: absent", List.of(header()), Req.of("GET /"), "403 -"),
                Arguments.of("requestPrincipals: the token's iss/sub", List.of(requestPrincipals()), Req.of("GET /")
                        .jwt("https://issuer.example/alice", "groups", "dev"), "allow"),
                Arguments.of("requestPrincipals: no token", List.of(requestPrincipals()), Req.of("GET /"), "403 -"),
                Arguments.of("claims: one of the list", List.of(claims()), Req.of("GET /").jwt(
                        "https://issuer.example/alice", "groups", "dev", "admins"), "allow"),
                Arguments.of("claims: not in the list", List.of(claims()), Req.of("GET /").jwt(
                        "https://issuer.example/alice", "groups", "dev"), "403 -"),
                Arguments.of("DENY before ALLOW", List.of(denyPost, policy("all", "Gateway/waypoint", """
                          rules: [{}]
                        """)), Req.of("POST /"), "403 shop/deny-post[0]"),
                Arguments.of("an ALLOW without rules allows nothing", List.of(policy("none", "Gateway/waypoint", """
                          action: ALLOW
                        """)), Req.of("GET /"), "403 -"),
                Arguments.of("CUSTOM naming no provider MeshConfig declares denies everything (as Istio)",
                        List.of(policy("ext", "Gateway/waypoint", """
                                  action: CUSTOM
                                  provider: {name: authz}
                                  rules: [{to: [{operation: {paths: ["/private*"]}}]}]
                                """)), Req.of("GET /public"), "403 shop/ext[provider authz not usable]"),
                Arguments.of("a dry-run DENY is not enforced", List.of(policy("dry", "Gateway/waypoint", """
                          action: DENY
                          rules: [{}]
                        """).replace("metadata:\n", "metadata:\n  annotations: {istio.io/dry-run: \"true\"}\n")),
                        Req.of("GET /"), "allow"),
                Arguments.of("a condition no tunnel gives counts in a DENY",
                        List.of(policy("sni", "Gateway/waypoint", """
                                  action: DENY
                                  rules: [{when: [{key: connection.sni, values: [x]}]}]
                                """)), Req.of("GET /"), "403 shop/sni[0]"));
    }

    static String allow(String path) {
        return policy("paths", "Gateway/waypoint", "  rules: [{to: [{operation: {paths: [\"" + path + "\"]}}]}]\n");
    }

    static String principals() {
        return policy("who", "Gateway/waypoint", """
                  rules: [{from: [{source: {principals: ["cluster.local/ns/shop/sa/client"]}}]}]
                """);
    }

    static String ipBlocks() {
        return policy("ip", "Gateway/waypoint", """
                  rules: [{from: [{source: {ipBlocks: [10.1.1.0/24]}}]}]
                """);
    }

    static String header() {
        return policy("hdr", "Gateway/waypoint", """
                  rules: [{when: [{key: "request.headers[X-User]", values: [alice]}]}]
                """);
    }

    static String requestPrincipals() {
        return policy("jwt", "Gateway/waypoint", """
                  rules: [{from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]}]
                """);
    }

    static String claims() {
        return policy("claims", "Gateway/waypoint", """
                  rules: [{when: [{key: "request.auth.claims[groups]", values: [admins]}]}]
                """);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void decides(String title, List<String> policies, Req request, String expected) {
        assertThat(decide(virtualHost(policies), request.build())).as(request.toString()).isEqualTo(expected);
    }

    /**
     * RequestAuthentication then AuthorizationPolicy, both attached to the waypoint: a token of the
     * issuer passes the {@code requestPrincipals} rule, a forged one is 401, none is 403 (the ALLOW
     * needs a principal), with the keys inline in the policy as the waypoint reads them.
     */
    @Test
    void jwtRequestPrincipalsThroughTheTranslation() throws Exception {
        RSAKey key = new RSAKeyGenerator(2048).keyID("k1").generate();
        RSAKey forger = new RSAKeyGenerator(2048).keyID("k1").generate();
        String authn = """
                apiVersion: security.istio.io/v1
                kind: RequestAuthentication
                metadata: {name: jwt, namespace: shop}
                spec:
                  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
                  jwtRules:
                  - issuer: https://issuer.example
                    jwks: '%s'
                """.formatted(new JWKSet(key.toPublicJWK()).toString());
        VirtualHost host = virtualHost(List.of(authn, requestPrincipals()));
        assertThat(gate(host, Req.of("GET /").header("authorization", "Bearer " + jwt(key)))).isEqualTo("pass");
        assertThat(gate(host, Req.of("GET /").header("authorization", "Bearer " + jwt(forger))))
                .isEqualTo("401 Jwt verification fails");
        assertThat(gate(host, Req.of("GET /"))).isEqualTo("403 RBAC: no ALLOW policy matched");
    }

    static String jwt(RSAKey key) throws Exception {
        SignedJWT t = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(key.getKeyID()).build(),
                new JWTClaimsSet.Builder().issuer("https://issuer.example").subject("alice")
                        .expirationTime(Date.from(Instant.now().plusSeconds(3600))).build());
        t.sign(new RSASSASigner(key));
        return t.serialize();
    }

    static String gate(VirtualHost host, Req r) {
        return RequestGate.check(host, r.build()).map(x -> x.status() + " " + x.reason()).orElse("pass");
    }

    static VirtualHost virtualHost(List<String> policies) {
        List<String> docs = new ArrayList<>(List.of(WAYPOINT, ConfigYaml.pod("waypoint-1", "shop",
                "gateway.networking.k8s.io/gateway-name: waypoint", "node-a", "waypoint", "10.1.1.9")));
        docs.addAll(policies);
        RouteConfiguration rc = EnvoyTranslator.translate(RouteFixtures.model(docs.toArray(String[]::new)))
                .routes().stream().filter(r -> r.getName().equals("reviews.shop.svc.cluster.local:9080"))
                .findFirst().orElseThrow();
        return rc.getVirtualHosts(0);
    }

    static String decide(VirtualHost host, AuthzRequest r) {
        return switch (WaypointAuthorizer.check(host, r)) {
            case Verdict.Allowed a -> "allow";
            case Verdict.Denied d -> "403 " + d.policy();
        };
    }
}
