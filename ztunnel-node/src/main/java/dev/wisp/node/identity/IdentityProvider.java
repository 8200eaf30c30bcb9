package dev.wisp.node.identity;

import dev.wisp.spiffe.MeshIdentities;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.spiffe.SpiffeId;
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

    /** The current SVID for {@code id}, obtained on first use (blocking at most the fetch timeout). */
    X509Svid svid(SpiffeId id) throws IdentityException;

    /** Starts obtaining {@code id}'s SVID in the background, so that first use does not wait. */
    void prefetch(SpiffeId id);

    /** The roots peers' chains must lead to. */
    TrustBundle bundle();

    /**
     * The SPIFFE ID of {@code w}: its trust domain, namespace and service account. The state index
     * admits an HBONE workload only when these form a valid ID, so this does not throw for one.
     */
    static SpiffeId workloadId(Workload w) {
        return SpiffeId.forServiceAccount(w.getTrustDomain(), w.getNamespace(), w.getServiceAccount());
    }

    /**
     * The node agent's own identity on {@code node} ({@link MeshIdentities#nodeAgent}): what its HBONE
     * server presents when a client dials the node's address, and what clients accept for workloads on
     * that node.
     */
    static SpiffeId nodeId(String trustDomain, String node) {
        return MeshIdentities.nodeAgent(trustDomain, node);
    }
}
