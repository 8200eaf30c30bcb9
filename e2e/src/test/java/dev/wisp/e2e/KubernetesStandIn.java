package dev.wisp.e2e;

import io.fabric8.kubernetes.api.model.APIGroupListBuilder;
import io.fabric8.kubernetes.api.model.APIResource;
import io.fabric8.kubernetes.api.model.APIResourceBuilder;
import io.fabric8.kubernetes.api.model.APIResourceListBuilder;
import io.fabric8.kubernetes.api.model.APIVersionsBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatus;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatusBuilder;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.server.mock.KubernetesMixedDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.ServerRequest;
import io.fabric8.mockwebserver.ServerResponse;
import io.fabric8.mockwebserver.http.Dispatcher;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A Kubernetes API server stand-in for end-to-end tests: fabric8's mock server in CRUD mode (it
 * stores, lists and watches what is written through it), plus what the real {@code kubectl} needs
 * before it writes anything — the discovery documents ({@code /api}, {@code /apis} and each
 * group-version's resource list), which the CRUD mode does not serve — and TokenReviews answered
 * from {@link #authenticate} (the mock cannot verify tokens). Plain HTTP on the address given, an
 * ephemeral port. The test owns it and closes it.
 */
final class KubernetesStandIn implements AutoCloseable {
    static final String TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews";
    private static final List<String> VERBS = List.of("get", "list", "watch", "create", "update", "patch", "delete");

    private final KubernetesMockServer server;
    private final KubernetesClient client;
    /** token → the API server's answer; a token not here is not authenticated. */
    private final Map<String, TokenReviewStatus> tokens = new ConcurrentHashMap<>();

    private final String url;

    private KubernetesStandIn(KubernetesMockServer server, InetAddress address) {
        this.server = server;
        this.url = "http://" + address.getHostAddress() + ":" + server.getPort();
        // The test's own client: generous timeouts and no retries, so that on a loaded machine a slow
        // answer is waited for rather than the request sent again (a retried create answers 409).
        this.client = new KubernetesClientBuilder().withConfig(new ConfigBuilder().withMasterUrl(url)
                .withRequestTimeout(120_000).withConnectionTimeout(60_000).withRequestRetryBackoffLimit(0).build())
                .build();
    }

    /** Starts the stand-in on {@code address} (port 0: the kernel picks one). */
    static KubernetesStandIn start(InetAddress address) {
        Map<ServerRequest, Queue<ServerResponse>> expectations = new HashMap<>();
        KubernetesMockServer server = new KubernetesMockServer(new Context(), new MockWebServer(), expectations,
                new Discovery(new KubernetesMixedDispatcher(expectations)), false);
        server.init(address, 0);
        KubernetesStandIn standIn = new KubernetesStandIn(server, address);
        server.expect().post().withPath(TOKEN_REVIEWS).andReply(201, request -> {
            TokenReview asked = Serialization.unmarshal(request.getBody().readUtf8(), TokenReview.class);
            TokenReviewStatus status = standIn.tokens.getOrDefault(asked.getSpec().getToken(),
                    new TokenReviewStatusBuilder().withAuthenticated(false).withError("invalid bearer token").build());
            return new TokenReviewBuilder(asked).withStatus(status).build();
        }).always();
        return standIn;
    }

    /** The API server's TokenReview answer for {@code token} from now on. */
    void authenticate(String token, TokenReviewStatus answer) {
        tokens.put(token, answer);
    }

    /** A client of the stand-in, for what the test plays (kubelet, scheduler). */
    KubernetesClient client() {
        return client;
    }

    /** A kubeconfig naming the stand-in (for the control plane's {@code KUBECONFIG} and kubectl). */
    Path kubeconfig(Path dir) throws IOException {
        Path file = dir.resolve("kubeconfig");
        Files.writeString(file, """
                apiVersion: v1
                kind: Config
                clusters: [{name: stand-in, cluster: {server: "%s"}}]
                users: [{name: test, user: {token: stand-in}}]
                contexts: [{name: stand-in, context: {cluster: stand-in, user: test}}]
                current-context: stand-in
                """.formatted(url));
        return file;
    }

    /** What a kubectl run printed (stdout and stderr) and how it ended. */
    record Run(int exit, String output) {}

    /**
     * Runs the real kubectl (from {@code scripts/install-deps.sh}'s tools directory) against the
     * stand-in; fails the test when it is missing, naming the script.
     */
    Run kubectl(Path dir, String... args) throws Exception {
        Path tools = Path.of(System.getenv().getOrDefault("WISP_TEST_TOOLS", "/opt/wisp-test-tools"));
        Path kubectl = tools.resolve("bin/kubectl");
        if (!Files.isExecutable(kubectl)) {
            throw new AssertionError("no kubectl at " + kubectl + ": scripts/install-deps.sh installs it");
        }
        List<String> command = new ArrayList<>(List.of(kubectl.toString(), "--kubeconfig", kubeconfig(dir)
                .toString(), "--cache-dir", dir.resolve("kubectl-cache").toString()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("kubectl " + List.of(args) + " did not end within 60 s");
        }
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    @Override
    public void close() {
        client.close();
        server.destroy();
    }

    /**
     * Serves the discovery documents for the kinds the mesh reads and kubectl writes here (core v1,
     * Istio's security kinds, the Gateway API's), and hands every other request to the CRUD store.
     */
    private static final class Discovery extends Dispatcher {
        private static final Map<String, List<APIResource>> GROUPS = Map.of(
                "security.istio.io/v1", List.of(resource("AuthorizationPolicy", "authorizationpolicies"),
                        resource("PeerAuthentication", "peerauthentications"),
                        resource("RequestAuthentication", "requestauthentications")),
                "gateway.networking.k8s.io/v1", List.of(resource("Gateway", "gateways"),
                        resource("HTTPRoute", "httproutes"), resource("GRPCRoute", "grpcroutes")),
                "discovery.k8s.io/v1", List.of(resource("EndpointSlice", "endpointslices")));
        private static final List<APIResource> CORE = List.of(resource("Namespace", "namespaces", false),
                resource("Node", "nodes", false), resource("Pod", "pods"), resource("Service", "services"),
                resource("Event", "events"));
        private final Dispatcher store;

        Discovery(Dispatcher store) {
            this.store = store;
        }

        private static APIResource resource(String kind, String plural) {
            return resource(kind, plural, true);
        }

        private static APIResource resource(String kind, String plural, boolean namespaced) {
            return new APIResourceBuilder().withKind(kind).withName(plural).withSingularName(kind.toLowerCase())
                    .withNamespaced(namespaced).withVerbs(VERBS).build();
        }

        @Override
        public MockResponse dispatch(RecordedRequest request) {
            String path = request.getPath();
            int query = path.indexOf('?');
            path = query < 0 ? path : path.substring(0, query);
            Object document = !"GET".equals(request.getMethod()) ? null : switch (path) {
                case "/api" -> new APIVersionsBuilder().withVersions("v1").build();
                case "/api/v1" -> new APIResourceListBuilder().withGroupVersion("v1").withResources(CORE).build();
                case "/apis" -> groups();
                default -> {
                    List<APIResource> resources = path.startsWith("/apis/") ? GROUPS.get(path.substring(6)) : null;
                    yield resources == null
                            ? null
                            : new APIResourceListBuilder().withGroupVersion(path.substring(6))
                                    .withResources(resources).build();
                }
            };
            if (document == null) {
                return store.dispatch(request);
            }
            return new MockResponse().setResponseCode(200).setHeader("Content-Type", "application/json")
                    .setBody(Serialization.asJson(document));
        }

        private static Object groups() {
            APIGroupListBuilder list = new APIGroupListBuilder();
            GROUPS.keySet().stream().sorted().forEach(gv -> {
                String[] parts = gv.split("/");
                list.addNewGroup().withName(parts[0]).addNewVersion().withGroupVersion(gv).withVersion(parts[1])
                        .endVersion().withNewPreferredVersion().withGroupVersion(gv).withVersion(parts[1])
                        .endPreferredVersion().endGroup();
            });
            return list.build();
        }

        @Override
        public void shutdown() {
            store.shutdown();
        }
    }
}
