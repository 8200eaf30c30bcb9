package dev.wisp.node.identity;

import java.security.cert.X509Certificate;
import java.util.List;

/**
 * Where the agent gets certificates for the identities it acts for (workloads on its node and the
 * node itself) and the trust anchors it verifies peers against. Implementations renew at
 * half-life and keep serving the still-valid certificate when renewal fails.
 */
public interface IdentityProvider {
    /** The trust domain all identities of this mesh share, e.g. {@code cluster.local}. */
    String trustDomain();

    /** The current SVID for {@code spiffeId}, issued on first use. */
    Svid svid(String spiffeId) throws IdentityException;

    /** The roots peers' chains must lead to. */
    List<X509Certificate> trustAnchors();

    /** The SPIFFE ID of a workload with this namespace and service account. */
    static String workloadId(String trustDomain, String namespace, String serviceAccount) {
        return "spiffe://" + trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount;
    }

    /**
     * The node agent's own identity on {@code node}: what its HBONE server presents when a client
     * dials the node's address (the client checks it against the destination workload's node).
     */
    static String nodeId(String trustDomain, String node) {
        return "spiffe://" + trustDomain + "/ns/wisp-system/sa/wisp-node/node/" + node;
    }
}
