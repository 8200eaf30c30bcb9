package dev.wisp.spiffe.ca;

import static java.util.Objects.requireNonNull;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * A {@link NodeAuthorizer} over an in-memory table of pods: each pod registered on a node with a
 * service account authorizes that node for the account until the pod is removed. Thread-safe.
 */
public final class InMemoryNodeAuthorizer implements NodeAuthorizer {
    private record Key(String node, String namespace, String serviceAccount) {}

    /** Pod count per (node, namespace, service account); entries vanish at zero. */
    private final ConcurrentMap<Key, Integer> pods = new ConcurrentHashMap<>();

    /** Registers one pod running as {@code namespace/serviceAccount} on {@code node}. */
    public InMemoryNodeAuthorizer addPod(String node, String namespace, String serviceAccount) {
        pods.merge(key(node, namespace, serviceAccount), 1, Integer::sum);
        return this;
    }

    /** Removes one pod registered with {@link #addPod}. */
    public InMemoryNodeAuthorizer removePod(String node, String namespace, String serviceAccount) {
        pods.computeIfPresent(key(node, namespace, serviceAccount), (k, n) -> n == 1 ? null : n - 1);
        return this;
    }

    @Override
    public boolean hostsServiceAccount(String node, String namespace, String serviceAccount) {
        return pods.containsKey(key(node, namespace, serviceAccount));
    }

    private static Key key(String node, String namespace, String serviceAccount) {
        return new Key(requireNonNull(node, "node"), requireNonNull(namespace, "namespace"),
                requireNonNull(serviceAccount, "serviceAccount"));
    }
}
