package dev.wisp.controlplane.xds;

/**
 * Turns the bearer credential of an agent's call into the node it may speak for. Local mode:
 * per-node tokens issued at bootstrap ({@link LocalNodeCredentials}); on Kubernetes a
 * service-account token checked with a TokenReview, whose pod's {@code spec.nodeName} names the
 * node.
 */
public interface NodeAuthenticator {
    /**
     * The node {@code credential} authenticates, or null when it authenticates none. Must not
     * throw for hostile input.
     */
    String authenticate(String credential);
}
