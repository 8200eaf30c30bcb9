package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.AuthorizationPolicy.Action;
import dev.wisp.controlplane.model.AuthorizationPolicy.Condition;
import dev.wisp.controlplane.model.AuthorizationPolicy.L7Operation;
import dev.wisp.controlplane.model.AuthorizationPolicy.L7Source;
import dev.wisp.controlplane.model.AuthorizationPolicy.Operation;
import dev.wisp.controlplane.model.AuthorizationPolicy.Rule;
import dev.wisp.controlplane.model.AuthorizationPolicy.Source;
import dev.wisp.controlplane.model.Cidr;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.TargetRef;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Decodes Istio's {@code security.istio.io/v1 AuthorizationPolicy} strictly (unknown fields, malformed
 * patterns, CIDRs, ports and condition keys are errors naming the field), with its waypoint attachment
 * {@code targetRef(s)}, which {@link RequestAuthenticationDecoder} shares.
 */
final class AuthorizationPolicyDecoder {
    static final String GATEWAY_GROUP = "gateway.networking.k8s.io";

    /** Condition keys Istio defines that only an L7 proxy can evaluate. */
    private static final List<String> L7_CONDITION_PREFIXES = List.of("request.", "remote.ip", "connection.sni",
            "experimental.");

    private AuthorizationPolicyDecoder() {}

    /**
     * {@code spec.targetRef} or {@code spec.targetRefs}: a waypoint {@code Gateway}
     * ({@code group: gateway.networking.k8s.io}) or a {@code Service} (group {@code ""}) of the policy's
     * namespace; not both fields, and not with {@code spec.selector}.
     */
    static List<TargetRef> targetRefs(Fields f, YNode spec) {
        List<TargetRef> out = new ArrayList<>();
        YNode single = f.child(spec, "targetRef");
        if (single != null) {
            if (f.child(spec, "targetRefs") != null) {
                f.error(single, "spec.targetRef", "give targetRef or targetRefs, not both");
            }
            targetRef(f, single, "spec.targetRef", out);
        }
        f.each(spec, "targetRefs", "spec.targetRefs", (t, path) -> targetRef(f, t, path, out));
        if (!out.isEmpty() && f.child(spec, "selector") != null) {
            f.error(f.child(spec, "selector"), "spec.selector", "a policy attached with targetRefs has no selector");
        }
        return List.copyOf(out);
    }

    private static void targetRef(Fields f, YNode t, String path, List<TargetRef> out) {
        f.allowOnly(t, path, "group", "kind", "name", "namespace");
        String group = f.string(t, "group", path + ".group");
        String kind = f.string(t, "kind", path + ".kind");
        String name = f.string(t, "name", path + ".name");
        if (f.child(t, "namespace") != null) {
            f.error(f.child(t, "namespace"), path + ".namespace", "a policy attaches only in its own namespace");
        }
        if (name == null || !ConfigDecoder.DNS_LABEL.matcher(name).matches()) {
            f.error(t, path + ".name", name == null ? "required" : "'" + name + "' is not a DNS label");
            return;
        }
        if ("Gateway".equals(kind) && GATEWAY_GROUP.equals(group)) {
            out.add(new TargetRef(TargetRef.Kind.GATEWAY, name));
        } else if ("Service".equals(kind) && (group == null || group.isEmpty() || "core".equals(group))) {
            out.add(new TargetRef(TargetRef.Kind.SERVICE, name));
        } else {
            f.error(t, path, "attaches to kind " + kind + " of group '" + (group == null ? "" : group)
                    + "'; Wisp's waypoint takes kind Gateway (group " + GATEWAY_GROUP + ") or Service (group \"\")");
        }
    }

    static AuthorizationPolicy authorizationPolicy(Fields f, YNode doc, ObjectRef ref) {
        f.allowOnly(doc, "", "apiVersion", "kind", "metadata", "spec");
        YNode spec = f.child(doc, "spec");
        f.allowOnly(spec, "spec", "selector", "targetRef", "targetRefs", "action", "provider", "rules");
        List<TargetRef> targets = targetRefs(f, spec);
        Map<String, String> selector = ConfigDecoder.selector(f, spec);
        Action action = f.enumValue(spec, "action", "spec.action", Action.class, Action.ALLOW);
        String provider = null;
        YNode providerNode = f.child(spec, "provider");
        if (action == Action.CUSTOM && providerNode == null) {
            f.error(f.child(spec, "action"), "spec.provider", "required when action is CUSTOM");
        } else if (providerNode != null) {
            f.allowOnly(providerNode, "spec.provider", "name");
            provider = f.string(providerNode, "name", "spec.provider.name");
            if (action != Action.CUSTOM) {
                f.error(providerNode, "spec.provider", "only a CUSTOM policy names a provider");
            }
        }
        List<Rule> rules = new ArrayList<>();
        List<YNode> ruleNodes = f.list(spec, "rules", "spec.rules");
        for (int i = 0; i < ruleNodes.size(); i++) {
            rules.add(rule(f, ruleNodes.get(i), "spec.rules[" + i + "]"));
        }
        String dryRun = ConfigDecoder.annotations(f, doc).get("istio.io/dry-run");
        return new AuthorizationPolicy(ref, selector, action, List.copyOf(rules), "true".equalsIgnoreCase(dryRun),
                provider, targets);
    }

    private static Rule rule(Fields f, YNode rule, String path) {
        if (rule.isNull()) {
            return new Rule(List.of(), List.of(), List.of());
        }
        if (!rule.isMap()) {
            f.error(rule, path, "expected a mapping, found " + rule.describe());
            return new Rule(List.of(), List.of(), List.of());
        }
        f.allowOnly(rule, path, "from", "to", "when");
        List<Source> from = wrappedList(f, rule, path, "from", "source", AuthorizationPolicyDecoder::source);
        List<Operation> to = wrappedList(f, rule, path, "to", "operation", AuthorizationPolicyDecoder::operation);
        List<Condition> when = new ArrayList<>();
        List<YNode> whenNodes = f.list(rule, "when", path + ".when");
        for (int i = 0; i < whenNodes.size(); i++) {
            Condition c = condition(f, whenNodes.get(i), path + ".when[" + i + "]");
            if (c != null) {
                when.add(c);
            }
        }
        return new Rule(from, to, List.copyOf(when));
    }

    /** Decodes one part of a policy at {@code path}; reports what is wrong through {@code f}. */
    private interface PartDecoder<T> {
        T decode(Fields f, YNode node, String path);
    }

    /**
     * Istio's {@code key: [{wrapper: …}, …]} lists ({@code from[].source}, {@code to[].operation}):
     * each item holds only {@code wrapper}, whose value {@code decoder} reads.
     */
    private static <T> List<T> wrappedList(Fields f, YNode parent, String path, String key, String wrapper,
            PartDecoder<T> decoder) {
        List<T> out = new ArrayList<>();
        List<YNode> items = f.list(parent, key, path + "." + key);
        for (int i = 0; i < items.size(); i++) {
            String p = path + "." + key + "[" + i + "]";
            f.allowOnly(items.get(i), p, wrapper);
            out.add(decoder.decode(f, f.child(items.get(i), wrapper), p + "." + wrapper));
        }
        return List.copyOf(out);
    }

    private static Source source(Fields f, YNode src, String path) {
        f.allowOnly(src, path, "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals",
                "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks",
                "serviceAccounts", "notServiceAccounts");
        List<String> principals = new ArrayList<>(patterns(f, src, "principals", path));
        List<String> notPrincipals = new ArrayList<>(patterns(f, src, "notPrincipals", path));
        // serviceAccounts "ns/sa" are principals of any trust domain: "*/ns/<ns>/sa/<sa>".
        principals.addAll(serviceAccounts(f, src, "serviceAccounts", path));
        notPrincipals.addAll(serviceAccounts(f, src, "notServiceAccounts", path));
        L7Source l7 = new L7Source(patterns(f, src, "requestPrincipals", path),
                patterns(f, src, "notRequestPrincipals", path), cidrs(f, src, "remoteIpBlocks", path),
                cidrs(f, src, "notRemoteIpBlocks", path));
        return new Source(List.copyOf(principals), List.copyOf(notPrincipals), patterns(f, src, "namespaces", path),
                patterns(f, src, "notNamespaces", path), cidrs(f, src, "ipBlocks", path),
                cidrs(f, src, "notIpBlocks", path), present(f, src, path, "requestPrincipals",
                        "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks"),
                l7);
    }

    private static List<String> serviceAccounts(Fields f, YNode src, String key, String path) {
        List<String> out = new ArrayList<>();
        for (String s : f.strings(src, key, path + "." + key)) {
            String[] parts = s.split("/", -1);
            if (parts.length != 2 || !ConfigDecoder.DNS_LABEL.matcher(parts[0]).matches() || parts[1].isEmpty()) {
                f.error(f.child(src, key), path + "." + key, "'" + s + "' is not namespace/serviceaccount");
            } else {
                out.add("*/ns/" + parts[0] + "/sa/" + parts[1]);
            }
        }
        return out;
    }

    /** Istio string matches: exact, {@code prefix*}, {@code *suffix} or {@code *}. */
    private static List<String> patterns(Fields f, YNode parent, String key, String path) {
        List<String> values = f.strings(parent, key, path + "." + key);
        for (String v : values) {
            if (!isPattern(v)) {
                f.error(f.child(parent, key), path + "." + key, "'" + v
                        + "' is not exact, prefix* , *suffix or *: '*' may only lead or trail");
            }
        }
        return List.copyOf(values);
    }

    private static boolean isPattern(String v) {
        int star = v.indexOf('*');
        return !v.isEmpty() && (star < 0 || v.equals("*") || (star == 0 && v.indexOf('*', 1) < 0)
                || star == v.length() - 1);
    }

    private static boolean isTemplate(String v) {
        String[] segments = v.split("/", -1);
        for (int i = 1; i < segments.length; i++) {
            String s = segments[i];
            if (!(s.equals("{*}") || (s.equals("{**}") && i == segments.length - 1)
                    || !(s.contains("{") || s.contains("}") || s.contains("*")))) {
                return false;
            }
        }
        return v.startsWith("/");
    }

    private static List<Cidr> cidrs(Fields f, YNode parent, String key, String path) {
        List<Cidr> out = new ArrayList<>();
        List<String> values = f.strings(parent, key, path + "." + key);
        for (int i = 0; i < values.size(); i++) {
            try {
                out.add(Cidr.parse(values.get(i)));
            } catch (IllegalArgumentException e) {
                f.error(f.child(parent, key), path + "." + key + "[" + i + "]", e.getMessage());
            }
        }
        return List.copyOf(out);
    }

    private static List<Integer> ports(Fields f, YNode parent, String key, String path) {
        List<Integer> out = new ArrayList<>();
        List<String> values = f.strings(parent, key, path + "." + key);
        for (int i = 0; i < values.size(); i++) {
            int p = f.port(f.child(parent, key), values.get(i), path + "." + key + "[" + i + "]");
            if (p > 0) {
                out.add(p);
            }
        }
        return List.copyOf(out);
    }

    private static Operation operation(Fields f, YNode op, String path) {
        f.allowOnly(op, path, "hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths",
                "notPaths");
        L7Operation l7 = new L7Operation(patterns(f, op, "hosts", path), patterns(f, op, "notHosts", path),
                patterns(f, op, "methods", path), patterns(f, op, "notMethods", path), paths(f, op, "paths", path),
                paths(f, op, "notPaths", path));
        return new Operation(ports(f, op, "ports", path), ports(f, op, "notPorts", path),
                present(f, op, path, "hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"), l7);
    }

    /** The paths of {@code keys} present under {@code parent} (the L7 fields a node agent reports). */
    private static List<String> present(Fields f, YNode parent, String path, String... keys) {
        List<String> out = new ArrayList<>();
        for (String k : keys) {
            if (f.child(parent, k) != null) {
                out.add(path + "." + k);
            }
        }
        return List.copyOf(out);
    }

    /**
     * Operation paths: Istio string patterns, or templates whose segments are literal, {@code {*}} (one
     * segment) or, last only, {@code {**}} (the rest).
     */
    private static List<String> paths(Fields f, YNode parent, String key, String path) {
        List<String> values = f.strings(parent, key, path + "." + key);
        for (String v : values) {
            boolean ok = v.contains("{") ? isTemplate(v) : isPattern(v);
            if (!ok) {
                f.error(f.child(parent, key), path + "." + key, "'" + v + "' is neither exact, prefix*, *suffix or *"
                        + " nor a template whose segments are literal, {*}, or {**} as the last one");
            }
        }
        return List.copyOf(values);
    }

    private static Condition condition(Fields f, YNode c, String path) {
        f.allowOnly(c, path, "key", "values", "notValues");
        String key = f.string(c, "key", path + ".key");
        if (key == null) {
            f.error(c, path + ".key", "required");
            return null;
        }
        List<String> values = f.strings(c, "values", path + ".values");
        List<String> notValues = f.strings(c, "notValues", path + ".notValues");
        if (values.isEmpty() && notValues.isEmpty()) {
            f.error(c, path, "needs values or notValues");
        }
        boolean l4 = AuthorizationPolicy.L4_CONDITION_KEYS.contains(key);
        if (!l4 && L7_CONDITION_PREFIXES.stream().noneMatch(key::startsWith)) {
            f.error(f.child(c, "key"), path + ".key", "'" + key + "' is not a supported condition key; L4 keys are "
                    + String.join(", ", AuthorizationPolicy.L4_CONDITION_KEYS));
            return null;
        }
        for (String v : concat(values, notValues)) {
            switch (key) {
                case "source.ip", "destination.ip" -> {
                    try {
                        Cidr.parse(v);
                    } catch (IllegalArgumentException e) {
                        f.error(c, path + ".values", e.getMessage());
                    }
                }
                case "destination.port" -> f.port(c, v, path + ".values");
                default -> {
                    // any string is a valid value for the other keys
                }
            }
        }
        return new Condition(key, values, notValues, l4);
    }

    private static List<String> concat(List<String> a, List<String> b) {
        List<String> out = new ArrayList<>(a);
        out.addAll(b);
        return out;
    }
}
