package dev.wisp.controlplane.model;

import java.util.List;
import java.util.Map;

/**
 * Istio {@code security.istio.io/v1 AuthorizationPolicy}, validated but not yet reduced: node agents
 * get its L4 part ({@code PolicyReducer}, which reports the L7 fields by name), a waypoint the whole
 * of it when it is attached with {@code targetRefs} ({@code envoy.AuthzTranslator}).
 *
 * @param selector {@code spec.selector.matchLabels}; null when the policy has no selector
 * @param rules {@code spec.rules}; empty when absent
 * @param dryRun annotation {@code istio.io/dry-run: "true"}
 * @param provider {@code spec.provider.name} of a CUSTOM policy, else null
 * @param targetRefs {@code spec.targetRef(s)}; empty for a selector or namespace policy
 */
public record AuthorizationPolicy(ObjectRef ref, Map<String, String> selector, Action action, List<Rule> rules,
        boolean dryRun, String provider, List<TargetRef> targetRefs) implements MeshObject {
    public static final String KIND = "AuthorizationPolicy";

    public enum Action {
        ALLOW, DENY, AUDIT, CUSTOM
    }

    /** One entry of {@code spec.rules}: every clause present must match. */
    public record Rule(List<Source> from, List<Operation> to, List<Condition> when) {}

    /**
     * {@code rules[].from[].source}; {@code l7Fields} names fields present that need a waypoint
     * (e.g. {@code requestPrincipals}), whose values {@code l7} holds.
     */
    public record Source(List<String> principals, List<String> notPrincipals, List<String> namespaces,
            List<String> notNamespaces, List<Cidr> ipBlocks, List<Cidr> notIpBlocks, List<String> l7Fields,
            L7Source l7) {}

    /** The L7 part of a source: request principals ({@code <iss>/<sub>} patterns) and remote IP blocks. */
    public record L7Source(List<String> requestPrincipals, List<String> notRequestPrincipals,
            List<Cidr> remoteIpBlocks, List<Cidr> notRemoteIpBlocks) {}

    /**
     * {@code rules[].to[].operation}: ports are L4; hosts, methods and paths need a waypoint
     * ({@code l7Fields} names those present, {@code l7} holds them).
     */
    public record Operation(List<Integer> ports, List<Integer> notPorts, List<String> l7Fields, L7Operation l7) {}

    /** The L7 part of an operation: Istio string patterns; paths may also be {@code {*}}/{@code {**}} templates. */
    public record L7Operation(List<String> hosts, List<String> notHosts, List<String> methods,
            List<String> notMethods, List<String> paths, List<String> notPaths) {}

    /** {@code rules[].when[]}: {@code l4} is false for keys only a waypoint can evaluate. */
    public record Condition(String key, List<String> values, List<String> notValues, boolean l4) {}

    /** Keys of {@code when} that a node agent evaluates. */
    public static final List<String> L4_CONDITION_KEYS = List.of("source.ip", "source.namespace", "source.principal",
            "destination.ip", "destination.port");

}
