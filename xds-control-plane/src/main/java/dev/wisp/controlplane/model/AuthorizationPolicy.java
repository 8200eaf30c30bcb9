package dev.wisp.controlplane.model;

import java.util.List;
import java.util.Map;

/**
 * Istio {@code security.istio.io/v1 AuthorizationPolicy}, validated but not yet reduced to L4:
 * fields only a waypoint could enforce are kept by name so that translation can decide what to do
 * with the rule holding them and report them.
 *
 * @param selector {@code spec.selector.matchLabels}; null when the policy has no selector
 * @param rules {@code spec.rules}; empty when absent
 * @param dryRun annotation {@code istio.io/dry-run: "true"}
 */
public record AuthorizationPolicy(ObjectRef ref, Map<String, String> selector, Action action, List<Rule> rules,
        boolean dryRun) implements MeshObject {
    public static final String KIND = "AuthorizationPolicy";

    public enum Action {
        ALLOW, DENY, AUDIT, CUSTOM
    }

    /** One entry of {@code spec.rules}: every clause present must match. */
    public record Rule(List<Source> from, List<Operation> to, List<Condition> when) {}

    /**
     * {@code rules[].from[].source}; {@code l7Fields} names fields present that need a waypoint
     * (e.g. {@code requestPrincipals}).
     */
    public record Source(List<String> principals, List<String> notPrincipals, List<String> namespaces,
            List<String> notNamespaces, List<Cidr> ipBlocks, List<Cidr> notIpBlocks, List<String> l7Fields) {}

    /** {@code rules[].to[].operation}: ports are L4; hosts, methods and paths need a waypoint. */
    public record Operation(List<Integer> ports, List<Integer> notPorts, List<String> l7Fields) {}

    /** {@code rules[].when[]}: {@code l4} is false for keys only a waypoint can evaluate. */
    public record Condition(String key, List<String> values, List<String> notValues, boolean l4) {}

    /** Keys of {@code when} that a node agent evaluates. */
    public static final List<String> L4_CONDITION_KEYS = List.of("source.ip", "source.namespace", "source.principal",
            "destination.ip", "destination.port");

}
