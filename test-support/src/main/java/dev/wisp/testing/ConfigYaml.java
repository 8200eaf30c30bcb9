package dev.wisp.testing;

import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * The Kubernetes/Istio objects tests write for the control plane, as the YAML a user would save:
 * one method per kind, so a test states only what differs (names, labels, addresses) and the
 * shape of each kind is written once. Flow style keeps each object a few lines.
 */
public final class ConfigYaml {
    private ConfigYaml() {}

    /** A MeshConfig (named {@code mesh}) with only its trust domain set. */
    public static String meshConfig(String trustDomain) {
        return """
                apiVersion: wisp.dev/v1alpha1
                kind: MeshConfig
                metadata: {name: mesh}
                spec: {trustDomain: %s}
                """.formatted(trustDomain);
    }

    /** A Node with one InternalIP. */
    public static String node(String name, String address) {
        return """
                apiVersion: v1
                kind: Node
                metadata: {name: %s}
                status: {addresses: [{type: InternalIP, address: %s}]}
                """.formatted(name, address);
    }

    /** A Pod; {@code labels} is the inside of a flow map ({@code "app: web, version: v2"}). */
    public static String pod(String name, String namespace, String labels, String node, String serviceAccount,
            String ip) {
        return """
                apiVersion: v1
                kind: Pod
                metadata: {name: %s, namespace: %s, labels: {%s}}
                spec: {nodeName: %s, serviceAccountName: %s}
                status: {podIP: %s}
                """.formatted(name, namespace, labels, node, serviceAccount, ip);
    }

    /**
     * The first six lines of an AuthorizationPolicy, up to and including {@code spec:}; the caller
     * appends the spec's lines indented by two spaces. Block style, so a decoder's error names the
     * same line numbers whatever the names.
     */
    public static String policyHead(String name, String namespace) {
        return """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata:
                  name: %s
                  namespace: %s
                spec:
                """.formatted(name, namespace);
    }

    /**
     * The head of an HTTPRoute attached to port {@code port} of the Service {@code service} in its
     * own namespace, up to its {@code parentRefs}; the caller appends the rest of the spec
     * ({@code rules:} …) indented by two spaces.
     */
    public static String httpRouteHead(String name, String namespace, String service, int port) {
        return """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: %s, namespace: %s}
                spec:
                  parentRefs: [{kind: Service, group: "", name: %s, port: %d}]
                """.formatted(name, namespace, service, port);
    }

    /**
     * A PeerAuthentication for the pods labelled {@code app}: {@code mode} for the workload and, in
     * {@code portModes}, a mode per port.
     */
    public static String peerAuthentication(String name, String namespace, String app, String mode,
            Map<Integer, String> portModes) {
        String ports = new TreeMap<>(portModes).entrySet().stream().map(e -> "\"" + e.getKey() + "\": {mode: "
                + e.getValue() + "}").collect(Collectors.joining(", ", "  portLevelMtls: {", "}\n"));
        return """
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: %s, namespace: %s}
                spec:
                  selector: {matchLabels: {app: %s}}
                  mtls: {mode: %s}
                """.formatted(name, namespace, app, mode) + (portModes.isEmpty() ? "" : ports);
    }

    /**
     * A waypoint {@code Gateway} (class {@code istio-waypoint}, the mesh HBONE listener) labelled
     * {@code istio.io/waypoint-for: waypointFor}.
     */
    public static String waypointGateway(String name, String namespace, String waypointFor) {
        return """
                apiVersion: gateway.networking.k8s.io/v1
                kind: Gateway
                metadata: {name: %s, namespace: %s, labels: {istio.io/waypoint-for: %s}}
                spec:
                  gatewayClassName: istio-waypoint
                  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
                """.formatted(name, namespace, waypointFor);
    }

    /**
     * A Wisp {@code HTTPFault} (what an HTTPRoute's {@code ExtensionRef} filter names); {@code spec} is
     * the inside of its flow map ({@code "abort: {httpStatus: 503, percentage: 100}"}).
     */
    public static String httpFault(String name, String namespace, String spec) {
        return """
                apiVersion: wisp.dev/v1alpha1
                kind: HTTPFault
                metadata: {name: %s, namespace: %s}
                spec: {%s}
                """.formatted(name, namespace, spec);
    }

    /** A Wisp {@code LocalRateLimit}: {@code tokens} a bucket, refilled every {@code fillInterval} ({@code 24h}). */
    public static String localRateLimit(String name, String namespace, int tokens, String fillInterval) {
        return """
                apiVersion: wisp.dev/v1alpha1
                kind: LocalRateLimit
                metadata: {name: %s, namespace: %s}
                spec: {tokens: %d, fillInterval: %s}
                """.formatted(name, namespace, tokens, fillInterval);
    }

    /** {@code objects} as one multi-document file. */
    public static String documents(String... objects) {
        return String.join("---\n", objects);
    }
}
