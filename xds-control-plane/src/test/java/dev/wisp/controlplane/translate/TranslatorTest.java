package dev.wisp.controlplane.translate;

import dev.wisp.controlplane.TestMesh;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.TextFormat;
import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.MtlsMode;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.controlplane.config.ConfigSet;
import dev.wisp.controlplane.config.LoadResult;
import dev.wisp.controlplane.model.MeshModel;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Model → resources, as tables: YAML in, the exact resource (text format) and warnings out. */
class TranslatorTest {
    static final String MESH = TestMesh.YAML;

    static MeshModel model(String extra) {
        LoadResult r = ConfigSet.load(Map.of("mesh.yaml", MESH + (extra.isEmpty() ? "" : "---\n" + extra)));
        assertThat(r.errors()).isEmpty();
        return r.model();
    }

    static Stream<Arguments> policies() {
        return Stream.of(
                Arguments.of("empty spec: an ALLOW policy with no rules matches nothing", """
                        apiVersion: security.istio.io/v1
                        kind: AuthorizationPolicy
                        metadata: {name: deny-all, namespace: shop}
                        spec: {}
                        """, "name: \"deny-all\" namespace: \"shop\" scope: NAMESPACE", null),
                Arguments.of("rules: [{}] matches every connection", """
                        apiVersion: security.istio.io/v1
                        kind: AuthorizationPolicy
                        metadata: {name: allow-all, namespace: istio-system}
                        spec: {rules: [{}]}
                        """, "name: \"allow-all\" namespace: \"istio-system\" groups { }", null),
                Arguments.of("from entries OR, clauses AND, spiffe:// stripped, patterns", """
                        apiVersion: security.istio.io/v1
                        kind: AuthorizationPolicy
                        metadata: {name: p, namespace: shop}
                        spec:
                          selector: {matchLabels: {app: web}}
                          rules:
                          - from:
                            - source: {principals: ["spiffe://cluster.local/ns/a/sa/x", "*/sa/y"]}
                            - source: {namespaces: ["front*"], notIpBlocks: [10.0.0.0/8]}
                            to:
                            - operation: {ports: ["8080"], notPorts: ["9090"]}
                        """,
                        """
                                name: "p" namespace: "shop" scope: WORKLOAD_SELECTOR
                                groups { rules { matches { principals { exact: "cluster.local/ns/a/sa/x" } principals { suffix: "/sa/y" } }
                                                 matches { namespaces { prefix: "front" } not_source_ips { address: "\\n\\000\\000\\000" length: 8 } } }
                                         rules { matches { destination_ports: 8080 not_destination_ports: 9090 } } }
                                """,
                        null),
                Arguments.of("L7 field in ALLOW drops the rule (stricter)", """
                        apiVersion: security.istio.io/v1
                        kind: AuthorizationPolicy
                        metadata: {name: p, namespace: shop}
                        spec:
                          rules:
                          - to: [{operation: {methods: [GET]}}]
                          - from: [{source: {namespaces: [shop]}}]
                        """, """
                        name: "p" namespace: "shop" scope: NAMESPACE
                        groups { rules { matches { namespaces { exact: "shop" } } } }
                        """,
                        "spec.rules[0]: spec.rules[0].to[0].operation.methods need a waypoint (L7); node agents drop this ALLOW rule, so it allows nothing"),
                Arguments.of("L7 field in DENY keeps the L4 part (denies more)",
                        """
                                apiVersion: security.istio.io/v1
                                kind: AuthorizationPolicy
                                metadata: {name: p, namespace: shop}
                                spec:
                                  action: DENY
                                  rules:
                                  - to: [{operation: {ports: ["22"], paths: ["/admin"]}}]
                                    when: [{key: source.ip, values: [192.168.0.0/16]}, {key: request.auth.principal, values: [x]}]
                                """,
                        """
                                name: "p" namespace: "shop" scope: NAMESPACE action: DENY
                                groups { rules { matches { destination_ports: 22 } }
                                         rules { matches { source_ips { address: "\\300\\250\\000\\000" length: 16 } } } }
                                """,
                        "spec.rules[0]: spec.rules[0].to[0].operation.paths, when key request.auth.principal need a waypoint (L7); node agents enforce only the rule's L4 part, so it denies more"),
                Arguments.of("dry-run annotation", """
                        apiVersion: security.istio.io/v1
                        kind: AuthorizationPolicy
                        metadata: {name: p, namespace: shop, annotations: {istio.io/dry-run: "true"}}
                        spec: {action: DENY, rules: [{when: [{key: destination.port, notValues: ["443"]}]}]}
                        """, """
                        name: "p" namespace: "shop" scope: NAMESPACE action: DENY dry_run: true
                        groups { rules { matches { not_destination_ports: 443 } } }
                        """, null));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("policies")
    void policiesReduceToL4(String title, String policy, String expected, String warning) throws Exception {
        Translation t = Translator.translate(model(policy), null);
        Map<String, Resource> auth = t.resources(TypeUrls.AUTHORIZATION);
        assertThat(auth).hasSize(1);
        Authorization.Builder want = Authorization.newBuilder();
        TextFormat.merge(expected, want);
        assertThat(auth.values().iterator().next().getAuthorization()).isEqualTo(want.build());
        if (warning == null) {
            assertThat(t.warnings()).isEmpty();
        } else {
            assertThat(t.warnings().values()).singleElement().asList().containsExactly(warning);
        }
    }

    @Test
    void auditPolicyIsNotSentAndIsReported() {
        Translation t = Translator.translate(model("""
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: audit, namespace: shop}
                spec: {action: AUDIT, rules: [{}]}
                """), null);
        assertThat(t.resources(TypeUrls.AUTHORIZATION)).isEmpty();
        assertThat(t.warnings().values()).singleElement().asList().singleElement().asString().contains("AUDIT");
    }

    @Test
    void workloadCarriesServicesPoliciesAndIdentity() throws Exception {
        Translation t = Translator.translate(model("""
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: web-only, namespace: shop}
                spec: {selector: {matchLabels: {app: web}}, rules: [{}]}
                """), null);
        Workload w = t.resources(TypeUrls.WORKLOAD).get("Kubernetes//Pod/shop/web-1").getWorkload();
        Workload.Builder want = Workload.newBuilder();
        TextFormat.merge(
                """
                        uid: "Kubernetes//Pod/shop/web-1" name: "web-1" namespace: "shop" service_account: "web"
                        trust_domain: "cluster.local" node: "node-a" addresses: "\\n\\001\\001\\005" tunnel_protocol: TUNNEL_HBONE
                        workload_name: "web" canonical_name: "web" canonical_revision: "v2"
                        services { key: "shop/web.shop.svc.cluster.local" value { ports { service_port: 80 target_port: 8080 } } }
                        authorization_policies: "shop/web-only" mtls_mode: PERMISSIVE
                        """,
                want);
        assertThat(w).isEqualTo(want.build());
        assertThat(t.resources(TypeUrls.SERVICE)).containsOnlyKeys("shop/web.shop.svc.cluster.local");
    }

    static Stream<Arguments> peerAuthentications() {
        String root = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: mesh, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n";
        String ns = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ns, namespace: shop}\nspec: {mtls: {mode: DISABLE}}\n";
        String wl = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: wl, namespace: shop}\nspec: {selector: {matchLabels: {app: web}}, mtls: {mode: UNSET}, portLevelMtls: {\"9000\": {mode: PERMISSIVE}, \"9001\": {mode: UNSET}}}\n";
        return Stream.of(
                Arguments.of("mesh default", "", MtlsMode.PERMISSIVE, Map.of()),
                Arguments.of("root namespace", root, MtlsMode.STRICT, Map.of()),
                Arguments.of("namespace beats root", root + "---\n" + ns, MtlsMode.DISABLE, Map.of()),
                Arguments.of("workload UNSET inherits, ports override", root + "---\n" + ns + "---\n" + wl,
                        MtlsMode.DISABLE,
                        Map.of(9000, MtlsMode.PERMISSIVE, 9001, MtlsMode.DISABLE)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("peerAuthentications")
    void peerAuthenticationPrecedence(String title, String policies, MtlsMode mode, Map<Integer, MtlsMode> ports) {
        Workload w = Translator.translate(model(policies), null).resources(TypeUrls.WORKLOAD)
                .get("Kubernetes//Pod/shop/web-1").getWorkload();
        assertThat(w.getMtlsMode()).isEqualTo(mode);
        assertThat(w.getPortMtlsMap()).isEqualTo(ports);
    }

    @Test
    void nodeSeesOnlyPoliciesInScopeOfItsWorkloads() {
        Translation t = Translator.translate(model("""
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: global, namespace: istio-system}
                spec: {}
                ---
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: shop-wide, namespace: shop}
                spec: {}
                ---
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: db-only, namespace: data}
                spec: {selector: {matchLabels: {app: db}}}
                """), null);
        assertThat(t.view(TypeUrls.AUTHORIZATION, "node-a")).containsOnlyKeys("istio-system/global", "shop/shop-wide");
        assertThat(t.view(TypeUrls.AUTHORIZATION, "node-b")).containsOnlyKeys("istio-system/global", "data/db-only");
        assertThat(t.view(TypeUrls.WORKLOAD, "node-a")).isSameAs(t.resources(TypeUrls.WORKLOAD)).hasSize(2);
        assertThat(t.view(TypeUrls.NODE, "node-b")).containsOnlyKeys("node-a", "node-b");
    }

    @Test
    void versionsAreContentDigestsAndUnchangedMapsAreReused() {
        Translation first = Translator.translate(model(""), null);
        Translation same = Translator.translate(model(""), first);
        assertThat(same.resources(TypeUrls.WORKLOAD)).isSameAs(first.resources(TypeUrls.WORKLOAD));
        Translation changed = Translator.translate(model("""
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: web-only, namespace: shop}
                spec: {selector: {matchLabels: {app: web}}}
                """), first);
        assertThat(changed.resources(TypeUrls.NODE)).isSameAs(first.resources(TypeUrls.NODE));
        String before = first.resources(TypeUrls.WORKLOAD).get("Kubernetes//Pod/shop/web-1").getVersion();
        String after = changed.resources(TypeUrls.WORKLOAD).get("Kubernetes//Pod/shop/web-1").getVersion();
        assertThat(after).isNotEqualTo(before).hasSize(16);
        assertThat(changed.resources(TypeUrls.WORKLOAD).get("Kubernetes//Pod/data/db-1").getVersion())
                .isEqualTo(first.resources(TypeUrls.WORKLOAD).get("Kubernetes//Pod/data/db-1").getVersion());
    }
}
