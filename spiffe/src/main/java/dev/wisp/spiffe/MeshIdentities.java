package dev.wisp.spiffe;

import static java.util.Objects.requireNonNull;

/**
 * The mesh's own identities, which the control plane issues and checks and the node agents present
 * and expect: both sides take them from here, so that what one issues is what the other accepts.
 * They live in the reserved namespace {@value #NAMESPACE}: the control plane as
 * {@value #CONTROL_PLANE_SA}, each node's agent as {@code wisp-node.<node>} (one account per node,
 * so that the CA's node authorization gives it to that node's agent only). Stateless.
 */
public final class MeshIdentities {
    /** The namespace reserved for the mesh's own identities. */
    public static final String NAMESPACE = "wisp-system";
    /** The control plane's service account. */
    public static final String CONTROL_PLANE_SA = "wisp-control-plane";

    private MeshIdentities() {}

    /** The control plane's SPIFFE ID in {@code trustDomain}. */
    public static SpiffeId controlPlane(String trustDomain) {
        return SpiffeId.forServiceAccount(trustDomain, NAMESPACE, CONTROL_PLANE_SA);
    }

    /** The service account of {@code node}'s agent, in {@link #NAMESPACE}. */
    public static String nodeAgentAccount(String node) {
        return "wisp-node." + requireNonNull(node, "node");
    }

    /** The SPIFFE ID of {@code node}'s agent in {@code trustDomain}. */
    public static SpiffeId nodeAgent(String trustDomain, String node) {
        return SpiffeId.forServiceAccount(trustDomain, NAMESPACE, nodeAgentAccount(node));
    }
}
