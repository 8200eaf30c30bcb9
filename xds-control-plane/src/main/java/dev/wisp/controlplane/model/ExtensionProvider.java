package dev.wisp.controlplane.model;

import static java.util.Objects.requireNonNull;

import java.time.Duration;

/**
 * One entry of MeshConfig's {@code spec.extensionProviders}: an external authorizer a CUSTOM
 * AuthorizationPolicy names, reached over Envoy's ext_authz v3 gRPC API ({@code envoyExtAuthzGrpc},
 * Istio's schema; the HTTP flavour is refused).
 *
 * @param name what a policy's {@code spec.provider.name} names
 * @param service a mesh Service's host name ({@code name.namespace.svc.<clusterDomain>}) or an IP
 *            address (an authorizer outside the mesh)
 * @param port the authorizer's port (the Service's port, or the address's)
 * @param timeout how long the waypoint waits for an answer ({@code timeout}, Istio's default 600s)
 * @param failOpen {@code failOpen}: a failed or late check lets the request on instead of refusing it
 * @param statusOnError {@code statusOnError}: the status of a refusal the authorizer did not decide
 *            (timeout, unreachable, error), 403 by default
 */
public record ExtensionProvider(String name, String service, int port, Duration timeout, boolean failOpen,
        int statusOnError) {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(600);

    public ExtensionProvider {
        requireNonNull(name, "name");
        requireNonNull(service, "service");
        requireNonNull(timeout, "timeout");
    }
}
