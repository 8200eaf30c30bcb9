package dev.wisp.controlplane.model;

import java.net.URI;
import java.util.List;
import java.util.Map;

/**
 * Istio {@code security.istio.io/v1 RequestAuthentication}: which JWT issuers a selected workload
 * accepts and where their keys are. Validated and held in the model so both configuration sources
 * refuse the same mistakes; it is not enforced yet (agents carry L4 only, and the waypoint does not
 * check JWTs), which README and ARCHITECTURE.md say.
 *
 * @param selector {@code spec.selector.matchLabels}; null when the policy has no selector
 * @param targetRefs {@code spec.targetRef(s)}: the waypoint Gateway or Service it attaches to
 */
public record RequestAuthentication(ObjectRef ref, Map<String, String> selector, List<JwtRule> jwtRules,
        List<TargetRef> targetRefs)
        implements
            MeshObject {
    public static final String KIND = "RequestAuthentication";

    /**
     * {@code spec.jwtRules[]}.
     *
     * @param jwksUri null when the keys are inline ({@code jwks}) or found by the issuer's discovery
     * @param fromHeaders header name (lower-case) → value prefix ({@code ""} for none); empty: the
     *            {@code Authorization: Bearer} default
     */
    public record JwtRule(String issuer, List<String> audiences, URI jwksUri, String jwks,
            Map<String, String> fromHeaders, List<String> fromParams, boolean forwardOriginalToken) {}
}
