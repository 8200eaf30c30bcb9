package dev.wisp.controlplane.kubernetes;

import dev.wisp.base.Enrollment;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.api.workload.v1.Resource;
import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.xds.NodeAuthenticator;
import dev.wisp.node.NodeSettings;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.controlplane.model.Pod;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatus;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Agents authenticated by their projected service-account tokens, against fabric8's mock API
 * server in CRUD mode: the cluster's pods come from the API (informer), TokenReviews are answered
 * by the test (the mock cannot verify tokens), which records every TokenReview the control plane
 * sends. The agents are the real {@link ControlPlaneClient} with {@code --service-account-token}.
 */
@EnableKubernetesMockClient(crud = true)
class AgentTokensTest {
    static final String AUDIENCE = "wisp-control-plane";
    static final String AGENTS = "system:serviceaccount:wisp-system:wisp-node";
    static final String TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews";

    // Static fields: one API server for the class. Each case creates its cluster on an empty store
    // (checked) and empties it when it ends, so no case sees another's objects or TokenReviews.
    static KubernetesMockServer server;
    static KubernetesClient client;

    @TempDir
    Path dir;

    /** token → the API server's answer (absent: not authenticated); emptied before each case. */
    static final Map<String, TokenReviewStatus> answers = new ConcurrentHashMap<>();
    /** Every TokenReview the control plane sent in this case, in order. */
    static final List<TokenReview> sent = new CopyOnWriteArrayList<>();
    final List<ControlPlaneClient> agents = new ArrayList<>();
    ControlPlane cp;
    KubernetesConfigSource source;
    AgentTokens tokens;

    @BeforeAll
    static void answerTokenReviews() {
        server.expect().post().withPath(TOKEN_REVIEWS).andReply(201, request -> {
            TokenReview asked = Serialization.unmarshal(request.getBody().readUtf8(), TokenReview.class);
            sent.add(asked);
            TokenReviewStatus status = answers.getOrDefault(asked.getSpec().getToken(),
                    new TokenReviewStatusBuilder().withAuthenticated(false).withError("invalid bearer token").build());
            return new TokenReviewBuilder(asked).withStatus(status).build();
        }).always();
    }

    @BeforeEach
    void start() throws Exception {
        assertThat(MockStores.kinds().stream().flatMap(k -> MockStores.list(client, k).stream()))
                .as("objects an earlier case left behind").isEmpty();
        answers.clear();
        sent.clear();
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("wisp-system").endMetadata()
                .build()).create();
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("shop")
                .addToLabels("wisp.dev/mesh", "enabled").endMetadata().build()).create();
        for (String node : List.of("node-1", "node-2")) {
            client.nodes().resource(new NodeBuilder().withNewMetadata().withName(node).endMetadata().withNewSpec()
                    .withPodCIDR(node.equals("node-1") ? "10.1.1.0/24" : "10.1.2.0/24").endSpec().withNewStatus()
                    .addNewAddress().withType("InternalIP")
                    .withAddress(node.equals("node-1") ? "192.0.2.1" : "192.0.2.2")
                    .endAddress().endStatus().build()).create();
        }
        pod("wisp-system", "wisp-node-1", "uid-agent-1", "node-1", "wisp-node", "192.0.2.1");
        pod("wisp-system", "wisp-node-2", "uid-agent-2", "node-2", "wisp-node", "192.0.2.2");
        pod("shop", "web", "uid-web", "node-1", "web", "10.1.1.10");
        pod("shop", "db", "uid-db", "node-2", "db", "10.1.2.10");

        Path mesh = KubernetesConfigSourceTest.meshConfig(dir);
        source = new KubernetesConfigSource(client, new KubernetesConfigSource.Settings(
                new Enrollment(Enrollment.DEFAULT_LABEL, false), mesh, Duration.ZERO, Duration.ofSeconds(10)));
        tokens = AgentTokens.create(client, new AgentTokens.Settings(AUDIENCE, "wisp-system", "wisp-node"), source);
        InetSocketAddress loopback = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        cp = ControlPlane.start(new ControlPlane.Options(mesh, dir.resolve("state"), loopback, loopback), source,
                tokens);
        await().atMost(Duration.ofSeconds(20))
                .until(() -> cp.translation() != null && cp.model().all(Pod.class).size() == 2);
    }

    @AfterEach
    void stop() {
        agents.forEach(ControlPlaneClient::close);
        if (cp != null) {
            cp.close();
        }
        MockStores.empty(client);
    }

    /** The uid the API server gave each pod (the mock assigns its own). */
    final Map<String, String> uids = new ConcurrentHashMap<>();

    private void pod(String namespace, String name, String uid, String node, String serviceAccount, String ip) {
        io.fabric8.kubernetes.api.model.Pod created = client.pods().inNamespace(namespace)
                .resource(new PodBuilder().withNewMetadata().withName(name).withUid(uid)
                        .endMetadata().withNewSpec().withNodeName(node).withServiceAccountName(serviceAccount).endSpec()
                        .withNewStatus().withPhase("Running").withPodIP(ip).endStatus().build())
                .create();
        uids.put(name, created.getMetadata().getUid());
    }

    /** A token shaped like the API server's (the signature is not checked here: the TokenReview is). */
    static String jwt(String subject, String audience, Instant expiry) {
        Base64.Encoder b = Base64.getUrlEncoder().withoutPadding();
        String payload = "{\"aud\":[\"" + audience + "\"],\"exp\":" + expiry.getEpochSecond() + ",\"sub\":\""
                + subject + "\"}";
        return b.encodeToString("{\"alg\":\"RS256\"}".getBytes(StandardCharsets.UTF_8)) + "."
                + b.encodeToString(payload.getBytes(StandardCharsets.UTF_8)) + "." + b.encodeToString(new byte[64]);
    }

    static String token(String name) {
        return jwt(name, AUDIENCE, Instant.now().plus(Duration.ofHours(1)));
    }

    /** The API server's answer for a token of {@code user} bound to {@code pod} (and maybe naming a node). */
    static TokenReviewStatus bound(String user, String pod, String uid, String nodeExtra) {
        Map<String, List<String>> extra = new java.util.HashMap<>(Map.of(AgentTokenChecks.POD_NAME, List.of(pod),
                AgentTokenChecks.POD_UID, List.of(uid)));
        if (nodeExtra != null) {
            extra.put(AgentTokenChecks.NODE_NAME, List.of(nodeExtra));
        }
        return new TokenReviewStatusBuilder().withAuthenticated(true).withAudiences(AUDIENCE).withNewUser()
                .withUsername(user).withExtra(extra).endUser().build();
    }

    /** The real agent client for {@code node}, presenting {@code token} as its projected token. */
    private ControlPlaneClient agent(String node, String token, Held held) throws Exception {
        Path file = dir.resolve(node + "-" + agents.size() + ".token");
        Files.writeString(file, token + "\n");
        ControlPlaneClient c = ControlPlaneClient.connect(new NodeSettings.Source.ControlPlane("127.0.0.1",
                cp.xdsPort(), file, cp.caDir().resolve("bundle.pem"),
                NodeSettings.Source.Credential.SERVICE_ACCOUNT_TOKEN),
                node, "k8s.test", held);
        agents.add(c);
        return c;
    }

    private static String refusal(ControlPlaneClient agent) {
        await().atMost(Duration.ofSeconds(10)).until(() -> agent.xds().status().lastError().isPresent());
        return agent.xds().status().lastError().orElseThrow();
    }

    private static List<X509Certificate> sign(ControlPlaneClient agent, String id) throws Exception {
        SpiffeId spiffe = SpiffeId.parse(id);
        return agent.signer().sign(spiffe, CertificateRequest.generate(spiffe).der(), Duration.ofHours(1))
                .get(10, TimeUnit.SECONDS);
    }

    /** What the agent received, by type. */
    static final class Held implements StateUpdates {
        final Map<String, Map<String, String>> versions = new ConcurrentHashMap<>();

        @Override
        public void apply(String typeUrl, List<Resource> resources, List<String> removed) {
            Map<String, String> v = versions.computeIfAbsent(typeUrl, t -> new ConcurrentHashMap<>());
            resources.forEach(r -> v.put(r.getName(), r.getVersion()));
            removed.forEach(v::remove);
        }

        @Override
        public Map<String, String> versions(String typeUrl) {
            return Map.copyOf(versions.getOrDefault(typeUrl, Map.of()));
        }
    }

    @Test
    void theAgentsTokenServesItsNodeAndSignsForItsPodsWithOneTokenReview() throws Exception {
        String t = token("agent-1");
        answers.put(t, bound(AGENTS, "wisp-node-1", uids.get("wisp-node-1"), null));
        Held held = new Held();
        ControlPlaneClient agent = agent("node-1", t, held);
        await().atMost(Duration.ofSeconds(10)).until(() -> !held.versions(StateUpdates.WORKLOAD).isEmpty());
        for (int i = 0; i < 5; i++) {
            assertThat(sign(agent, "spiffe://k8s.test/ns/shop/sa/web")).isNotEmpty();
        }
        assertThat(sign(agent, "spiffe://k8s.test/ns/wisp-system/sa/wisp-node.node-1")).isNotEmpty();
        // db runs on node-2 only: node authorization, as in local mode.
        assertThat(agent.signer().sign(SpiffeId.parse("spiffe://k8s.test/ns/shop/sa/db"),
                CertificateRequest.generate(SpiffeId.parse("spiffe://k8s.test/ns/shop/sa/db")).der(),
                Duration.ofHours(1))).failsWithin(Duration.ofSeconds(10)).withThrowableThat()
                .withMessageContaining("PERMISSION_DENIED");

        // Eight calls (one stream, seven signings), one TokenReview: the token and our audience.
        assertThat(sent).hasSize(1);
        assertThat(sent.getFirst().getSpec().getToken()).isEqualTo(t);
        assertThat(sent.getFirst().getSpec().getAudiences()).containsExactly(AUDIENCE);
        assertThat(tokens.reviews()).isEqualTo(1);
    }

    @Test
    void aTokenOfAnotherServiceAccountIsRefusedSayingWhichAccountToUse() throws Exception {
        String t = token("web");
        answers.put(t, bound("system:serviceaccount:shop:web", "web", uids.get("web"), null));
        Held held = new Held();
        String error = refusal(agent("node-1", t, held));
        assertThat(error).startsWith("UNAUTHENTICATED: the token belongs to 'system:serviceaccount:shop:web', not to "
                + "the agents' service account wisp-system/wisp-node: run the agent DaemonSet with serviceAccountName "
                + "wisp-node in wisp-system");
        assertThat(held.versions).isEmpty();
        assertThat(sent).extracting(r -> r.getSpec().getToken()).containsExactly(t);
    }

    @Test
    void aTokenOfAPodOnAnotherNodeIsRefusedByTheInformersNodeNotTheTokenReviewsAnswer() throws Exception {
        // The canned answer claims node-1, but the informer says the pod runs on node-2.
        String lying = token("agent-2-lying");
        answers.put(lying, bound(AGENTS, "wisp-node-2", uids.get("wisp-node-2"), "node-1"));
        assertThat(refusal(agent("node-1", lying, new Held()))).isEqualTo("UNAUTHENTICATED: the token names node "
                + "'node-1' but its pod wisp-system/wisp-node-2 runs on node 'node-2'");

        // Without a node in the answer: the credential speaks for node-2, the agent claims node-1.
        String other = token("agent-2");
        answers.put(other, bound(AGENTS, "wisp-node-2", uids.get("wisp-node-2"), null));
        Held held = new Held();
        assertThat(refusal(agent("node-1", other, held))).startsWith("PERMISSION_DENIED: node_name 'node-1' does not "
                + "match the credential's node 'node-2'").endsWith("is the agent's --node the node it runs on?");
        assertThat(held.versions).isEmpty();

        // Once the informer sees the agent's pod on node-1 (it moved), the same cached answer serves node-1.
        long before = tokens.reviews();
        client.pods().inNamespace("wisp-system").withName("wisp-node-2").edit(p -> new PodBuilder(p).editSpec()
                .withNodeName("node-1").endSpec().build());
        await().atMost(Duration.ofSeconds(10)).until(() -> tokens.authenticate(other)
                .equals(new NodeAuthenticator.Authenticated("node-1")));
        assertThat(tokens.reviews()).isEqualTo(before);
    }

    @Test
    void forgedAndMisdirectedTokensAreRefusedSayingWhatToCheck() throws Exception {
        String forged = token("forged");
        assertThat(refusal(agent("node-1", forged, new Held()))).isEqualTo("UNAUTHENTICATED: the API server did not "
                + "authenticate the service-account token (invalid bearer token): is it the agent pod's current "
                + "projected token, for audience 'wisp-control-plane'?");
        assertThat(sent).hasSize(1);
        assertThat(sent.getFirst().getSpec().getToken()).isEqualTo(forged);
        assertThat(sent.getFirst().getSpec().getAudiences()).containsExactly(AUDIENCE);

        // Refused on their own claims, without asking the API server.
        assertThat(refusal(agent("node-1", jwt("x", "https://kubernetes.default.svc", Instant.now().plusSeconds(600)),
                new Held()))).contains("is for audience [https://kubernetes.default.svc], the control plane accepts "
                        + "'wisp-control-plane'");
        assertThat(refusal(agent("node-1", "local-mode-node-token", new Held())))
                .contains("is not a service-account token (a JWT)");
        assertThat(refusal(agent("node-1", jwt("x", AUDIENCE, Instant.now().minusSeconds(5)), new Held())))
                .contains("expired at").contains("is the kubelet refreshing");
        assertThat(sent).hasSize(1);
        // An unbound (legacy Secret) token of the right account.
        String legacy = token("legacy");
        answers.put(legacy, new TokenReviewStatusBuilder().withAuthenticated(true).withAudiences(AUDIENCE).withNewUser()
                .withUsername(AGENTS).endUser().build());
        assertThat(refusal(agent("node-1", legacy, new Held()))).contains("is not bound to a pod");
    }

    @Test
    void answersAreCachedForTheTokensLifetimeSharedByConcurrentCallersAndBounded() throws Exception {
        AtomicReference<Instant> now = new AtomicReference<>(Instant.now());
        AgentTokens timed = new AgentTokens(client, new AgentTokens.Settings(AUDIENCE, "wisp-system", "wisp-node", 2,
                Duration.ofSeconds(30), Duration.ofHours(24)), source::pod, now::get);
        String t = jwt("agent-1", AUDIENCE, now.get().plus(Duration.ofMinutes(10)));
        answers.put(t, bound(AGENTS, "wisp-node-1", uids.get("wisp-node-1"), null));
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<NodeAuthenticator.Result>> results = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                results.add(pool.submit(() -> timed.authenticate(t)));
            }
            for (Future<NodeAuthenticator.Result> r : results) {
                assertThat(r.get(10, TimeUnit.SECONDS)).isEqualTo(new NodeAuthenticator.Authenticated("node-1"));
            }
        } finally {
            pool.shutdownNow();
        }
        assertThat(timed.reviews()).isEqualTo(1);

        // A refusal is remembered for 30 s, then asked again.
        String forged = jwt("forged", AUDIENCE, now.get().plus(Duration.ofMinutes(10)));
        for (int i = 0; i < 10; i++) {
            assertThat(timed.authenticate(forged)).isInstanceOf(NodeAuthenticator.Refused.class);
        }
        assertThat(timed.reviews()).isEqualTo(2);
        now.set(now.get().plusSeconds(31));
        timed.authenticate(forged);
        assertThat(timed.reviews()).isEqualTo(3);

        // Two entries at most: a third token evicts the least recently used one.
        timed.authenticate(t);
        String third = jwt("third", AUDIENCE, now.get().plus(Duration.ofMinutes(10)));
        timed.authenticate(third);
        assertThat(timed.reviews()).isEqualTo(4);
        timed.authenticate(t);
        assertThat(timed.reviews()).isEqualTo(4);
        timed.authenticate(forged);
        assertThat(timed.reviews()).isEqualTo(5);

        // Past the token's expiry it is refused on its claims, without a TokenReview.
        now.set(now.get().plus(Duration.ofMinutes(10)));
        assertThat(timed.authenticate(t)).isInstanceOfSatisfying(NodeAuthenticator.Refused.class,
                r -> assertThat(r.reason()).contains("expired"));
        assertThat(timed.reviews()).isEqualTo(5);

        // A deleted agent pod stops authenticating at once, whatever is cached.
        now.set(Instant.now());
        String fresh = jwt("fresh", AUDIENCE, now.get().plus(Duration.ofMinutes(10)));
        answers.put(fresh, bound(AGENTS, "wisp-node-1", uids.get("wisp-node-1"), null));
        assertThat(timed.authenticate(fresh)).isEqualTo(new NodeAuthenticator.Authenticated("node-1"));
        client.pods().inNamespace("wisp-system").withName("wisp-node-1").delete();
        await().atMost(Duration.ofSeconds(10))
                .until(() -> timed.authenticate(fresh) instanceof NodeAuthenticator.Refused r
                        && r.reason().contains("is not in the control plane's view of the cluster"));
    }
}
