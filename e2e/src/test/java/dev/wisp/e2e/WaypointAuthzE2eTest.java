package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.testing.ExtAuthzServer;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * L7 authorization in the local mesh: the waypoint (a child JVM in an uncaptured pod on node 1) serves
 * the service {@code server} (one pod on node 2), and policies attached to that Service with
 * {@code targetRefs} reach it over the control plane's Envoy xDS. A DENY on {@code POST} answers 403
 * naming the policy while GET passes; then a RequestAuthentication (keys inline) and an ALLOW on
 * {@code requestPrincipals} for {@code /jwt*}: a token of the issuer passes, a forged one is 401, none
 * is 403. A CUSTOM policy calls an external authorizer declared in MeshConfig's
 * {@code extensionProviders}: a test ext_authz gRPC server ({@link ExtAuthzServer}) in this JVM on the host
 * side of the cluster's host link, which the waypoint pod reaches through node 1, allows GET and denies POST
 * with 403 and its body. The client plays node 1's agent ({@link WaypointClient}).
 */
class WaypointAuthzE2eTest {
    /** Cluster name and address base; {@code -Dwisp.wp.cluster}/{@code -Dwisp.wp.base} run it beside another copy. */
    static final String CLUSTER = System.getProperty("wisp.wp.cluster", "wpaz");
    static final int BASE = Integer.getInteger("wisp.wp.base", 110);
    static final String ISSUER = "https://issuer.example";
    static final String DENY_POST = onServer("deny-post", """
              action: DENY
              rules: [{to: [{operation: {methods: [POST]}}]}]
            """);
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static WaypointClient client;
    static Path waypointLog;

    @BeforeAll
    static void up() throws Exception {
        ClusterSpec cluster = ClusterSpec.builder(CLUSTER).nodes(2).base(BASE)
                .pod(new ClusterSpec.PodSpec("waypoint", "default", "waypoint", 0,
                        Map.of("istio.io/dataplane-mode", "none")))
                .pod(new ClusterSpec.PodSpec("v1", "default", "server", 1, Map.of("app", "server")))
                .build();
        mesh = PodApps.up(MeshSpec.builder(cluster).workDir(dir)
                .service(WaypointE2eTest.service(cluster, "server", 1, Map.of("app", "server"))));
        mesh.startInPodLogged("v1", PodApps.wisp(List.of("-Xmx64m"), List.of("demo-app", "server", "--port", "8080",
                "--name", "v1")));
        waypointLog = WaypointClient.startWaypoint(mesh, "waypoint");
        client = WaypointClient.of(mesh);
    }

    @AfterAll
    static void down() throws Exception {
        if (client != null) {
            client.close();
        }
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    void denyPostThenJwtRequestPrincipals() throws Exception {
        SpiffeId me = SpiffeId.forServiceAccount("cluster.local", "default", "client");
        InetSocketAddress vip = new InetSocketAddress(InetAddress.ofLiteral(LocalMesh.serviceAddress(mesh.cluster()
                .spec(), 1)), 80);
        String waypointIp = mesh.pod("waypoint").ip();
        // The waypoint answers the CONNECT 503 until it has read the service's routes from the control plane.
        try (WaypointClient.Tunnel t = await().atMost(Duration.ofSeconds(60)).ignoreExceptions().until(() -> client
                .open(me, waypointIp, vip), java.util.Objects::nonNull)) {
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(t.call("POST", "/api", Map.of()))
                    .isEqualTo("200 hello from v1"));

            mesh.apply("deny-post.yaml", DENY_POST);
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(t.call("POST", "/api", Map.of()))
                    .isEqualTo("403 RBAC: denied by DENY policy default/deny-post[0]"));
            assertThat(t.call("GET", "/api", Map.of())).isEqualTo("200 hello from v1");

            RSAKey key = new RSAKeyGenerator(2048).keyID("k1").generate();
            RSAKey forger = new RSAKeyGenerator(2048).keyID("k1").generate();
            mesh.apply("jwt.yaml", """
                    apiVersion: security.istio.io/v1
                    kind: RequestAuthentication
                    metadata: {name: jwt, namespace: default}
                    spec:
                      targetRefs: [{kind: Service, group: "", name: server}]
                      jwtRules: [{issuer: "%s", jwks: '%s'}]
                    ---
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: alice-only, namespace: default}
                    spec:
                      targetRefs: [{kind: Service, group: "", name: server}]
                      rules:
                      - from: [{source: {requestPrincipals: ["%s/alice"]}}]
                        to: [{operation: {paths: ["/jwt*"]}}]
                    """.formatted(ISSUER, new JWKSet(key.toPublicJWK()).toString(), ISSUER));
            Map<String, String> good = Map.of("authorization", "Bearer " + token(key));
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(t.call("GET", "/jwt", Map.of()))
                    .isEqualTo("403 RBAC: no ALLOW policy matched"));
            assertThat(t.call("GET", "/jwt", good)).isEqualTo("200 hello from v1");
            assertThat(t.call("GET", "/jwt", Map.of("authorization", "Bearer " + token(forger))))
                    .isEqualTo("401 Jwt verification fails");
            assertThat(t.call("POST", "/jwt", good)).isEqualTo("403 RBAC: denied by DENY policy default/deny-post[0]");
        }
    }

    /**
     * CUSTOM → DENY → ALLOW with a real external authorizer: the CUSTOM policy sends {@code /ext*} to it, and
     * a DENY policy also refuses POST there, so the authorizer's own 403 body on a POST shows it came first;
     * GET passes it and reaches the server. The authorizer saw the client's certificate identity, and the
     * waypoint's access log names the provider of the refusal.
     */
    @Test
    void customPolicyAsksTheExternalAuthorizerFirst() throws Exception {
        mesh.delete("jwt.yaml"); // the other test's ALLOW would refuse /ext (no ALLOW policy matches it)
        SpiffeId me = SpiffeId.forServiceAccount("cluster.local", "default", "client");
        InetSocketAddress vip = new InetSocketAddress(InetAddress.ofLiteral(LocalMesh.serviceAddress(mesh.cluster()
                .spec(), 1)), 80);
        String host = "10." + mesh.cluster().spec().base() + ".0.1";
        try (ExtAuthzServer authorizer = ExtAuthzServer.start(new InetSocketAddress(host, 0), ExtAuthzServer
                .allowGet("denied by the test authorizer"));
                WaypointClient.Tunnel t = await().atMost(Duration.ofSeconds(60)).ignoreExceptions().until(
                        () -> client.open(me, mesh.pod("waypoint").ip(), vip), java.util.Objects::nonNull)) {
            mesh.apply("mesh-config.yaml", """
                    apiVersion: wisp.dev/v1alpha1
                    kind: MeshConfig
                    metadata: {name: mesh}
                    spec:
                      extensionProviders:
                      - name: test-authz
                        envoyExtAuthzGrpc: {service: "%s", port: %d, timeout: 10s}
                    """.formatted(host, authorizer.port()));
            mesh.apply("ext-authz.yaml", onServer("ext", """
                      action: CUSTOM
                      provider: {name: test-authz}
                      rules: [{to: [{operation: {paths: ["/ext*"]}}]}]
                    """) + "---\n" + onServer("deny-ext-post", """
                      action: DENY
                      rules: [{to: [{operation: {methods: [POST], paths: ["/ext*"]}}]}]
                    """));
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(t.call("POST", "/ext", Map.of()))
                    .isEqualTo("403 denied by the test authorizer"));
            assertThat(t.call("GET", "/ext", Map.of())).isEqualTo("200 hello from v1");
            int asked = authorizer.checks().size();
            assertThat(t.call("GET", "/api", Map.of())).as("not the CUSTOM rules'").isEqualTo("200 hello from v1");
            assertThat(authorizer.checks()).as("/api is not sent to the authorizer").hasSize(asked);
            assertThat(authorizer.checks().getLast().getAttributes().getSource().getPrincipal()).isEqualTo(me
                    .toString());
            assertThat(authorizer.checks().getLast().getAttributes().getRequest().getHttp().getPath())
                    .isEqualTo("/ext");
            await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(PodApps.read(waypointLog))
                    .contains("status=403").contains("ext_authz: denied by provider test-authz"));
        } finally {
            mesh.delete("ext-authz.yaml");
            mesh.delete("mesh-config.yaml");
        }
    }

    /** An AuthorizationPolicy of {@code default} attached to the Service {@code server}, {@code spec}'s lines after its targetRefs. */
    static String onServer(String name, String spec) {
        return """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: %s, namespace: default}
                spec:
                  targetRefs: [{kind: Service, group: "", name: server}]
                """.formatted(name) + spec;
    }

    static String token(RSAKey key) throws Exception {
        SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(key.getKeyID()).build(),
                new JWTClaimsSet.Builder().issuer(ISSUER).subject("alice").expirationTime(Date.from(Instant.now()
                        .plusSeconds(3600))).build());
        jwt.sign(new RSASSASigner(key));
        return jwt.serialize();
    }
}
