package dev.wisp.controlplane.route;

import dev.wisp.controlplane.config.ConfigSet;
import dev.wisp.controlplane.config.LoadResult;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.route.HttpRequest.Header;
import dev.wisp.testing.ConfigYaml;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Services for the route tests (pods on {@code node-a}, 10.0.0.1): {@code shop/reviews} (port 9080, one pod), {@code shop/reviews-v1}
 * and {@code shop/reviews-v2} (one pod each), {@code shop/empty} (no pod).
 */
public final class RouteFixtures {
    public static final String SERVICES = ConfigYaml.documents(ConfigYaml.node("node-a", "10.0.0.1"),
            ConfigYaml.pod("reviews-1", "shop", "app: reviews, version: v1", "node-a", "reviews", "10.1.1.5"),
            ConfigYaml.pod("reviews-2", "shop", "app: reviews, version: v2", "node-a", "reviews", "10.1.1.6"),
            service("reviews", "app: reviews", "10.96.0.10"), service("reviews-v1", "version: v1", "10.96.0.11"),
            service("reviews-v2", "version: v2", "10.96.0.12"), service("empty", "app: none", "10.96.0.13"));

    /**
     * A GRPCRoute attached to {@code reviews}: method {@code List} of any service to v1, the rest of
     * {@code shop.Reviews} to v1, {@code shop.Reviews/List} to v2, {@code shop.*}{@code /Get*} with
     * {@code x-a: 1} to v2.
     */
    public static final String GRPC_ROUTE = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: GRPCRoute
            metadata: {name: grpc, namespace: shop}
            spec:
              parentRefs: [{kind: Service, group: "", name: reviews}]
              rules:
              - matches: [{method: {method: List}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{method: {service: shop.Reviews}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{method: {service: shop.Reviews, method: List}}]
                backendRefs: [{name: reviews-v2, port: 9080}]
              - matches: [{method: {type: RegularExpression, service: "shop\\\\..*", method: "Get.*"}, headers: [{name: x-a, value: "1"}]}]
                backendRefs: [{name: reviews-v2, port: 9080}]
            """;

    private RouteFixtures() {}

    public static String service(String name, String selector, String ip) {
        return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: shop}\n"
                + "spec: {selector: {" + selector + "}, clusterIP: " + ip + ", ports: [{port: 9080}]}\n";
    }

    /** An HTTPRoute in {@code shop} attached to {@code reviews}; {@code rules} is YAML under {@code spec}. */
    public static String httpRoute(String name, String rules) {
        return ConfigYaml.httpRouteHead(name, "shop", "reviews", 9080) + rules;
    }

    public static MeshModel model(String... routes) {
        List<String> docs = new ArrayList<>(List.of(SERVICES));
        docs.addAll(List.of(routes));
        LoadResult r = ConfigSet.load(Map.of("routes.yaml", ConfigYaml.documents(docs.toArray(String[]::new))));
        if (!r.valid()) {
            throw new AssertionError(r.errors().toString());
        }
        return r.model();
    }

    /** {@code "GET /path?query"} with {@code "name: value"} headers, to reviews.shop. */
    static HttpRequest request(String line, String... headers) {
        String[] parts = line.split(" ", 2);
        String target = parts[1];
        int q = target.indexOf('?');
        List<Header> hs = new ArrayList<>();
        for (String h : headers) {
            int colon = h.indexOf(':');
            hs.add(new Header(h.substring(0, colon).trim(), h.substring(colon + 1).trim()));
        }
        return new HttpRequest(parts[0], q < 0 ? target : target.substring(0, q), q < 0 ? "" : target.substring(q + 1),
                "reviews.shop.svc.cluster.local:9080", hs);
    }
}
