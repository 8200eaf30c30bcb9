package dev.wisp.controlplane.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.TargetRef;
import dev.wisp.controlplane.model.HboneProtocol;
import dev.wisp.controlplane.model.MeshConfig;
import dev.wisp.controlplane.model.MtlsMode;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.controlplane.model.PeerAuthentication;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.model.ServiceDef;
import dev.wisp.testing.ConfigYaml;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ConfigDecoderTest {
    static final String POLICY_HEAD = ConfigYaml.policyHead("deny-all", "default");

    @Test
    void misspeltActionIsRefusedWithFileLineObjectAndField() {
        String text = """
                apiVersion: v1
                kind: Pod
                metadata: {name: a, namespace: default}
                spec: {nodeName: node-1}
                ---
                # the policy
                # owner: security team
                """ + POLICY_HEAD + """
                  action: DENYY
                """;
        ConfigDecoder.Decoded d = ConfigDecoder.decode("policies.yaml", text);
        assertThat(d.errors()).extracting(ConfigError::toString).containsExactly(
                "policies.yaml:14 AuthorizationPolicy default/deny-all: spec.action: 'DENYY' is not one of ALLOW, DENY, AUDIT, CUSTOM");
        assertThat(d.objects()).extracting(o -> o.ref().toString()).containsExactly("Pod default/a");
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            unknown field              | `  actoin: DENY`                                  | 7:spec.actoin: unknown field; expected one of action, provider, rules, selector, targetRef, targetRefs
            port out of range          | `  rules: [{to: [{operation: {ports: ["70000"]}}]}]` | 7:spec.rules[0].to[0].operation.ports[0]: '70000' is not a port number (1-65535)
            bad ip block               | `  rules: [{from: [{source: {ipBlocks: ["10.0.0.0/33"]}}]}]` | 7:spec.rules[0].from[0].source.ipBlocks[0]: '10.0.0.0/33' has a prefix length outside 0..32
            star in the middle         | `  rules: [{from: [{source: {principals: ["a*b"]}}]}]` | 7:spec.rules[0].from[0].source.principals: 'a*b' is not exact, prefix* , *suffix or *: '*' may only lead or trail
            unknown condition key      | `  rules: [{when: [{key: source.colour, values: [red]}]}]` | 7:spec.rules[0].when[0].key: 'source.colour' is not a supported condition key; L4 keys are source.ip, source.namespace, source.principal, destination.ip, destination.port
            target of another kind     | `  targetRefs: [{kind: Deployment, name: x}]`     | 7:spec.targetRefs[0]: attaches to kind Deployment of group ''; Wisp's waypoint takes kind Gateway (group gateway.networking.k8s.io) or Service (group "")
            target and selector        | `  {targetRefs: [{kind: Service, name: x}], selector: {matchLabels: {a: b}}}` | 7:spec.selector: a policy attached with targetRefs has no selector
            '{**}' not last            | `  rules: [{to: [{operation: {paths: ["/a/{**}/b"]}}]}]` | 7:spec.rules[0].to[0].operation.paths: '/a/{**}/b' is neither exact, prefix*, *suffix or * nor a template whose segments are literal, {*}, or {**} as the last one
            provider without CUSTOM    | `  provider: {name: authz}`                       | 7:spec.provider: only a CUSTOM policy names a provider
            CUSTOM needs a provider    | `  action: CUSTOM`                                | 7:spec.provider: required when action is CUSTOM
            """)
    void policyErrorsNameTheField(String title, String specLine, String expected) {
        assertRefused("p.yaml", POLICY_HEAD + specLine + "\n", "AuthorizationPolicy default/deny-all", expected);
    }

    /**
     * Decoding {@code text} as file {@code file} gives no object and exactly one error, {@code expected}
     * ("LINE:FIELD: message") said of {@code object} ("Kind ns/name").
     */
    static void assertRefused(String file, String text, String object, String expected) {
        ConfigDecoder.Decoded d = ConfigDecoder.decode(file, text);
        assertThat(d.errors()).extracting(ConfigError::toString)
                .containsExactly(file + ":" + expected.replaceFirst(":", " " + object + ": "));
        assertThat(d.objects()).isEmpty();
    }

    @Test
    void fullPolicyDecodesEveryClause() {
        String text = POLICY_HEAD
                + """
                          selector: {matchLabels: {app: db}}
                          action: DENY
                          rules:
                          - from:
                            - source: {principals: ["spiffe://cluster.local/ns/a/sa/x"], namespaces: ["a*"], notIpBlocks: ["10.1.0.0/16"]}
                            - source: {serviceAccounts: ["b/y"], requestPrincipals: ["*"]}
                            to:
                            - operation: {ports: ["5432", 8080], methods: [GET]}
                            when:
                            - {key: destination.port, notValues: ["22"]}
                            - {key: "request.headers[x-user]", values: [bob]}
                        """;
        ConfigDecoder.Decoded d = ConfigDecoder.decode("p.yaml", text);
        assertThat(d.errors()).isEmpty();
        AuthorizationPolicy p = (AuthorizationPolicy) d.objects().getFirst();
        assertThat(p.selector()).isEqualTo(Map.of("app", "db"));
        assertThat(p.action()).isEqualTo(AuthorizationPolicy.Action.DENY);
        AuthorizationPolicy.Rule r = p.rules().getFirst();
        assertThat(r.from().get(0).namespaces()).containsExactly("a*");
        assertThat(r.from().get(1).principals()).containsExactly("*/ns/b/sa/y");
        assertThat(r.from().get(1).l7Fields()).containsExactly("spec.rules[0].from[1].source.requestPrincipals");
        assertThat(r.to().getFirst().ports()).containsExactly(5432, 8080);
        assertThat(r.to().getFirst().l7Fields()).containsExactly("spec.rules[0].to[0].operation.methods");
        assertThat(r.when()).extracting(AuthorizationPolicy.Condition::l4).containsExactly(true, false);
        assertThat(d.origins().get(p.ref()).line()).isEqualTo(1);
    }

    @Test
    void waypointPolicyKeepsItsTargetsAndItsL7Values() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("p.yaml", POLICY_HEAD + """
                  targetRefs:
                  - {group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}
                  - {kind: Service, group: "", name: reviews}
                  action: CUSTOM
                  provider: {name: ext-authz}
                  rules:
                  - from:
                    - source: {requestPrincipals: ["https://issuer.example/*"], remoteIpBlocks: [10.0.0.0/8]}
                    to:
                    - operation: {hosts: ["*.example"], notMethods: [GET], paths: ["/api/{*}/items", "/admin*"]}
                """);
        assertThat(d.errors()).isEmpty();
        AuthorizationPolicy p = (AuthorizationPolicy) d.objects().getFirst();
        assertThat(p.targetRefs()).containsExactly(new TargetRef(TargetRef.Kind.GATEWAY, "waypoint"),
                new TargetRef(TargetRef.Kind.SERVICE, "reviews"));
        assertThat(p.selector()).isNull();
        assertThat(p.provider()).isEqualTo("ext-authz");
        AuthorizationPolicy.Rule r = p.rules().getFirst();
        assertThat(r.from().getFirst().l7().requestPrincipals()).containsExactly("https://issuer.example/*");
        assertThat(r.from().getFirst().l7().remoteIpBlocks()).extracting(Object::toString)
                .containsExactly("10.0.0.0/8");
        assertThat(r.to().getFirst().l7()).isEqualTo(new AuthorizationPolicy.L7Operation(List.of("*.example"),
                List.of(), List.of(), List.of("GET"), List.of("/api/{*}/items", "/admin*"), List.of()));
    }

    @Test
    void kubernetesKindsDecodeTheFieldsTheMeshUses() {
        String text = """
                apiVersion: v1
                kind: Pod
                metadata: {name: web-1, namespace: shop, labels: {app: web}}
                spec: {nodeName: node-1, serviceAccountName: web, containers: [{name: c, image: x}]}
                status: {phase: Running, podIP: 10.1.1.5, podIPs: [{ip: 10.1.1.5}, {ip: "fd00::5"}]}
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: web, namespace: shop}
                spec:
                  selector: {app: web}
                  clusterIP: 10.96.0.10
                  ports: [{name: http, port: 80, targetPort: 8080}]
                ---
                apiVersion: v1
                kind: Node
                metadata:
                  name: node-1
                  annotations: {wisp.dev/wireguard-public-key: "a2V5", wisp.dev/hbone-port: "15009"}
                spec: {podCIDR: 10.1.1.0/24}
                status: {addresses: [{type: Hostname, address: node-1}, {type: InternalIP, address: 192.168.0.1}]}
                ---
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: strict, namespace: shop}
                spec:
                  selector: {matchLabels: {app: web}}
                  mtls: {mode: STRICT}
                  portLevelMtls: {"8081": {mode: PERMISSIVE}}
                """;
        ConfigDecoder.Decoded d = ConfigDecoder.decode("m.yaml", text);
        assertThat(d.errors()).isEmpty();
        Pod pod = (Pod) d.objects().get(0);
        assertThat(pod.uid()).isEqualTo("Kubernetes//Pod/shop/web-1");
        assertThat(pod.ips()).extracting(a -> a.getHostAddress()).containsExactly("10.1.1.5", "fd00:0:0:0:0:0:0:5");
        assertThat(pod.serviceAccount()).isEqualTo("web");
        ServiceDef svc = (ServiceDef) d.objects().get(1);
        assertThat(svc.ports()).containsExactly(new ServiceDef.ServicePort("http", 80, 8080));
        NodeDef node = (NodeDef) d.objects().get(2);
        assertThat(node.hbonePort()).isEqualTo(15009);
        assertThat(node.podCidrs()).containsExactly("10.1.1.0/24");
        assertThat(node.addresses()).extracting(a -> a.getHostAddress()).containsExactly("192.168.0.1");
        PeerAuthentication pa = (PeerAuthentication) d.objects().get(3);
        assertThat(pa.mode()).isEqualTo(MtlsMode.STRICT);
        assertThat(pa.portLevel()).isEqualTo(Map.of(8081, MtlsMode.PERMISSIVE));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            pod without node    | `apiVersion: v1\\nkind: Pod\\nmetadata: {name: a}\\nspec: {}`                    | m.yaml:4 Pod default/a: spec.nodeName: required: the node whose agent serves this pod
            unknown kind        | `apiVersion: apps/v1\\nkind: Deployment\\nmetadata: {name: a}`                  | m.yaml:2: kind: 'Deployment' is not one of Pod, Service, Node, AuthorizationPolicy, PeerAuthentication, RequestAuthentication, MeshConfig
            wrong apiVersion    | `apiVersion: v2\\nkind: Pod\\nmetadata: {name: a}`                              | m.yaml:1: apiVersion: 'v2' is not v1 (for kind Pod)
            bad name            | `apiVersion: v1\\nkind: Pod\\nmetadata: {name: A_B}`                            | m.yaml:3: metadata.name: 'A_B' is not a valid name (lower-case letters, digits, '-', '.'; at most 253)
            bad target port     | `apiVersion: v1\\nkind: Service\\nmetadata: {name: s}\\nspec: {ports: [{port: 80, targetPort: Http_1}]}` | m.yaml:4 Service default/s: spec.ports[0].targetPort: 'Http_1' is neither a port number nor a port name (at most 15 lower-case letters, digits, '-')
            node without ip     | `apiVersion: v1\\nkind: Node\\nmetadata: {name: n}\\nstatus: {addresses: []}`   | m.yaml:4 Node n: status.addresses: needs an InternalIP address: where this node's agent accepts HBONE
            syntax error        | `apiVersion: v1\\nkind: [Pod`                                                   | m.yaml:2: invalid YAML:
            duplicate key       | `apiVersion: v1\\nkind: Pod\\nkind: Pod`                                        | m.yaml:3: duplicate key 'kind'
            mesh default unset  | `apiVersion: wisp.dev/v1alpha1\\nkind: MeshConfig\\nmetadata: {name: mesh}\\nspec: {defaults: {mtlsMode: UNSET}}` | m.yaml:4 MeshConfig mesh: spec.defaults.mtlsMode: the mesh default cannot be UNSET
            hbone protocol      | `apiVersion: wisp.dev/v1alpha1\\nkind: MeshConfig\\nmetadata: {name: mesh}\\nspec: {hbone: {protocol: quic}}` | m.yaml:4 MeshConfig mesh: spec.hbone.protocol: 'quic' is not h2, h3 or auto
            hbone protocol case | `apiVersion: wisp.dev/v1alpha1\\nkind: MeshConfig\\nmetadata: {name: mesh}\\nspec: {hbone: {protocol: H3}}` | m.yaml:4 MeshConfig mesh: spec.hbone.protocol: 'H3' is not h2, h3 or auto
            hbone unknown field | `apiVersion: wisp.dev/v1alpha1\\nkind: MeshConfig\\nmetadata: {name: mesh}\\nspec: {hbone: {protocl: h3}}` | m.yaml:4 MeshConfig mesh: spec.hbone.protocl: unknown field; expected one of protocol
            peer idle too short | `apiVersion: wisp.dev/v1alpha1\\nkind: MeshConfig\\nmetadata: {name: mesh}\\nspec: {wireguard: {peerIdleTimeout: 500ms}}` | m.yaml:4 MeshConfig mesh: spec.wireguard.peerIdleTimeout: 'PT0.5S' is outside 1s-24h
            key rotation short  | `apiVersion: wisp.dev/v1alpha1\\nkind: MeshConfig\\nmetadata: {name: mesh}\\nspec: {wireguard: {keyRotationPeriod: 5s}}` | m.yaml:4 MeshConfig mesh: spec.wireguard.keyRotationPeriod: 'PT5S' is outside 10s-8784h (leave it out to rotate only on demand)
            """)
    void kindErrorsNameTheField(String title, String text, String expected) {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("m.yaml", text.replace("\\n", "\n"));
        assertThat(d.errors()).hasSize(1);
        assertThat(d.errors().getFirst().toString()).startsWith(expected);
    }

    /** Istio allows port-level modes only on a policy with a workload selector; each mistake names its field. */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            no selector         | `mtls: {mode: STRICT}, portLevelMtls: {"9000": {mode: PERMISSIVE}}`                             | spec.portLevelMtls: needs spec.selector: port-level modes apply to selected workloads only
            port zero           | `selector: {matchLabels: {app: a}}, portLevelMtls: {"0": {mode: STRICT}}`                        | spec.portLevelMtls.0: '0' is not a port number (1-65535)
            named port          | `selector: {matchLabels: {app: a}}, portLevelMtls: {http: {mode: STRICT}}`                       | spec.portLevelMtls.http: 'http' is not a port number (1-65535)
            port too large      | `selector: {matchLabels: {app: a}}, portLevelMtls: {"70000": {mode: STRICT}}`                    | spec.portLevelMtls.70000: '70000' is not a port number (1-65535)
            bad mode            | `selector: {matchLabels: {app: a}}, portLevelMtls: {"9000": {mode: STRICTT}}`                    | spec.portLevelMtls.9000.mode: 'STRICTT' is not one of
            unknown field       | `selector: {matchLabels: {app: a}}, portLevelMtls: {"9000": {mod: STRICT}}`                      | spec.portLevelMtls.9000.mod: unknown field; expected one of mode
            """)
    void portLevelMtlsErrorsNameTheField(String title, String spec, String expected) {
        String text = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: "
                + "default}\nspec: {" + spec + "}\n";
        ConfigDecoder.Decoded d = ConfigDecoder.decode("m.yaml", text);
        assertThat(d.errors()).as(title).hasSize(1);
        assertThat(d.errors().getFirst().toString()).startsWith("m.yaml:").contains(
                " PeerAuthentication default/p: " + expected);
    }

    @Test
    void objectDefinedInTwoFilesIsRefusedAndNoModelIsProduced() {
        String pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {nodeName: n}\n";
        LoadResult r = ConfigSet.load(new java.util.TreeMap<>(Map.of("a.yaml", pod, "b.yaml", "\n" + pod)));
        assertThat(r.valid()).isFalse();
        assertThat(r.errors()).extracting(ConfigError::toString)
                .containsExactly("b.yaml:2 Pod default/a: defined twice (also at a.yaml:1)");
    }

    @Test
    void validFilesMakeOneModel() {
        LoadResult r = ConfigSet.load(Map.of("a.yaml", """
                apiVersion: wisp.dev/v1alpha1
                kind: MeshConfig
                metadata: {name: mesh}
                spec: {trustDomain: example.org, rootNamespace: mesh-root}
                """));
        assertThat(r.errors()).isEmpty();
        assertThat(r.model().mesh().trustDomain()).isEqualTo("example.org");
        assertThat(r.model().mesh().rootNamespace()).isEqualTo("mesh-root");
        assertThat(r.model().mesh().wireguardPeerIdle()).as("the default").isEqualTo(Duration.ofSeconds(180));
        assertThat(r.model().mesh().wireguardKeyRotation()).as("the default: on demand only").isZero();
        assertThat(ConfigSet.load(Map.of("a.yaml", """
                apiVersion: wisp.dev/v1alpha1
                kind: MeshConfig
                metadata: {name: mesh}
                spec: {wireguard: {keyRotationPeriod: 720h}}
                """)).model().mesh().wireguardKeyRotation()).isEqualTo(Duration.ofDays(30));
        assertThat(List.copyOf(r.model().objects().keySet())).hasSize(1);
        assertThat(ConfigSet.load(Map.of("a.yaml", """
                apiVersion: wisp.dev/v1alpha1
                kind: MeshConfig
                metadata: {name: mesh}
                spec: {wireguard: {peerIdleTimeout: 1m30s}}
                """)).model().mesh().wireguardPeerIdle()).isEqualTo(Duration.ofSeconds(90));
    }

    @ParameterizedTest
    @CsvSource({"h2, H2", "h3, H3", "auto, AUTO"})
    void meshConfigChoosesTheHboneProtocol(String label, HboneProtocol expected) {
        LoadResult r = ConfigSet.load(Map.of("a.yaml", """
                apiVersion: wisp.dev/v1alpha1
                kind: MeshConfig
                metadata: {name: mesh}
                spec: {hbone: {protocol: %s}}
                """.formatted(label)));
        assertThat(r.errors()).isEmpty();
        assertThat(r.model().mesh().hboneProtocol()).isEqualTo(expected);
        assertThat(MeshConfig.DEFAULT.hboneProtocol()).as("the default").isEqualTo(HboneProtocol.H2);
    }
}
