package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.local.Cgroups;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.InNetns;
import dev.wisp.local.LocalCluster;
import dev.wisp.local.ProcessLog;
import dev.wisp.testing.EchoServer;
import dev.wisp.testing.Netns;
import dev.wisp.testing.Prerequisites;
import dev.wisp.testing.Socks5Client;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane on Kubernetes, end to end, with no cluster: a Kubernetes API stand-in
 * ({@link KubernetesStandIn}, fabric8's CRUD mock server, in this JVM on the host end of the
 * cluster's host link) is the only source of configuration for {@code wisp control-plane
 * --kubernetes} (a child JVM on the underlay, {@code KUBECONFIG} naming the stand-in). The test
 * plays the kubelet and scheduler (Nodes and Pods created through the API with the local cluster's
 * addresses) and the user: Services and AuthorizationPolicies go in with the real
 * {@code kubectl apply -f}. Two real agents ({@code wisp node --service-account-token}) are
 * admitted through TokenReviews; what they hold ({@code /config_dump}) and what they do to calls
 * (node 1's SOCKS5 standing for the client pod, echo servers in the server pod) is asserted.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class KubernetesMeshE2eTest {
    static final String CLUSTER = "k8sapi";
    static final int BASE = 40;
    static final int XDS_PORT = 15012;
    static final String AUDIENCE = "wisp-control-plane";
    static final InetSocketAddress SOCKS = new InetSocketAddress("127.0.0.1", 15080);
    static final String SERVICE_VIP = "10.96.40.20";
    static final String SERVICE = """
            apiVersion: v1
            kind: Service
            metadata: {name: echo, namespace: default}
            spec:
              selector: {app: server}
              clusterIP: %s
              ports: [{name: tcp-echo, port: 80, targetPort: 9000}]
            """.formatted(SERVICE_VIP);
    /** DENY for the client's principal on the server pod. */
    static final String DENY_CLIENT = ControlPlaneMeshE2eTest.DENY_CLIENT;
    /** Refused: the action is misspelt. */
    static final String MISSPELT = DENY_CLIENT.replace("deny-client", "misspelt").replace("action: DENY",
            "action: DENNY");

    @TempDir
    static Path dir;
    static LocalCluster cluster;
    static KubernetesStandIn api;
    static Process controlPlane;
    static final List<Process> agents = new ArrayList<>();
    static EchoServer echo;
    static InetSocketAddress server;
    /** Pods created through the API: the client, and one of its namespace opted out by label. */
    static Pod clientPod;
    static Pod optedOut;
    /** A pod of node 1 running (its kubelet cgroup, its namespace, a process) before the agents start. */
    static Pod early;
    /** Where the kubelet lays out pods' cgroups (cgroupfs driver) on every node of this cluster. */
    static Path kubelet;
    static final PodApps.Started started = new PodApps.Started();

    @BeforeAll
    static void start() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "bpftool", "tcpdump");
        cluster = LocalCluster.up(ClusterSpec.builder(CLUSTER).nodes(2).base(BASE).hostLink(true)
                .pod("client", "default", "client", 0).pod("server", "default", "server", 1)
                .pod("early", "default", "early", 0).pod("opted-out", "default", "opted-out", 0).build());
        kubelet = Cgroups.wispRoot().resolve(CLUSTER).resolve("kubelet");
        LocalCluster.Pod serverPod = cluster.pod("server");
        server = new InetSocketAddress(serverPod.ip(), 9000);
        echo = Netns.call(serverPod.netns(), () -> new EchoServer(server), Duration.ofSeconds(60));
        // The host end of the host link: reachable from the underlay, where the control plane runs.
        api = KubernetesStandIn.start(InetAddress.getByName("10." + BASE + ".0.1"));
        KubernetesClient k = api.client();
        k.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("default")
                .addToLabels("wisp.dev/mesh", "enabled").endMetadata().build()).create();
        k.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("wisp-system").endMetadata()
                .build()).create();
        for (LocalCluster.Node n : cluster.nodes()) {
            k.nodes().resource(new NodeBuilder().withNewMetadata().withName(n.name()).endMetadata().withNewSpec()
                    .withPodCIDR(n.podCidr()).endSpec().withNewStatus().addNewAddress().withType("InternalIP")
                    .withAddress(n.address()).endAddress().endStatus().build()).create();
            Pod agentPod = pod("wisp-system", "wisp-node-" + n.name(), n.name(), "wisp-node", n.address(), Map.of());
            String token = token(n.name());
            Files.writeString(dir.resolve(n.name() + ".token"), token + "\n");
            api.authenticate(token, new TokenReviewStatusBuilder().withAuthenticated(true).withAudiences(AUDIENCE)
                    .withNewUser().withUsername("system:serviceaccount:wisp-system:wisp-node")
                    .withExtra(Map.of("authentication.kubernetes.io/pod-name", List.of(agentPod.getMetadata()
                            .getName()), "authentication.kubernetes.io/pod-uid", List.of(
                                    agentPod.getMetadata()
                                            .getUid())))
                    .endUser().build());
        }
        Pod client = pod("default", "client", "node1", "client", cluster.pod("client").ip(), Map.of("app",
                "client"));
        pod("default", "server", "node2", "server", serverPod.ip(), Map.of("app", "server"));
        clientPod = client;
        optedOut = pod("default", "opted-out", "node1", "opted-out", cluster.pod("opted-out").ip(), Map.of(
                "wisp.dev/mesh", "none"));
        early = pod("default", "early", "node1", "early", cluster.pod("early").ip(), Map.of("app", "early"));
        // As the kubelet runs them before any agent exists: each pod's cgroup and a process in it.
        for (Pod p : List.of(early, optedOut)) {
            started.inCgroup(kubeletCgroup(p), cluster.pod(p.getMetadata().getName()).netns(), List.of("sleep",
                    "900"));
        }

        Path mesh = Files.createDirectories(dir.resolve("mesh"));
        ProcessBuilder cp = cluster.onUnderlay(PodApps.wisp(List.of("-Xmx256m", "-XX:TieredStopAtLevel=1"), List
                .of("control-plane", "--kubernetes", "--config-dir", mesh.toString(), "--state-dir", dir.resolve(
                        "state").toString(), "--listen", cluster.underlayAddress() + ":" + XDS_PORT, "--admin",
                        "127.0.0.1:15014", "--token-audience", AUDIENCE)));
        cp.environment().put("KUBECONFIG", api.kubeconfig(dir).toString());
        controlPlane = cp.redirectErrorStream(true).redirectOutput(logFile("control-plane").toFile()).start();
        awaitLog("control-plane", 0, "configuration generation 1 live", controlPlane);
        for (LocalCluster.Node n : cluster.nodes()) {
            agents.add(startAgent(n));
        }
        for (LocalCluster.Node n : cluster.nodes()) {
            awaitLog(n.name(), 0, "node agent for " + n.name() + " ready", agents.get(n.index()));
        }
    }

    /**
     * Starts {@code n}'s agent (its log appended to): admitted with its token, capturing the pods it
     * is told of ({@code --capture}) and finding the ones already running in the kubelet's layout
     * ({@code --discover-pods}).
     */
    static Process startAgent(LocalCluster.Node n) throws Exception {
        List<String> args = new ArrayList<>(List.of("node", "--node", n.name(), "--control-plane", cluster
                .underlayAddress() + ":" + XDS_PORT, "--service-account-token", dir.resolve(n.name() + ".token")
                        .toString(),
                "--ca-bundle", dir.resolve("state/ca/bundle.pem").toString(), "--workers", "1",
                "--drain-timeout", "PT1S", "--capture", "--pods-dir", podsDir(n).toString(), "--capture-address", n
                        .address(),
                "--bpf-pin-root", "/sys/fs/bpf/wisp/" + CLUSTER + "/" + n.name(),
                "--discover-pods", "--cgroup-root=" + kubelet, "--netns-dir=/var/run/netns"));
        if (n.index() == 0) {
            args.addAll(List.of("--socks5-workload", clientPod.getMetadata().getUid()));
        }
        return cluster.agentOnNode(n, PodApps.wisp(List.of("-Xmx256m", "-XX:TieredStopAtLevel=1"), args))
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(logFile(n.name()).toFile()))
                .start();
    }

    static Path podsDir(LocalCluster.Node n) throws IOException {
        return Files.createDirectories(dir.resolve("pods-" + n.name()));
    }

    /** Pod {@code p}'s cgroup as the kubelet's cgroupfs driver makes it for a BestEffort pod (created). */
    static Path kubeletCgroup(Pod p) throws IOException {
        return Files.createDirectories(kubelet.resolve("kubepods/besteffort/pod" + p.getMetadata().getUid()));
    }

    @AfterAll
    static void stop() throws Exception {
        // Reap the children (agents, then the control plane, then the pods' processes) before their cgroups go.
        for (Process p : Stream.concat(agents.stream(), Stream.ofNullable(controlPlane)).toList()) {
            p.destroyForcibly().waitFor(20, TimeUnit.SECONDS);
        }
        started.close();
        for (AutoCloseable c : Stream.of(echo, api).filter(java.util.Objects::nonNull).toList()) {
            c.close();
        }
        PodApps.down(cluster, CLUSTER);
    }

    @Test
    @Order(1)
    void podsFromTheApiAndAServiceAppliedWithKubectlReachTheAgentsAndCarryTraffic() throws Exception {
        await().atMost(Duration.ofSeconds(180)).pollInterval(Duration.ofMillis(500)).until(() -> calls(server));
        assertThat(log("control-plane")).contains("issued spiffe://cluster.local/ns/default/sa/client to node node1");
        // A running pod of the enrolled namespace labelled wisp.dev/mesh=none is no workload of the mesh.
        assertThat(configDump("node1")).contains(clientPod.getMetadata().getUid()).doesNotContain(optedOut
                .getMetadata().getUid(), cluster.pod("opted-out").ip() + "\"");
        assertThat(log("control-plane")).doesNotContain("sa/opted-out");

        KubernetesStandIn.Run applied = apply("echo-service.yaml", SERVICE);
        assertThat(applied.output()).contains("service/echo created");
        await().atMost(Duration.ofSeconds(90)).until(() -> dumped("node1", "services").stream().anyMatch(
                svc -> svc.path("name").asText().equals("default/echo.default.svc.cluster.local")));
        // The client's agent resolves the Service's cluster IP (from the API) to the server pod.
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(200)).until(() -> calls(
                new InetSocketAddress(SERVICE_VIP, 80)));
    }

    @Test
    @Order(2)
    void aPolicyAppliedWithKubectlDeniesTheCallAndKubectlDeleteRestoresIt() throws Exception {
        assertThat(calls(server)).isTrue();
        assertThat(apply("deny.yaml", DENY_CLIENT).output()).contains(
                "authorizationpolicy.security.istio.io/deny-client created");
        await().atMost(Duration.ofSeconds(90)).until(() -> configDump("node2").contains("deny-client"));
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(100)).until(() -> !calls(server));
        assertThat(log("node2")).containsPattern(PodApps.denied(cluster.pod("client").ip(),
                "spiffe://cluster.local/ns/default/sa/client", server.getAddress().getHostAddress(), 9000,
                "denied by DENY policy default/deny-client"));

        KubernetesStandIn.Run deleted = api.kubectl(dir, "delete", "-f", dir.resolve("deny.yaml").toString());
        assertThat(deleted.output()).as(deleted.output()).contains("\"deny-client\" deleted");
        await().atMost(Duration.ofSeconds(90)).until(() -> !configDump("node2").contains("deny-client"));
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(100)).until(() -> calls(server));
    }

    @Test
    @Order(3)
    void aRefusedPolicyGetsAWarningEventNamingTheFieldAndNeverReachesTheAgents() throws Exception {
        assertThat(apply("misspelt.yaml", MISSPELT).output()).contains(
                "authorizationpolicy.security.istio.io/misspelt created");
        Pattern named = Pattern.compile("spec\\.action: 'DENNY' is not one of ALLOW, DENY");
        await().atMost(Duration.ofSeconds(90)).until(() -> named.matcher(log("control-plane")).find());
        assertThat(log("control-plane")).contains("refused AuthorizationPolicy default/misspelt");
        await().atMost(Duration.ofSeconds(90)).untilAsserted(() -> {
            KubernetesStandIn.Run events = api.kubectl(dir, "get", "events", "-n", "default", "-o", "json");
            assertThat(events.exit()).as(events.output()).isZero();
            JsonNode refusal = null;
            for (JsonNode e : new ObjectMapper().readTree(events.output()).path("items")) {
                if (e.path("involvedObject").path("name").asText().equals("misspelt")) {
                    refusal = e;
                }
            }
            assertThat(refusal).as("the Event on default/misspelt").isNotNull();
            assertThat(refusal.path("type").asText()).isEqualTo("Warning");
            assertThat(refusal.path("reason").asText()).isEqualTo("Refused");
            assertThat(refusal.path("involvedObject").path("kind").asText()).isEqualTo("AuthorizationPolicy");
            assertThat(named.matcher(refusal.path("message").asText()).find()).as(refusal.toString()).isTrue();
        });
        assertThat(configDump("node2")).doesNotContain("misspelt");
        assertThat(calls(server)).as("the refused policy changed nothing").isTrue();
        assertThat(agents).as("no agent was restarted").allMatch(Process::isAlive);
    }

    @Test
    @Order(4)
    void anHttpRouteAppliedWithKubectlGetsGatewayApiStatusConditions() throws Exception {
        assertThat(apply("route.yaml", """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: echo-split, namespace: default}
                spec:
                  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
                  rules: [{backendRefs: [{name: echo, port: 80}, {name: echo-v2, port: 80}]}]
                """).output()).contains("httproute.gateway.networking.k8s.io/echo-split created");
        // As a user reads it: the route's parent entry written by Wisp, its backend echo-v2 missing.
        await().atMost(Duration.ofSeconds(90)).untilAsserted(() -> {
            KubernetesStandIn.Run got = api.kubectl(dir, "get", "httproute", "echo-split", "-n", "default", "-o",
                    "json");
            assertThat(got.exit()).as(got.output()).isZero();
            JsonNode parent = new ObjectMapper().readTree(got.output()).path("status").path("parents").path(0);
            assertThat(parent.path("controllerName").asText()).as(got.output()).isEqualTo("wisp.dev/control-plane");
            assertThat(parent.path("parentRef").path("name").asText()).isEqualTo("echo");
            Map<String, String> conditions = new java.util.TreeMap<>();
            parent.path("conditions").forEach(c -> conditions.put(c.path("type").asText(),
                    c.path("status").asText() + "/" + c.path("reason").asText() + ": " + c.path("message").asText()));
            assertThat(conditions).containsEntry("Accepted", "True/Accepted: Wisp routes this Service's traffic");
            assertThat(conditions.get("ResolvedRefs")).isEqualTo("False/BackendNotFound: spec.rules[0].backendRefs[1]: "
                    + "Service default/echo-v2 is not in the mesh (absent, or no enrolled pod in its namespace)");
        });
        assertThat(agents).as("no agent was restarted").allMatch(Process::isAlive);
    }

    /**
     * Enrollment through the API and discovery, with the pods laid out the kubelet's way and real
     * eBPF capture: the pod running before the agents, a pod the kubelet starts afterwards, and the
     * pod labelled out; then node 1's agent restarts. What leaves node 1 is watched on the underlay
     * bridge the whole time: no TCP of an enrolled pod's address except HBONE (15008) crosses it, while
     * the opted-out pod's call does, in clear (so the watch would see a leak).
     */
    @Test
    @Order(5)
    void podsBeforeAndAfterTheAgentAreCapturedTheOptedOutOneIsNotAndNothingLeavesInClearText() throws Exception {
        try (MeshWireGuardE2eTest.Capture wire = new MeshWireGuardE2eTest.Capture(cluster.underlayNetns(), dir,
                "underlay", "tcp and not port 15008")) {
            LocalCluster.Node node1 = cluster.node(0);
            // The pod running before the agent: found through the API's list and the host, captured.
            awaitCaptured(node1, early);
            assertThat(log("node1")).contains("found running pod " + uid(early) + " (cgroup " + kubeletCgroup(early));
            assertThat(callFrom(early)).isEqualTo("ping");

            // The opted-out pod: never listed, so no pod file and nothing on its cgroup; its call goes
            // out in clear, and the watch sees it.
            assertThat(podsDir(node1).resolve(uid(optedOut) + ".json")).doesNotExist();
            assertThat(CaptureE2eTest.attachTypes(kubeletCgroup(optedOut))).isEmpty();
            assertThat(log("node1")).doesNotContain(uid(optedOut));
            assertThat(callFrom(optedOut)).isEqualTo("ping");
            InetAddress optedOutIp = InetAddress.getByName(cluster.pod("opted-out").ip());
            await().atMost(Duration.ofSeconds(90)).until(() -> crossing(wire, optedOutIp) > 0);

            // A pod started after the agent, the kubelet's order: the Pod object, then its cgroup and
            // sandbox, then its address in the status; its app starts once the pod file is confirmed.
            LocalCluster.Pod latePod = cluster.addPod(new ClusterSpec.PodSpec("late", "default", "late", 0, Map
                    .of()));
            Pod late = api.client().pods().inNamespace("default").resource(new PodBuilder().withNewMetadata()
                    .withName("late").withLabels(Map.of("app", "late")).endMetadata().withNewSpec().withNodeName(
                            "node1")
                    .withServiceAccountName("late").endSpec().withNewStatus().withPhase("Pending")
                    .endStatus().build()).create();
            started.inCgroup(kubeletCgroup(late), latePod.netns(), List.of("sleep", "900"));
            late.getStatus().setPhase("Running");
            late.getStatus().setPodIP(latePod.ip());
            late = api.client().pods().inNamespace("default").resource(late).updateStatus();
            awaitCaptured(node1, late);
            assertThat(callFrom(late)).isEqualTo("ping");

            // The agent restarts: while it is away the pods' connects fail closed; once back it enrolls
            // every pod again from its pod files.
            Process old = agents.get(0);
            old.destroy();
            assertThat(old.waitFor(30, TimeUnit.SECONDS)).isTrue();
            long offset = Files.size(logFile("node1"));
            assertThat(callFrom(early)).as("a call while the agent is away").isNotEqualTo("ping");
            agents.set(0, startAgent(node1));
            awaitLog("node1", offset, "node agent for node1 ready", agents.get(0));
            String restarted = log("node1").substring((int) offset);
            for (Pod p : List.of(early, late)) {
                assertThat(restarted).contains("enrolled pod " + uid(p) + " (cgroup " + kubeletCgroup(p));
                awaitEcho(p, Duration.ofSeconds(90), offset);
            }
            assertThat(restarted).doesNotContain(uid(optedOut));
            assertThat(CaptureE2eTest.attachTypes(kubeletCgroup(optedOut))).isEmpty();

            // Nothing of an enrolled pod crossed the underlay but HBONE, from the first call to the last.
            for (Pod p : List.of(early, late)) {
                InetAddress ip = InetAddress.getByName(p.getStatus().getPodIP());
                assertThat(crossing(wire, ip)).as("TCP packets of enrolled pod %s on the underlay, not HBONE", p
                        .getMetadata().getName()).isZero();
            }
        }
    }

    // ---- helpers

    static String uid(Pod p) {
        return p.getMetadata().getUid();
    }

    /** Awaits {@code p}'s pod file on {@code node} and capture's programs on its kubelet cgroup. */
    static void awaitCaptured(LocalCluster.Node node, Pod p) throws Exception {
        Path file = podsDir(node).resolve(uid(p) + ".json");
        await().atMost(Duration.ofSeconds(180)).pollInterval(Duration.ofMillis(200)).until(() -> Files.exists(file)
                && CaptureE2eTest.attachTypes(kubeletCgroup(p)).containsKey("cgroup_inet4_connect"));
        assertThat(new ObjectMapper().readTree(file.toFile()).path("discovered").asBoolean()).isTrue();
    }

    /**
     * Awaits {@code text} in {@code name}'s log after {@code offset} (a JVM starting on a loaded
     * machine: up to 3 minutes); fails at once if {@code process} exits, and with the log's end either way.
     */
    static void awaitLog(String name, long offset, String text, Process process) {
        new ProcessLog(logFile(name)).awaitReady(name, process, offset, Duration.ofSeconds(180), log -> log.contains(
                text));
    }

    /**
     * Awaits a call from {@code p} that echoes; on a timeout, fails with the last calls' answers and
     * node 1's log since {@code offset}, so a failure on a CI machine says what the pod and the agent saw.
     */
    static void awaitEcho(Pod p, Duration bound, long offset) {
        List<String> answers = new ArrayList<>();
        try {
            await().atMost(bound).pollInterval(Duration.ofMillis(500)).until(() -> {
                String out = callFrom(p);
                answers.add(Instant.now() + " " + (out.isEmpty() ? "(nothing: timed out or closed)" : out));
                return "ping".equals(out);
            });
        } catch (org.awaitility.core.ConditionTimeoutException e) {
            String since = log("node1").substring((int) offset);
            throw new AssertionError(
                    "pod %s's calls never echoed within %s; its answers: %s%nnode1's log since the restart (last 12,000 chars):%n%s"
                            .formatted(p.getMetadata().getName(), bound,
                                    answers.subList(Math.max(0, answers.size() - 8),
                                            answers.size()),
                                    since.substring(Math.max(0, since.length() - 12_000))),
                    e);
        }
    }

    /**
     * One call from inside pod {@code p} (a process in its kubelet cgroup and namespace, as {@code
     * kubectl exec} runs one) to the server's echo port: what came back ({@code ping} when it echoed,
     * the shell's error when the connect failed, nothing when it timed out).
     */
    static String callFrom(Pod p) throws Exception {
        Process call = started.inCgroup(kubeletCgroup(p), cluster.pod(p.getMetadata().getName()).netns(), List.of(
                "timeout", "10", "bash", "-c", "{ exec 3<>/dev/tcp/%s/%d && printf ping >&3 && head -c 4 <&3; } 2>&1"
                        .formatted(server.getAddress().getHostAddress(), server.getPort())));
        String out = new String(call.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertThat(call.waitFor(20, TimeUnit.SECONDS)).isTrue();
        return out;
    }

    /** How many captured TCP packets (HBONE excluded by the filter) have {@code ip} as source or destination. */
    static long crossing(MeshWireGuardE2eTest.Capture wire, InetAddress ip) throws IOException {
        return MeshWireGuardE2eTest.Pcap.packets(Files.readAllBytes(wire.file)).stream().filter(pk -> pk.src()
                .equals(ip) || pk.dst().equals(ip)).count();
    }

    /** A running pod created through the API, as the kubelet would report it. */
    static Pod pod(String namespace, String name, String node, String serviceAccount, String ip,
            Map<String, String> labels) {
        return api.client().pods().inNamespace(namespace).resource(new PodBuilder().withNewMetadata().withName(name)
                .withLabels(labels).endMetadata().withNewSpec().withNodeName(node).withServiceAccountName(
                        serviceAccount)
                .endSpec().withNewStatus().withPhase("Running").withPodIP(ip).endStatus()
                .build()).create();
    }

    /**
     * A projected token's shape for {@code node}'s agent (audience, expiry): the control plane reads
     * these claims before asking the API server, whose TokenReview answer the stand-in gives.
     */
    static String token(String node) {
        Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
        String claims = "{\"aud\":[\"%s\"],\"exp\":%d,\"sub\":\"system:serviceaccount:wisp-system:wisp-node\","
                + "\"jti\":\"%s\"}";
        return String.join(".", b64.encodeToString("{\"alg\":\"RS256\",\"kid\":\"stand-in\"}".getBytes(
                StandardCharsets.UTF_8)), b64.encodeToString(
                        claims.formatted(AUDIENCE, Instant.now().plus(Duration
                                .ofHours(1)).getEpochSecond(), node).getBytes(StandardCharsets.UTF_8)),
                b64.encodeToString(
                        new byte[32]));
    }

    /** {@code kubectl apply -f} of {@code yaml} saved as {@code name}; fails the test when kubectl does. */
    static KubernetesStandIn.Run apply(String name, String yaml) throws Exception {
        Path file = dir.resolve(name);
        Files.writeString(file, yaml);
        // The stand-in serves no OpenAPI schema, so kubectl's client-side validation is off; the
        // control plane's decoder is the validation under test (it refuses with an Event).
        KubernetesStandIn.Run run = api.kubectl(dir, "apply", "--validate=false", "-f", file.toString());
        assertThat(run.exit()).as(run.output()).isZero();
        return run;
    }

    /** Whether a new connection from the client (node 1's SOCKS5) to {@code target} echoes. */
    static boolean calls(InetSocketAddress target) {
        try {
            Socks5Client.Result r = Netns.call(cluster.node(0).netns(), () -> Socks5Client.connect(SOCKS, target),
                    Duration.ofSeconds(30));
            try (Socket s = r.socket()) {
                if (r.reply() != 0) {
                    return false;
                }
                s.setSoTimeout(5000);
                byte[] ping = {4, 0, 4, 0};
                s.getOutputStream().write(ping);
                return Arrays.equals(ping, s.getInputStream().readNBytes(ping.length));
            }
        } catch (Exception e) {
            return false;
        }
    }

    /**
     * {@code node}'s {@code /config_dump}, asked again for up to 90 s while its admin does not answer in
     * time (one call allows 5 s, which a loaded machine's agent has missed); then fails with the last error.
     */
    static String configDump(String node) {
        String netns = cluster.nodes().stream().filter(n -> n.name().equals(node)).findFirst().orElseThrow().netns();
        AtomicReference<IOException> last = new AtomicReference<>();
        try {
            return await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(500)).until(() -> {
                try {
                    return InNetns.httpGet(netns, 15000, "/config_dump");
                } catch (IOException e) {
                    last.set(e);
                    return null;
                }
            }, java.util.Objects::nonNull);
        } catch (org.awaitility.core.ConditionTimeoutException e) {
            throw new AssertionError(node + "'s /config_dump did not answer within 90 s; the last error: " + last
                    .get(), e);
        }
    }

    static List<JsonNode> dumped(String node, String type) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        new ObjectMapper().readTree(configDump(node)).path(type).forEach(out::add);
        return out;
    }

    static Path logFile(String name) {
        return dir.resolve(name + ".log");
    }

    static String log(String name) {
        return PodApps.read(logFile(name));
    }
}
