package dev.wisp.controlplane.translate;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.Action;
import dev.wisp.api.workload.v1.Address;
import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Group;
import dev.wisp.api.workload.v1.Match;
import dev.wisp.api.workload.v1.Rules;
import dev.wisp.api.workload.v1.Scope;
import dev.wisp.api.workload.v1.StringMatch;
import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.AuthorizationPolicy.Condition;
import dev.wisp.controlplane.model.AuthorizationPolicy.Operation;
import dev.wisp.controlplane.model.AuthorizationPolicy.Rule;
import dev.wisp.controlplane.model.AuthorizationPolicy.Source;
import dev.wisp.controlplane.model.Cidr;
import dev.wisp.controlplane.model.MeshConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Reduces an Istio AuthorizationPolicy to what a node agent enforces at L4 (pure). Fields only a
 * waypoint can evaluate are handled as Istio's ztunnel does: an ALLOW rule holding them is dropped
 * (it would allow more than written otherwise), a DENY rule keeps its L4 part (it denies more than
 * written); either way a warning for the policy's status says so.
 */
public final class PolicyReducer {
    private PolicyReducer() {}

    /** The reduction: the resource, or null when nothing is enforced at L4, and the warnings. */
    public record Reduced(Authorization authorization, List<String> warnings) {}

    public static Reduced reduce(AuthorizationPolicy policy, MeshConfig mesh) {
        List<String> warnings = new ArrayList<>();
        if (policy.action() == AuthorizationPolicy.Action.AUDIT) {
            warnings.add("spec.action: AUDIT is not enforced by node agents; this policy has no effect");
            return new Reduced(null, warnings);
        }
        if (policy.action() == AuthorizationPolicy.Action.CUSTOM) {
            warnings.add("spec.action: CUSTOM needs an external authorizer at a waypoint; this policy has no effect");
            return new Reduced(null, warnings);
        }
        boolean allow = policy.action() == AuthorizationPolicy.Action.ALLOW;
        Authorization.Builder a = Authorization.newBuilder()
                .setName(policy.ref().name())
                .setNamespace(policy.ref().namespace())
                .setScope(scope(policy, mesh))
                .setAction(allow ? Action.ALLOW : Action.DENY)
                .setDryRun(policy.dryRun());
        for (int i = 0; i < policy.rules().size(); i++) {
            Rule rule = policy.rules().get(i);
            List<String> l7 = l7Fields(rule);
            if (!l7.isEmpty()) {
                if (allow) {
                    warnings.add("spec.rules[" + i + "]: " + String.join(", ", l7)
                            + " need a waypoint (L7); node agents drop this ALLOW rule, so it allows nothing");
                    continue;
                }
                warnings.add("spec.rules[" + i + "]: " + String.join(", ", l7)
                        + " need a waypoint (L7); node agents enforce only the rule's L4 part, so it denies more");
            }
            a.addGroups(group(rule));
        }
        return new Reduced(a.build(), warnings);
    }

    /**
     * The warning of a CUSTOM policy naming a provider MeshConfig does not declare (the waypoint then
     * denies every request the policy applies to, as Istio does); empty otherwise.
     */
    public static Optional<String> unknownProvider(AuthorizationPolicy policy, MeshConfig mesh) {
        if (policy.action() != AuthorizationPolicy.Action.CUSTOM || mesh.extensionProvider(policy.provider())
                .isPresent()) {
            return Optional.empty();
        }
        return Optional.of("spec.provider.name: '" + policy.provider() + "' is not among MeshConfig's "
                + "spec.extensionProviders " + mesh.extensionProviders().stream().map(p -> p.name()).toList()
                + "; the waypoint denies every request this policy applies to (fail closed)");
    }

    static Scope scope(AuthorizationPolicy policy, MeshConfig mesh) {
        if (policy.selector() != null) {
            return Scope.WORKLOAD_SELECTOR;
        }
        return policy.ref().namespace().equals(mesh.rootNamespace()) ? Scope.GLOBAL : Scope.NAMESPACE;
    }

    private static List<String> l7Fields(Rule rule) {
        List<String> out = new ArrayList<>();
        rule.from().forEach(s -> out.addAll(s.l7Fields()));
        rule.to().forEach(o -> out.addAll(o.l7Fields()));
        for (Condition c : rule.when()) {
            if (!c.l4()) {
                out.add("when key " + c.key());
            }
        }
        return out;
    }

    private static Group group(Rule rule) {
        Group.Builder g = Group.newBuilder();
        if (!rule.from().isEmpty()) {
            Rules.Builder r = Rules.newBuilder();
            rule.from().forEach(s -> r.addMatches(source(s)));
            g.addRules(r);
        }
        if (!rule.to().isEmpty()) {
            Rules.Builder r = Rules.newBuilder();
            rule.to().forEach(o -> r.addMatches(operation(o)));
            g.addRules(r);
        }
        for (Condition c : rule.when()) {
            if (c.l4()) {
                g.addRules(Rules.newBuilder().addMatches(condition(c)));
            }
        }
        return g.build();
    }

    private static Match source(Source s) {
        Match.Builder m = Match.newBuilder();
        s.principals().forEach(p -> m.addPrincipals(string(stripSpiffe(p))));
        s.notPrincipals().forEach(p -> m.addNotPrincipals(string(stripSpiffe(p))));
        s.namespaces().forEach(n -> m.addNamespaces(string(n)));
        s.notNamespaces().forEach(n -> m.addNotNamespaces(string(n)));
        s.ipBlocks().forEach(c -> m.addSourceIps(address(c)));
        s.notIpBlocks().forEach(c -> m.addNotSourceIps(address(c)));
        return m.build();
    }

    private static Match operation(Operation o) {
        return Match.newBuilder().addAllDestinationPorts(o.ports()).addAllNotDestinationPorts(o.notPorts()).build();
    }

    private static Match condition(Condition c) {
        Match.Builder m = Match.newBuilder();
        c.values().forEach(v -> conditionValue(m, c.key(), v, false));
        c.notValues().forEach(v -> conditionValue(m, c.key(), v, true));
        return m.build();
    }

    /** One {@code when} value as the Match field of its key; {@code negate} for notValues. */
    private static void conditionValue(Match.Builder m, String key, String v, boolean negate) {
        switch (key) {
            case "source.ip" -> {
                Address a = address(Cidr.parse(v));
                var unused = negate ? m.addNotSourceIps(a) : m.addSourceIps(a);
            }
            case "destination.ip" -> {
                Address a = address(Cidr.parse(v));
                var unused = negate ? m.addNotDestinationIps(a) : m.addDestinationIps(a);
            }
            case "destination.port" -> {
                int p = Integer.parseInt(v.trim());
                var unused = negate ? m.addNotDestinationPorts(p) : m.addDestinationPorts(p);
            }
            case "source.namespace" -> {
                var unused = negate ? m.addNotNamespaces(string(v)) : m.addNamespaces(string(v));
            }
            default -> {
                StringMatch s = string(stripSpiffe(v));
                var unused = negate ? m.addNotPrincipals(s) : m.addPrincipals(s);
            }
        }
    }

    private static String stripSpiffe(String p) {
        return p.startsWith("spiffe://") ? p.substring("spiffe://".length()) : p;
    }

    /** Istio's string match forms: {@code *}, {@code prefix*}, {@code *suffix}, exact. */
    static StringMatch string(String v) {
        if (v.equals("*")) {
            return StringMatch.newBuilder().setPresence(true).build();
        }
        if (v.endsWith("*")) {
            return StringMatch.newBuilder().setPrefix(v.substring(0, v.length() - 1)).build();
        }
        if (v.startsWith("*")) {
            return StringMatch.newBuilder().setSuffix(v.substring(1)).build();
        }
        return StringMatch.newBuilder().setExact(v).build();
    }

    private static Address address(Cidr c) {
        return Address.newBuilder().setAddress(ByteString.copyFrom(c.address().getAddress())).setLength(c.length())
                .build();
    }
}
