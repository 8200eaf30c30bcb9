package dev.wisp.controlplane.model;

import java.util.Map;

/**
 * Istio {@code security.istio.io/v1 PeerAuthentication}.
 *
 * @param selector {@code spec.selector.matchLabels}; null when the policy has no selector
 * @param portLevel {@code spec.portLevelMtls}: workload port → mode (only with a selector)
 */
public record PeerAuthentication(ObjectRef ref, Map<String, String> selector, MtlsMode mode,
        Map<Integer, MtlsMode> portLevel) implements MeshObject {
    public static final String KIND = "PeerAuthentication";
}
