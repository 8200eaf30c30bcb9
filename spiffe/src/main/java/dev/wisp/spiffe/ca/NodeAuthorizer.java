package dev.wisp.spiffe.ca;

/**
 * Answers "does node N run a workload with service account ns/sa?" for the CA's node
 * authorization: a node agent may obtain certificates only for the service accounts of pods on its
 * own node, so a compromised node cannot impersonate workloads it does not host. The control plane
 * feeds this from its model of pods; tests use {@link InMemoryNodeAuthorizer}.
 *
 * <p>Implementations must be thread-safe: the CA calls them from signing threads.
 */
@FunctionalInterface
public interface NodeAuthorizer {
    boolean hostsServiceAccount(String node, String namespace, String serviceAccount);

    /**
     * Authorizes every request. Only for operator tools that act with the CA's own key
     * ({@code wisp ca issue}), never for requests arriving from the network.
     */
    static NodeAuthorizer unrestricted() {
        return (node, namespace, serviceAccount) -> true;
    }
}
