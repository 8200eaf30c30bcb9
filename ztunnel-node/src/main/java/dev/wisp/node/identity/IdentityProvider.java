package dev.wisp.node.identity;

import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;

/**
 * Where the agent gets certificates for the identities it acts for (workloads on its node and the
 * node agent itself) and the trust bundle it verifies peers against. {@link Identities} implements
 * it over the spiffe module's {@code CertificateManager}, which renews at half-life and keeps
 * serving the still-valid certificate when renewal fails.
 */
public interface IdentityProvider {
    /** The trust domain all identities of this mesh share, e.g. {@code cluster.local}. */
    String trustDomain();

    /** The current SVID for {@code spiffeId}, obtained on first use (blocking at most the fetch timeout). */
    X509Svid svid(String spiffeId) throws IdentityException;

    /** Starts obtaining {@code spiffeId}'s SVID in the background, so that first use does not wait. */
    void prefetch(String spiffeId);

    /** The roots peers' chains must lead to. */
    TrustBundle bundle();

    /** The SPIFFE ID of a workload with this namespace and service account. */
    static String workloadId(String trustDomain, String namespace, String serviceAccount) {
        return "spiffe://" + trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount;
    }

    /**
     * The node agent's own identity on {@code node}: what its HBONE server presents when a client
     * dials the node's address, and what clients accept for workloads on that node. One service
     * account per node ({@code wisp-system/wisp-node.<node>}) so that the CA's node authorization
     * gives it to that node's agent only.
     */
    static String nodeId(String trustDomain, String node) {
        return workloadId(trustDomain, "wisp-system", "wisp-node." + node);
    }
}
