package dev.wisp.controlplane.envoy;

import com.google.protobuf.Any;
import com.google.protobuf.UInt32Value;
import dev.wisp.controlplane.model.AuthorizationPolicy.Condition;
import dev.wisp.controlplane.model.AuthorizationPolicy.Operation;
import dev.wisp.controlplane.model.AuthorizationPolicy.Rule;
import dev.wisp.controlplane.model.AuthorizationPolicy.Source;
import dev.wisp.controlplane.model.Cidr;
import io.envoyproxy.envoy.config.core.v3.CidrRange;
import io.envoyproxy.envoy.config.core.v3.TypedExtensionConfig;
import io.envoyproxy.envoy.config.rbac.v3.Permission;
import io.envoyproxy.envoy.config.rbac.v3.Policy;
import io.envoyproxy.envoy.config.rbac.v3.Principal;
import io.envoyproxy.envoy.config.rbac.v3.SourcedMetadata;
import io.envoyproxy.envoy.config.route.v3.HeaderMatcher;
import io.envoyproxy.envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig;
import io.envoyproxy.envoy.type.matcher.v3.ListMatcher;
import io.envoyproxy.envoy.type.matcher.v3.MetadataMatcher;
import io.envoyproxy.envoy.type.matcher.v3.PathMatcher;
import io.envoyproxy.envoy.type.matcher.v3.RegexMatcher;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import io.envoyproxy.envoy.type.matcher.v3.ValueMatcher;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;

/**
 * One Istio AuthorizationPolicy rule as an Envoy RBAC {@link Policy} (pure), as a waypoint evaluates
 * it: the rule's {@code to} operations (any of them) and its request conditions become one permission,
 * its {@code from} sources (any of them) and its identity conditions one principal; both must match.
 * Istio string patterns become {@link StringMatcher}s (exact, {@code prefix*}, {@code *suffix},
 * {@code *} = present); hosts ignore case (an exact host also with a port); paths with {@code {*}}/{@code {**}} become Envoy's
 * {@code uri_template} with its {@code *}/{@code **} operators. Principals are SPIFFE IDs
 * ({@code spiffe://} added), namespaces a regular expression on them. Request principals and claims are
 * metadata of {@link #AUTHN_FILTER} ({@code request.auth.principal}, {@code request.auth.claims} + the
 * claim's path), which the waypoint's JWT check fills.
 */
final class RbacRules {
    /** The metadata namespace of a request's verified JWT, as Istio names it. */
    static final String AUTHN_FILTER = "istio_authn";
    private static final Pattern CLAIM = Pattern.compile("request\\.auth\\.claims((?:\\[[^\\]]+\\])+)");

    private static final Logic<Permission> PERMISSIONS = new Logic<>(Permission.newBuilder().setAny(true).build(),
            l -> Permission.newBuilder().setAndRules(Permission.Set.newBuilder().addAllRules(l)).build(),
            l -> Permission.newBuilder().setOrRules(Permission.Set.newBuilder().addAllRules(l)).build(),
            p -> Permission.newBuilder().setNotRule(p).build());
    private static final Logic<Principal> PRINCIPALS = new Logic<>(Principal.newBuilder().setAny(true).build(),
            l -> Principal.newBuilder().setAndIds(Principal.Set.newBuilder().addAllIds(l)).build(),
            l -> Principal.newBuilder().setOrIds(Principal.Set.newBuilder().addAllIds(l)).build(),
            p -> Principal.newBuilder().setNotId(p).build());

    private RbacRules() {}

    /**
     * The rule as a policy; {@code denying} tells how a condition the waypoint cannot evaluate counts: as
     * a match in a DENY policy (it denies more), never in an ALLOW policy (it allows less).
     */
    static Policy policy(Rule rule, boolean denying) {
        List<Permission> permissions = new ArrayList<>();
        List<Principal> principals = new ArrayList<>();
        if (!rule.to().isEmpty()) {
            permissions.add(PERMISSIONS.or(rule.to().stream().map(RbacRules::operation).toList()));
        }
        if (!rule.from().isEmpty()) {
            principals.add(PRINCIPALS.or(rule.from().stream().map(RbacRules::source).toList()));
        }
        for (Condition c : rule.when()) {
            condition(c, denying, permissions, principals);
        }
        return Policy.newBuilder().addPermissions(PERMISSIONS.and(permissions))
                .addPrincipals(PRINCIPALS.and(principals))
                .build();
    }

    private static Permission operation(Operation o) {
        var l7 = o.l7();
        List<Permission> and = new ArrayList<>();
        PERMISSIONS.either(and, l7.hosts(), l7.notHosts(), RbacRules::host);
        PERMISSIONS.either(and, l7.methods(), l7.notMethods(), v -> header(":method", pattern(v, "", false)));
        PERMISSIONS.either(and, l7.paths(), l7.notPaths(), RbacRules::path);
        PERMISSIONS.either(and, o.ports().stream().map(String::valueOf).toList(),
                o.notPorts().stream().map(String::valueOf).toList(),
                p -> Permission.newBuilder().setDestinationPort(Integer.parseInt(p)).build());
        return PERMISSIONS.and(and);
    }

    private static Principal source(Source s) {
        List<Principal> and = new ArrayList<>();
        PRINCIPALS.either(and, s.principals(), s.notPrincipals(), RbacRules::principal);
        PRINCIPALS.either(and, s.l7().requestPrincipals(), s.l7().notRequestPrincipals(),
                v -> authn(List.of("request.auth.principal"), pattern(v, "", false), false));
        PRINCIPALS.either(and, s.namespaces(), s.notNamespaces(), RbacRules::namespace);
        PRINCIPALS.either(and, s.ipBlocks().stream().map(Cidr::toString).toList(),
                s.notIpBlocks().stream().map(Cidr::toString).toList(),
                c -> Principal.newBuilder().setDirectRemoteIp(cidr(Cidr.parse(c))).build());
        PRINCIPALS.either(and, s.l7().remoteIpBlocks().stream().map(Cidr::toString).toList(),
                s.l7().notRemoteIpBlocks().stream().map(Cidr::toString).toList(),
                c -> Principal.newBuilder().setRemoteIp(cidr(Cidr.parse(c))).build());
        return PRINCIPALS.and(and);
    }

    /** One {@code when} condition, on the request (a permission) or on who sends it (a principal). */
    private static void condition(Condition c, boolean denying, List<Permission> permissions,
            List<Principal> principals) {
        String key = c.key();
        var claim = CLAIM.matcher(key);
        if (key.startsWith("request.headers[") && key.endsWith("]")) {
            String name = key.substring("request.headers[".length(), key.length() - 1).toLowerCase(Locale.ROOT);
            PERMISSIONS.either(permissions, c.values(), c.notValues(), v -> header(name, pattern(v, "", false)));
        } else if (key.equals("destination.port")) {
            PERMISSIONS.either(permissions, c.values(), c.notValues(),
                    p -> Permission.newBuilder().setDestinationPort(Integer.parseInt(p.trim())).build());
        } else if (key.equals("destination.ip")) {
            PERMISSIONS.either(permissions, c.values(), c.notValues(),
                    v -> Permission.newBuilder().setDestinationIp(cidr(Cidr.parse(v))).build());
        } else if (key.equals("source.ip") || key.equals("remote.ip")) {
            boolean direct = key.equals("source.ip");
            PRINCIPALS.either(principals, c.values(), c.notValues(), v -> direct
                    ? Principal.newBuilder().setDirectRemoteIp(cidr(Cidr.parse(v))).build()
                    : Principal.newBuilder().setRemoteIp(cidr(Cidr.parse(v))).build());
        } else if (key.equals("source.principal")) {
            PRINCIPALS.either(principals, c.values(), c.notValues(), RbacRules::principal);
        } else if (key.equals("source.namespace")) {
            PRINCIPALS.either(principals, c.values(), c.notValues(), RbacRules::namespace);
        } else if (key.equals("request.auth.principal") || key.equals("request.auth.presenter")) {
            PRINCIPALS.either(principals, c.values(), c.notValues(),
                    v -> authn(List.of(key), pattern(v, "", false), false));
        } else if (key.equals("request.auth.audiences")) {
            PRINCIPALS.either(principals, c.values(), c.notValues(),
                    v -> authn(List.of(key), pattern(v, "", false), true));
        } else if (claim.matches()) {
            List<String> path = new ArrayList<>(List.of("request.auth.claims"));
            String inner = claim.group(1);
            path.addAll(List.of(inner.substring(1, inner.length() - 1).split("\\]\\[")));
            PRINCIPALS.either(principals, c.values(), c.notValues(), v -> authn(path, pattern(v, "", false), true));
        } else {
            // connection.sni, experimental.*: nothing inside a tunnel gives them
            permissions.add(denying ? PERMISSIONS.any() : PERMISSIONS.not().apply(PERMISSIONS.any()));
        }
    }

    private static Principal principal(String v) {
        String id = v.startsWith("spiffe://") ? v.substring("spiffe://".length()) : v;
        StringMatcher m = id.startsWith("*") && id.length() > 1
                ? pattern(id, "", false)
                : pattern(id, "spiffe://", false);
        return Principal.newBuilder().setAuthenticated(Principal.Authenticated.newBuilder().setPrincipalName(m))
                .build();
    }

    /** A namespace pattern as a regular expression over the SPIFFE ID {@code spiffe://td/ns/<ns>/sa/<sa>}. */
    private static Principal namespace(String v) {
        String ns;
        if (v.equals("*")) {
            ns = "[^/]+";
        } else if (v.endsWith("*")) {
            ns = Pattern.quote(v.substring(0, v.length() - 1)) + "[^/]*";
        } else if (v.startsWith("*")) {
            ns = "[^/]*" + Pattern.quote(v.substring(1));
        } else {
            ns = Pattern.quote(v);
        }
        return Principal.newBuilder().setAuthenticated(Principal.Authenticated.newBuilder().setPrincipalName(
                StringMatcher.newBuilder().setSafeRegex(RegexMatcher.newBuilder().setRegex(
                        "spiffe://[^/]+/ns/" + ns + "/sa/[^/]+"))))
                .build();
    }

    private static Principal authn(List<String> path, StringMatcher m, boolean list) {
        MetadataMatcher.Builder mm = MetadataMatcher.newBuilder().setFilter(AUTHN_FILTER);
        path.forEach(k -> mm.addPath(MetadataMatcher.PathSegment.newBuilder().setKey(k)));
        ValueMatcher value = ValueMatcher.newBuilder().setStringMatch(m).build();
        mm.setValue(list
                ? ValueMatcher.newBuilder().setListMatch(ListMatcher.newBuilder().setOneOf(value)).build()
                : value);
        return Principal.newBuilder().setSourcedMetadata(SourcedMetadata.newBuilder().setMetadataMatcher(mm)).build();
    }

    private static Permission path(String v) {
        if (v.contains("{")) {
            String template = v.replace("{**}", "**").replace("{*}", "*");
            return Permission.newBuilder().setUriTemplate(TypedExtensionConfig.newBuilder()
                    .setName("envoy.path.match.uri_template.uri_template_matcher")
                    .setTypedConfig(Any.pack(UriTemplateMatchConfig.newBuilder().setPathTemplate(template).build())))
                    .build();
        }
        return Permission.newBuilder().setUrlPath(PathMatcher.newBuilder().setPath(pattern(v, "", false))).build();
    }

    /** A host pattern on {@code :authority}, ignoring case; an exact host also matches it with any port. */
    private static Permission host(String v) {
        Permission any = header(":authority", pattern(v, "", true));
        if (v.contains("*") || v.contains(":")) {
            return any;
        }
        return PERMISSIONS.or(List.of(any, header(":authority", pattern(v + ":*", "", true))));
    }

    private static Permission header(String name, StringMatcher m) {
        return Permission.newBuilder().setHeader(HeaderMatcher.newBuilder().setName(name).setStringMatch(m)).build();
    }

    /** An Istio pattern ({@code *}, {@code prefix*}, {@code *suffix}, exact) with {@code lead} before its text. */
    static StringMatcher pattern(String v, String lead, boolean ignoreCase) {
        StringMatcher.Builder m = StringMatcher.newBuilder().setIgnoreCase(ignoreCase);
        if (v.equals("*")) {
            return StringMatcher.newBuilder().setSafeRegex(RegexMatcher.newBuilder().setRegex(".+")).build();
        } else if (v.endsWith("*")) {
            m.setPrefix(lead + v.substring(0, v.length() - 1));
        } else if (v.startsWith("*")) {
            m.setSuffix(v.substring(1));
        } else {
            m.setExact(lead + v);
        }
        return m.build();
    }

    private static CidrRange cidr(Cidr c) {
        return CidrRange.newBuilder().setAddressPrefix(c.address().getHostAddress())
                .setPrefixLen(UInt32Value.of(c.length())).build();
    }

    /**
     * Envoy's RBAC writes permissions and principals with the same logic (any, an AND set, an OR set,
     * NOT) under other field names: this is that logic once, with the field names given per type.
     */
    private record Logic<T>(T any, Function<List<T>, T> andSet, Function<List<T>, T> orSet, UnaryOperator<T> not) {
        /** All of {@code and}: any when empty, the one itself when alone. */
        T and(List<T> and) {
            return switch (and.size()) {
                case 0 -> any;
                case 1 -> and.getFirst();
                default -> andSet.apply(and);
            };
        }

        /** One of {@code or} (not empty): the one itself when alone. */
        T or(List<T> or) {
            return or.size() == 1 ? or.getFirst() : orSet.apply(or);
        }

        /** Adds "any of {@code values}" and "none of {@code notValues}" to {@code and}, when given. */
        void either(List<T> and, List<String> values, List<String> notValues, Function<String, T> one) {
            if (!values.isEmpty()) {
                and.add(or(values.stream().map(one).toList()));
            }
            if (!notValues.isEmpty()) {
                and.add(not.apply(or(notValues.stream().map(one).toList())));
            }
        }
    }
}
