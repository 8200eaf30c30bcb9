package dev.wisp.chart;

import static dev.wisp.chart.Helm.only;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The chart {@code charts/wisp} with the real helm: lint, render for several value sets, check
 * every rendered object strictly against the Kubernetes API's schema, and read what the objects
 * grant (the agent's capabilities, mounts and tolerations; the RBAC rules).
 */
class HelmChartTest {
    /** Value sets beside the defaults (resources of this package). */
    static Stream<List<String>> valueSets() {
        return Stream.of(List.of(), List.of("istio-strict.yaml"), List.of("monitoring.yaml"),
                List.of("waypoints-rolling.yaml"), List.of("wireguard.yaml"));
    }

    @ParameterizedTest
    @MethodSource("valueSets")
    void lintsStrictly(List<String> values) {
        List<String> args = new ArrayList<>(List.of("lint", "--strict", Helm.CHART.toString()));
        values.forEach(v -> args.addAll(List.of("--values", Helm.resource(v).toString())));
        Helm.Run lint = Helm.helm(args.toArray(String[]::new));
        assertThat(lint.exit()).as(lint.output()).isZero();
        assertThat(lint.output()).contains("1 chart(s) linted, 0 chart(s) failed");
    }

    @ParameterizedTest
    @MethodSource("valueSets")
    void everyRenderedObjectMatchesTheKubernetesSchema(List<String> values) {
        List<ObjectNode> objects = Helm.template(values.toArray(String[]::new));
        assertThat(objects).hasSizeGreaterThanOrEqualTo(9);
        Helm.Run check = Helm.check(objects);
        assertThat(check.exit()).as(check.output()).isZero();
        assertThat(check.output()).contains("checked " + objects.size() + " objects, 0 problems");
    }

    @Test
    void theChartsCrdsDefineWispsRouteFilterKindsAndMatchTheKubernetesSchema() throws java.io.IOException {
        List<ObjectNode> crds = Helm.parse(java.nio.file.Files.readString(Helm.CHART.resolve("crds/wisp.dev.yaml")));
        assertThat(crds).extracting(o -> o.at("/metadata/name").asText() + " " + o.at("/spec/names/kind").asText()
                + " " + o.at("/spec/versions/0/name").asText() + " " + o.at("/spec/scope").asText())
                .containsExactly("httpfaults.wisp.dev HTTPFault v1alpha1 Namespaced",
                        "localratelimits.wisp.dev LocalRateLimit v1alpha1 Namespaced");
        Helm.Run check = Helm.check(crds);
        assertThat(check.exit()).as(check.output()).isZero();
        assertThat(check.output()).contains("checked 2 objects, 0 problems");
    }

    @Test
    void theSchemaCheckRefusesAnUnknownFieldAWrongTypeAndAMissingRequiredField() {
        List<ObjectNode> objects = Helm.template();
        ObjectNode agent = only(objects, "DaemonSet", "wisp-node");
        ((ObjectNode) agent.at("/spec/template/spec/containers/0")).put("capabilites", "typo");
        ObjectNode cp = only(objects, "Deployment", "wisp-control-plane");
        ((ObjectNode) cp.get("spec")).put("replicas", "two");
        ObjectNode pdb = only(objects, "PodDisruptionBudget", "wisp-control-plane");
        ObjectNode role = only(objects, "ClusterRole", "wisp-control-plane-wisp-system");
        ((ObjectNode) role.at("/rules/0")).remove("verbs");

        Helm.Run check = Helm.check(List.of(agent, cp, pdb, role));

        assertThat(check.exit()).isEqualTo(1);
        assertThat(check.output().lines()).containsExactly(
                "#0 DaemonSet/wisp-node: spec.template.spec.containers[0].capabilites: unknown field \"capabilites\" (not in V1Container)",
                "#1 Deployment/wisp-control-plane: spec.replicas: expected a number, found \"two\"",
                "#1 Deployment/wisp-control-plane: (object): data/spec/replicas must be integer",
                "#3 ClusterRole/wisp-control-plane-wisp-system: (object): data/rules/0 must have required property verbs",
                "checked 4 objects, 4 problems");
    }

    @Test
    void valuesOutsideTheSchemaAreRefused() {
        Helm.Run typo = Helm.helm("template", "wisp", Helm.CHART.toString(), "--set", "node.podDir=/x");
        assertThat(typo.exit()).isNotZero();
        assertThat(typo.output()).contains("Additional property podDir is not allowed");
        Helm.Run mode = Helm.helm("template", "wisp", Helm.CHART.toString(), "--set", "meshConfig.mtlsMode=DISABLE");
        assertThat(mode.exit()).isNotZero();
        assertThat(mode.output()).contains("mtlsMode");
        Helm.Run timeout = Helm.helm("template", "wisp", Helm.CHART.toString(), "--set", "cni.enrollTimeoutSeconds=0");
        assertThat(timeout.exit()).isNotZero();
        assertThat(timeout.output()).contains("enrollTimeoutSeconds");
    }

    @Test
    void theAgentRunsWithTwoNamedCapabilitiesNotPrivileged() {
        JsonNode pod = only(Helm.template(), "DaemonSet", "wisp-node").at("/spec/template/spec");
        JsonNode container = pod.at("/containers/0");
        JsonNode security = container.get("securityContext");
        assertThat(security.path("privileged").asBoolean(false)).isFalse();
        assertThat(texts(security.at("/capabilities/drop"))).containsExactly("ALL");
        assertThat(texts(security.at("/capabilities/add"))).containsExactlyInAnyOrder("NET_ADMIN", "SYS_ADMIN");
        assertThat(security.path("readOnlyRootFilesystem").asBoolean()).isTrue();
        assertThat(pod.path("priorityClassName").asText()).isEqualTo("system-node-critical");
        assertThat(pod.path("hostNetwork").asBoolean()).isTrue();
        assertThat(container.at("/readinessProbe/httpGet/port").asInt()).isEqualTo(15021);
        assertThat(container.at("/readinessProbe/httpGet/path").asText()).isEqualTo("/healthz/ready");
    }

    @Test
    void theAgentMountsBpffsTheCgroupRootAndNetworkNamespacesFromTheHost() {
        JsonNode pod = only(Helm.template(), "DaemonSet", "wisp-node").at("/spec/template/spec");
        Set<String> hostPaths = new TreeSet<>();
        pod.get("volumes").forEach(v -> {
            if (v.has("hostPath")) {
                hostPaths.add(v.get("name").asText() + "=" + v.at("/hostPath/path").asText());
            }
        });
        assertThat(hostPaths).containsExactlyInAnyOrder("bpf=/sys/fs/bpf", "cgroup=/sys/fs/cgroup",
                "netns=/var/run/netns", "pods=/run/wisp/pods", "cni-bin=/opt/cni/bin", "cni-conf=/etc/cni/net.d",
                "cni-runtime=/opt/wisp-cni");
        Set<String> mounts = new TreeSet<>();
        pod.at("/containers/0/volumeMounts").forEach(m -> mounts.add(m.get("name").asText() + "@"
                + m.get("mountPath").asText() + (m.path("readOnly").asBoolean() ? ":ro" : "")));
        assertThat(mounts).contains("bpf@/sys/fs/bpf", "cgroup@/sys/fs/cgroup:ro", "netns@/var/run/netns:ro",
                "token@/var/run/secrets/wisp:ro");
        JsonNode token = pod.get("volumes").findParent("serviceAccountToken").get("serviceAccountToken");
        assertThat(token.get("audience").asText()).isEqualTo("wisp-control-plane");
        assertThat(token.get("expirationSeconds").asInt()).isEqualTo(43200);
        assertThat(pod.path("automountServiceAccountToken").asBoolean(true)).isFalse();
        // The agent presents that token, not a node token file.
        assertThat(texts(pod.at("/containers/0/args"))).contains("--service-account-token=/var/run/secrets/wisp/token")
                .noneMatch(a -> a.startsWith("--token-file"));
        // Pods running before the agent are found through the same host mounts (cgroups, namespaces).
        assertThat(texts(pod.at("/containers/0/args"))).containsSubsequence("--discover-pods",
                "--cgroup-root=/sys/fs/cgroup", "--netns-dir=/var/run/netns");
    }

    /**
     * The install-cni container beside the agent: exactly the two CNI directories of the host and the
     * directory it copies the plugin's Java runtime into (the host names it {@code cni.runtimeDir}, the
     * container {@code /host} + that, both passed to {@code wisp cni install}), no capability, the plugin's settings from the values, the API token only when it reads labels or
     * asks at exit whether its DaemonSet is deleted (the default), none with {@code removeOnExit}.
     */
    @Test
    void installCniMountsExactlyTheCniDirectoriesAndItsRuntimeCopyWithNoCapability() {
        JsonNode pod = only(Helm.template(), "DaemonSet", "wisp-node").at("/spec/template/spec");
        JsonNode cni = container(pod, "install-cni");
        assertThat(hostMounts(pod, cni)).containsExactlyInAnyOrder("/opt/cni/bin@/opt/cni/bin",
                "/etc/cni/net.d@/etc/cni/net.d", "/opt/wisp-cni@/host/opt/wisp-cni");
        JsonNode security = cni.get("securityContext");
        assertThat(texts(security.at("/capabilities/drop"))).containsExactly("ALL");
        assertThat(security.at("/capabilities/add").isMissingNode()).isTrue();
        assertThat(security.path("allowPrivilegeEscalation").asBoolean(true)).isFalse();
        assertThat(security.path("privileged").asBoolean(false)).isFalse();
        assertThat(security.path("readOnlyRootFilesystem").asBoolean()).isTrue();
        assertThat(security.path("runAsUser").asInt(-1)).isZero();
        assertThat(texts(cni.get("args"))).containsExactly("cni", "install", "--cni-bin-dir=/opt/cni/bin",
                "--cni-conf-dir=/etc/cni/net.d", "--pods-dir=/run/wisp/pods", "--cgroup-root=/sys/fs/cgroup",
                "--netns-dir=/var/run/netns", "--exclude-namespace=kube-system", "--enroll-timeout=10",
                "--copy-runtime-to=/host/opt/wisp-cni", "--host-runtime-dir=/opt/wisp-cni",
                "--service-account-dir=/var/run/secrets/wisp-cni", "--kubernetes", "--enroll-label=wisp.dev/mesh",
                // By default the plugin outlives the container and goes only when the DaemonSet does.
                "--remove-on-uninstall=wisp-system/wisp-node", "--log-level=info");
        JsonNode token = volume(pod, "cni-token").at("/projected/sources");
        assertThat(token.at("/0/serviceAccountToken/audience").isMissingNode()).as("the API server's audience")
                .isTrue();
        assertThat(token.at("/0/serviceAccountToken/expirationSeconds").asInt()).isEqualTo(3600);
        assertThat(token.at("/1/configMap/name").asText()).isEqualTo("kube-root-ca.crt");
        assertThat(container(pod, "node").get("volumeMounts").toString()).as("the agent holds no API token")
                .doesNotContain("cni-token");
        assertThat(texts(container(only(Helm.template("istio-strict.yaml"), "DaemonSet", "wisp-node").at(
                "/spec/template/spec"), "install-cni").get("args"))).contains("--honor-istio-labels");

        List<ObjectNode> own = Helm.template("waypoints-rolling.yaml");
        JsonNode ownPod = only(own, "DaemonSet", "wisp-node").at("/spec/template/spec");
        JsonNode ownCni = container(ownPod, "install-cni");
        assertThat(hostMounts(ownPod, ownCni)).containsExactlyInAnyOrder("/var/lib/cni/bin@/var/lib/cni/bin",
                "/etc/kubernetes/cni/net.d@/etc/kubernetes/cni/net.d", "/opt/wisp-cni@/host/opt/wisp-cni");
        // cni.removeOnExit: the old behaviour, and with no label reads no API token at all.
        assertThat(texts(ownCni.get("args"))).contains("--exclude-namespace=kube-system,monitoring",
                "--enroll-timeout=30", "--remove-on-exit").noneMatch(
                        a -> a.startsWith("--kubernetes") || a
                                .startsWith("--remove-on-uninstall") || a.startsWith("--service-account-dir"));
        assertThat(volume(ownPod, "cni-token")).isNull();
        assertThat(texts(container(ownPod, "node").get("args"))).doesNotContain("--discover-pods");
        assertThat(own).noneMatch(o -> o.at("/metadata/name").asText().startsWith("wisp-cni"));

        List<ObjectNode> off = Helm.template("monitoring.yaml");
        JsonNode offPod = only(off, "DaemonSet", "wisp-node").at("/spec/template/spec");
        assertThat(offPod.get("containers")).hasSize(1);
        assertThat(offPod.get("volumes").toString()).doesNotContain("cni");
        assertThat(off).noneMatch(o -> o.at("/metadata/name").asText().startsWith("wisp-cni"));
    }

    /**
     * {@code cni.chained: false} (in {@code istio-strict}): install-cni writes Wisp's own conflist into
     * Multus's directory, mounted from the host at the same path beside the two CNI directories; a
     * value naming the runtime's configuration directory for it is refused at render time.
     */
    @Test
    void anOwnConflistGoesIntoMultusDirectoryNeverTheRuntimes() {
        JsonNode pod = only(Helm.template("istio-strict.yaml"), "DaemonSet", "wisp-node").at("/spec/template/spec");
        JsonNode cni = container(pod, "install-cni");
        assertThat(texts(cni.get("args"))).contains("--own-conflist-dir=/etc/cni/multus/net.d",
                "--cni-conf-dir=/etc/cni/net.d");
        assertThat(hostMounts(pod, cni)).containsExactlyInAnyOrder("/opt/cni/bin@/opt/cni/bin",
                "/etc/cni/net.d@/etc/cni/net.d", "/etc/cni/multus/net.d@/etc/cni/multus/net.d",
                "/opt/wisp-cni@/host/opt/wisp-cni");
        assertThat(texts(container(only(Helm.template(), "DaemonSet", "wisp-node").at("/spec/template/spec"),
                "install-cni").get("args"))).as("chained by default").noneMatch(a -> a.startsWith("--own-conflist"));
        Helm.Run same = Helm.helm("template", "wisp", Helm.CHART.toString(), "--set", "cni.chained=false", "--set",
                "cni.ownConflistDir=/etc/cni/net.d/");
        assertThat(same.exit()).isNotZero();
        assertThat(same.output()).contains("cni.ownConflistDir must not be cni.confDir");
    }

    /**
     * {@code wireguard.enabled}: the agent gets its {@code --wireguard*} arguments (its address from
     * the downward API's {@code status.hostIP}, no pod CIDR: the control plane serves its Node's), the
     * host's {@code /dev/net/tun} as a CharDevice, a host directory for its private key and the UAPI
     * directory, and its UDP port; with the same two capabilities and no new API right. Off by default,
     * with none of it.
     */
    @Test
    void wireguardOnGivesTheAgentItsDeviceKeyDirectoryAndPortAndNothingElse() {
        List<ObjectNode> defaults = Helm.template();
        JsonNode off = only(defaults, "DaemonSet", "wisp-node").at("/spec/template/spec");
        assertThat(off.toString()).doesNotContain("wireguard", "/dev/net/tun");

        Helm.Run strictRun = Helm.helm("template", "wisp", Helm.CHART.toString(), "--namespace", Helm.NAMESPACE,
                "--set", "wireguard.enabled=true");
        assertThat(strictRun.exit()).as(strictRun.output()).isZero();
        JsonNode strict = only(Helm.parse(strictRun.output()), "DaemonSet", "wisp-node").at("/spec/template/spec");
        JsonNode node = container(strict, "node");
        List<String> args = texts(node.get("args"));
        assertThat(args.stream().filter(a -> a.startsWith("--wireguard")).toList()).containsExactly("--wireguard",
                "--wireguard-address=$(HOST_IP)", "--wireguard-port=51820", "--wireguard-interface=wisp-wg0",
                "--wireguard-state-dir=/var/lib/wisp/wireguard", "--wireguard-uapi-dir=/var/run/wireguard");
        assertThat(node.get("env").toString()).contains("{\"name\":\"HOST_IP\",\"valueFrom\":{\"fieldRef\":{"
                + "\"fieldPath\":\"status.hostIP\"}}}");
        assertThat(hostMounts(strict, node)).contains("/dev/net/tun@/dev/net/tun", "/var/lib/wisp@/var/lib/wisp",
                "/var/run/wireguard@/var/run/wireguard");
        assertThat(volume(strict, "tun").at("/hostPath/type").asText()).isEqualTo("CharDevice");
        assertThat(volume(strict, "wireguard-state").at("/hostPath/type").asText()).isEqualTo("DirectoryOrCreate");
        Set<String> ports = new TreeSet<>();
        node.get("ports").forEach(p -> ports.add(p.get("name").asText() + " " + p.get("containerPort").asInt() + "/"
                + p.get("protocol").asText()));
        assertThat(ports).contains("wireguard 51820/UDP");
        JsonNode security = node.get("securityContext");
        assertThat(texts(security.at("/capabilities/add"))).containsExactlyInAnyOrder("NET_ADMIN", "SYS_ADMIN");
        assertThat(security.path("privileged").asBoolean(false)).isFalse();
        assertThat(hostMounts(strict, container(strict, "install-cni"))).as("install-cni gets none of it")
                .noneMatch(m -> m.contains("wireguard") || m.contains("tun"));

        List<ObjectNode> custom = Helm.template("wireguard.yaml");
        JsonNode pod = only(custom, "DaemonSet", "wisp-node").at("/spec/template/spec");
        JsonNode agent = container(pod, "node");
        assertThat(texts(agent.get("args")).stream().filter(a -> a.startsWith("--wireguard")).toList())
                .containsExactly("--wireguard", "--wireguard-address=$(HOST_IP)", "--wireguard-port=51821",
                        "--wireguard-interface=wg-mesh", "--wireguard-state-dir=/var/lib/wisp-state/wireguard",
                        "--wireguard-uapi-dir=/var/run/wireguard", "--wireguard-cluster-cidr=10.244.0.0/16",
                        "--wireguard-cluster-cidr=fd00:10:244::/56", "--wireguard-permissive");
        assertThat(hostMounts(pod, agent)).contains("/var/lib/wisp-state@/var/lib/wisp-state");
        assertThat(agent.get("ports").toString()).contains("{\"name\":\"wireguard\",\"containerPort\":51821,"
                + "\"protocol\":\"UDP\"}");
        // The control plane annotates Nodes with the keys; the agents' account gains nothing.
        assertThat(rbac(custom)).isEqualTo(rbac(defaults));

        for (String bad : List.of("wireguard.mode=off", "wireguard.interface=much-too-long-name",
                "wireguard.port=0", "wireguard.clusterCidrs={10.244.0.0}", "wireguard.stateDir=var/lib")) {
            Helm.Run refused = Helm.helm("template", "wisp", Helm.CHART.toString(), "--set", "wireguard.enabled=true",
                    "--set", bad);
            assertThat(refused.exit()).as(bad).isNotZero();
            assertThat(refused.output()).as(bad).contains("wireguard");
        }
    }

    /** The RBAC objects of a rendering, as text. */
    private static List<String> rbac(List<ObjectNode> objects) {
        return objects.stream().filter(o -> o.path("kind").asText().matches("(Cluster)?Role(Binding)?")).map(
                ObjectNode::toString).sorted().toList();
    }

    private static JsonNode container(JsonNode pod, String name) {
        for (JsonNode c : pod.get("containers")) {
            if (c.path("name").asText().equals(name)) {
                return c;
            }
        }
        throw new AssertionError("no container " + name);
    }

    private static JsonNode volume(JsonNode pod, String name) {
        for (JsonNode v : pod.get("volumes")) {
            if (v.path("name").asText().equals(name)) {
                return v;
            }
        }
        return null;
    }

    /** The container's mounts of host paths, as "hostPath@mountPath". */
    private static Set<String> hostMounts(JsonNode pod, JsonNode container) {
        Set<String> out = new TreeSet<>();
        container.get("volumeMounts").forEach(m -> {
            JsonNode v = volume(pod, m.get("name").asText());
            if (v != null && v.has("hostPath")) {
                out.add(v.at("/hostPath/path").asText() + "@" + m.get("mountPath").asText());
            }
        });
        return out;
    }

    @Test
    void theAgentToleratesEveryTaintAndIsNeverReplacedUnderRunningPods() {
        JsonNode agent = only(Helm.template(), "DaemonSet", "wisp-node");
        Set<String> tolerations = new TreeSet<>();
        agent.at("/spec/template/spec/tolerations").forEach(t -> tolerations.add(t.path("key").asText("*") + "/"
                + t.get("operator").asText() + "/" + t.path("effect").asText("any")));
        assertThat(tolerations).containsExactlyInAnyOrder("*/Exists/NoSchedule", "*/Exists/NoExecute",
                "CriticalAddonsOnly/Exists/any");
        assertThat(agent.at("/spec/updateStrategy/type").asText()).isEqualTo("OnDelete");

        JsonNode surge = only(Helm.template("waypoints-rolling.yaml"), "DaemonSet", "wisp-node")
                .at("/spec/updateStrategy");
        assertThat(surge.get("type").asText()).isEqualTo("RollingUpdate");
        assertThat(surge.at("/rollingUpdate/maxUnavailable").asInt()).isZero();
        assertThat(surge.at("/rollingUpdate/maxSurge").asInt()).isEqualTo(1);
    }

    @Test
    void theControlPlaneMayReadWhatItWatchesReviewTokensReportAndAnnotateNodesOnly() {
        List<ObjectNode> objects = Helm.template();
        Set<String> grants = new TreeSet<>();
        for (ObjectNode o : objects) {
            if (o.path("kind").asText().matches("(Cluster)?Role")) {
                String role = o.at("/metadata/name").asText();
                o.get("rules").forEach(rule -> rule.get("apiGroups").forEach(g -> rule.get("resources")
                        .forEach(r -> rule.get("verbs").forEach(v -> grants.add(role + " " + (g.asText().isEmpty()
                                ? "core"
                                : g.asText()) + "/" + r.asText() + " " + v.asText())))));
            }
        }
        Set<String> expected = new TreeSet<>();
        String role = "wisp-control-plane-wisp-system ";
        for (String read : List.of("core/pods", "core/services", "core/namespaces", "core/nodes",
                "discovery.k8s.io/endpointslices", "security.istio.io/authorizationpolicies",
                "security.istio.io/peerauthentications", "security.istio.io/requestauthentications",
                "gateway.networking.k8s.io/gateways", "gateway.networking.k8s.io/httproutes",
                "gateway.networking.k8s.io/grpcroutes", "wisp.dev/httpfaults", "wisp.dev/localratelimits")) {
            for (String verb : List.of("get", "list", "watch")) {
                expected.add(role + read + " " + verb);
            }
        }
        expected.add(role + "authentication.k8s.io/tokenreviews create");
        for (String events : List.of("core/events", "events.k8s.io/events")) {
            expected.add(role + events + " create");
            expected.add(role + events + " patch");
        }
        // Status of the Gateway API kinds only, and only the verb GatewayApiStatus uses.
        for (String status : List.of("gateway.networking.k8s.io/gateways/status",
                "gateway.networking.k8s.io/httproutes/status", "gateway.networking.k8s.io/grpcroutes/status")) {
            expected.add(role + status + " update");
        }
        expected.add(role + "core/nodes patch");
        // The CNI plugin reads one pod and one namespace by name (install-cni's token, not the agent's).
        expected.add("wisp-cni-wisp-system core/pods get");
        expected.add("wisp-cni-wisp-system core/namespaces get");
        // install-cni, stopping, reads its own DaemonSet to tell an uninstall from a pod replacement.
        expected.add("wisp-cni-installer apps/daemonsets get");
        assertThat(grants).isEqualTo(expected);
        ObjectNode installer = only(objects, "Role", "wisp-cni-installer");
        assertThat(installer.at("/metadata/namespace").asText()).isEqualTo("wisp-system");
        assertThat(texts(installer.at("/rules/0/resourceNames"))).containsExactly("wisp-node");

        List<String> boundAccounts = new ArrayList<>();
        objects.stream().filter(o -> o.path("kind").asText().matches("(Cluster)?RoleBinding"))
                .forEach(b -> b.get("subjects").forEach(s -> boundAccounts.add(b.at("/roleRef/name").asText() + " "
                        + s.get("name").asText())));
        assertThat(boundAccounts).as("the agents' account is bound to the plugin's reads only")
                .containsExactlyInAnyOrder(
                        "wisp-control-plane-wisp-system wisp-control-plane", "wisp-cni-wisp-system wisp-node",
                        "wisp-cni-installer wisp-node");
        assertThat(only(objects, "ServiceAccount", "wisp-node").path("automountServiceAccountToken").asBoolean(true))
                .isFalse();
    }

    @Test
    void theControlPlaneHasItsServiceBudgetAndMeshConfig() {
        List<ObjectNode> objects = Helm.template("istio-strict.yaml");
        Set<Integer> ports = new TreeSet<>();
        only(objects, "Service", "wisp-control-plane").at("/spec/ports").forEach(p -> ports.add(p.get("port").asInt()));
        assertThat(ports).containsExactly(15012, 15020);
        assertThat(only(objects, "PodDisruptionBudget", "wisp-control-plane").at("/spec/maxUnavailable").asInt())
                .isZero();
        JsonNode args = only(objects, "Deployment", "wisp-control-plane").at("/spec/template/spec/containers/0/args");
        assertThat(texts(args)).contains("--kubernetes", "--honor-istio-labels", "--enroll-label=wisp.dev/mesh",
                "--token-audience=wisp-control-plane", "--agent-service-account=wisp-system/wisp-node");
        String mesh = only(objects, "ConfigMap", "wisp-mesh-config").at("/data/meshconfig.yaml").asText();
        assertThat(mesh).contains("kind: MeshConfig", "trustDomain: \"prod.example\"", "mtlsMode: STRICT");

        List<ObjectNode> defaults = Helm.template();
        assertThat(
                texts(only(defaults, "Deployment", "wisp-control-plane").at("/spec/template/spec/containers/0/args")))
                .doesNotContain("--honor-istio-labels");
        assertThat(defaults).noneMatch(o -> o.path("kind").asText().equals("ServiceMonitor"));
        assertThat(defaults).noneMatch(o -> o.path("kind").asText().equals("Gateway"));
    }

    /**
     * {@code controlPlane.cacerts.secretName}: Istio's layout mounted read-only from that Secret with
     * mode 0400 under the pod's fsGroup (so root:1337 0440, which the key check accepts: see
     * KeyFileAccess), and {@code --cacerts} pointing at it; nothing of it by default.
     */
    @Test
    void theCacertsSecretIsMountedReadOnlyOwnerOnlyAndPassedToTheControlPlane() {
        JsonNode pod = only(Helm.template("istio-strict.yaml"), "Deployment", "wisp-control-plane").at(
                "/spec/template/spec");
        assertThat(texts(pod.at("/containers/0/args"))).contains("--cacerts=/etc/cacerts");
        JsonNode volume = null;
        for (JsonNode v : pod.at("/volumes")) {
            volume = v.path("name").asText().equals("cacerts") ? v : volume;
        }
        assertThat(volume).as("the cacerts volume").isNotNull();
        assertThat(volume.at("/secret/secretName").asText()).isEqualTo("cacerts");
        assertThat(volume.at("/secret/defaultMode").asInt()).isEqualTo(0400);
        assertThat(volume.at("/secret/optional").isMissingNode()).as("required once named").isTrue();
        assertThat(pod.at("/securityContext/fsGroup").asInt()).isEqualTo(1337);
        assertThat(pod.at("/securityContext/runAsUser").asInt()).isEqualTo(1337);
        JsonNode mount = null;
        for (JsonNode m : pod.at("/containers/0/volumeMounts")) {
            mount = m.path("name").asText().equals("cacerts") ? m : mount;
        }
        assertThat(mount).as("the cacerts mount").isNotNull();
        assertThat(mount.at("/mountPath").asText()).isEqualTo("/etc/cacerts");
        assertThat(mount.at("/readOnly").asBoolean()).isTrue();

        JsonNode defaults = only(Helm.template(), "Deployment", "wisp-control-plane").at("/spec/template/spec");
        assertThat(texts(defaults.at("/containers/0/args"))).noneMatch(a -> a.startsWith("--cacerts"));
        assertThat(defaults.at("/volumes").toString()).doesNotContain("cacerts");
    }

    @Test
    void serviceMonitorsAndWaypointsAppearWhenAsked() {
        List<ObjectNode> monitored = Helm.template("monitoring.yaml");
        assertThat(only(monitored, "ServiceMonitor", "wisp-node").at("/spec/endpoints/0/port").asText())
                .isEqualTo("http-metrics");
        assertThat(only(monitored, "ServiceMonitor", "wisp-control-plane").at("/metadata/labels/release").asText())
                .isEqualTo("prometheus");
        assertThat(only(monitored, "Service", "wisp-node-metrics").at("/spec/clusterIP").asText()).isEqualTo("None");

        JsonNode waypoint = only(Helm.template("waypoints-rolling.yaml"), "Gateway", "reviews-wp");
        assertThat(waypoint.at("/metadata/namespace").asText()).isEqualTo("reviews");
        assertThat(waypoint.at("/metadata/labels/istio.io~1waypoint-for").asText()).isEqualTo("workload");
        assertThat(waypoint.at("/spec/listeners/0/port").asInt()).isEqualTo(15008);
        assertThat(waypoint.at("/spec/listeners/0/protocol").asText()).isEqualTo("HBONE");
    }

    private static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    /**
     * Each dashboard of {@code charts/wisp/dashboards} is a ConfigMap for Grafana's sidecar: labelled
     * {@code grafana_dashboard: "1"}, in the folder Wisp, holding the file's JSON unchanged; the
     * values rename the label and turn them off.
     */
    @Test
    void everyDashboardIsAConfigMapForGrafanasSidecar() throws Exception {
        List<java.nio.file.Path> files;
        try (Stream<java.nio.file.Path> s = java.nio.file.Files.list(Helm.CHART.resolve("dashboards"))) {
            files = s.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
        assertThat(files).hasSize(5);
        List<ObjectNode> maps = Helm.template().stream().filter(o -> o.path("kind").asText().equals("ConfigMap")
                && o.at("/metadata/labels/grafana_dashboard").asText().equals("1")).toList();
        assertThat(maps).hasSize(files.size());
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        for (java.nio.file.Path f : files) {
            String key = f.getFileName().toString();
            ObjectNode map = only(maps, "ConfigMap", "wisp-dashboard-" + key.replace(".json", ""));
            assertThat(map.at("/metadata/annotations/grafana_folder").asText()).isEqualTo("Wisp");
            assertThat(json.readTree(map.at("/data/" + key).asText())).as(key).isEqualTo(json.readTree(f.toFile()));
        }
        Helm.Run off = Helm.helm("template", "wisp", Helm.CHART.toString(), "--set", "dashboards.enabled=false");
        assertThat(off.exit()).as(off.output()).isZero();
        assertThat(off.output()).doesNotContain("grafana_dashboard");
        Helm.Run renamed = Helm.helm("template", "wisp", Helm.CHART.toString(), "--set", "dashboards.label=dash",
                "--set", "dashboards.labelValue=yes");
        assertThat(Helm.parse(renamed.output()).stream().filter(o -> o.at("/metadata/labels/dash").asText().equals(
                "yes"))).hasSize(files.size());
    }
}
