package dev.wisp.controlplane.envoy;

import com.google.protobuf.Any;
import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.AuthorizationPolicy.Action;
import dev.wisp.controlplane.model.ExtensionProvider;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.RequestAuthentication;
import dev.wisp.controlplane.model.RequestAuthentication.JwtRule;
import dev.wisp.controlplane.model.ServiceDef;
import dev.wisp.controlplane.model.TargetRef;
import dev.wisp.controlplane.model.WaypointNames;
import dev.wisp.controlplane.translate.Waypoints;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.config.core.v3.HttpUri;
import io.envoyproxy.envoy.config.rbac.v3.RBAC;
import io.envoyproxy.envoy.config.route.v3.FilterConfig;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtHeader;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.RemoteJwks;
import io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBACPerRoute;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Optional;

/**
 * The AuthorizationPolicies and RequestAuthentications attached to a waypoint, as the Envoy RBAC and
 * jwt_authn configuration its virtual hosts carry (pure; the JWT part under {@link #JWT_FILTER}, see
 * {@link #jwtAuthentication}).
 * A policy applies to a service's route configuration when its {@code targetRefs} name that Service
 * (in the service's namespace) or the waypoint Gateway that serves it (in the Gateway's namespace).
 * Each virtual host of the service then carries, in {@code typed_per_filter_config}, one
 * {@link RBACPerRoute} per action under {@link #DENY_FILTER} and {@link #ALLOW_FILTER} (wrapped in an
 * optional {@link FilterConfig}, so a proxyless gRPC client that has no such filter ignores it), whose
 * policies are named {@code <ns>/<name>[<rule index>]}: Istio's order is DENY then ALLOW (a request
 * with ALLOW policies present must match one; an ALLOW policy without rules allows nothing).
 *
 * <p>CUSTOM policies ({@link CustomAuthz}): the listener of a service they apply to calls the MeshConfig
 * extension provider they name ({@link #extAuthz}), for the requests their rules match ({@link
 * CustomAuthz#RULES_FILTER} on each virtual host), before DENY and ALLOW. One provider per service, as
 * in Istio: CUSTOM policies naming a provider MeshConfig does not declare (or whose service has no
 * cluster), or a second provider on the same service, deny every request of the service instead, under
 * the DENY policy {@code <ns>/<name>[provider <name> not usable]} (fail closed, as Istio's deny-all for a
 * bad CUSTOM action). AUDIT and dry-run policies are not enforced.
 * Selector policies stay with the node agents (L4), as in Istio's ambient mode.
 */
public final class AuthzTranslator {
    /** The filter instance names the waypoint reads from a virtual host's typed_per_filter_config. */
    public static final String DENY_FILTER = "wisp.authz.deny";

    public static final String ALLOW_FILTER = "wisp.authz.allow";

    /** The filter instance name of the virtual host's {@link JwtAuthentication}. */
    public static final String JWT_FILTER = "wisp.authn.jwt";

    private final List<AuthorizationPolicy> attached;
    private final List<RequestAuthentication> authentications;
    private final Waypoints waypoints;
    private final MeshModel model;

    /** The CUSTOM policies of a service and the provider they call, with its cluster; empty when none applies. */
    private record Custom(ExtensionProvider provider, String cluster, List<AuthorizationPolicy> policies) {}

    public AuthzTranslator(MeshModel model) {
        this.model = model;
        this.attached = model.all(AuthorizationPolicy.class).stream().filter(p -> !p.targetRefs().isEmpty()
                && !p.dryRun() && p.action() != Action.AUDIT)
                .sorted(Comparator.comparing(p -> p.ref().qualifiedName())).toList();
        this.authentications = model.all(RequestAuthentication.class).stream()
                .filter(r -> !r.targetRefs().isEmpty())
                .sorted(Comparator.comparing(r -> r.ref().qualifiedName())).toList();
        this.waypoints = Waypoints.of(model, WaypointNames.ISTIO_AND_WISP, new HashMap<>());
    }

    /** {@code config} (the route configuration of a port of {@code s}) with the RBAC of the policies on it. */
    public RouteConfiguration attach(RouteConfiguration config, ServiceDef s) {
        List<AuthorizationPolicy> policies = policies(s);
        Optional<String> gateway = waypoints.gatewayOf(s);
        List<RequestAuthentication> jwt = authentications.stream().filter(r -> r.targetRefs().stream()
                .anyMatch(t -> applies(r.ref(), t, s, gateway))).toList();
        if (policies.isEmpty() && jwt.isEmpty()) {
            return config;
        }
        Optional<Custom> custom = custom(policies);
        RBAC.Builder denies = rbac(policies.stream().filter(p -> p.action() == Action.DENY).toList(),
                RBAC.Action.DENY).toBuilder();
        policies.stream().filter(p -> p.action() == Action.CUSTOM && (custom.isEmpty()
                || !custom.get().policies().contains(p))).forEach(p -> denies.putPolicies(p.ref().qualifiedName()
                        + "[provider " + p.provider() + " not usable]", CustomAuthz.everything()));
        RBAC deny = denies.build();
        List<AuthorizationPolicy> allows = policies.stream().filter(p -> p.action() == Action.ALLOW).toList();
        RouteConfiguration.Builder out = config.toBuilder();
        for (VirtualHost.Builder vh : out.getVirtualHostsBuilderList()) {
            if (deny.getPoliciesCount() > 0) {
                vh.putTypedPerFilterConfig(DENY_FILTER, perRoute(deny));
            }
            if (!allows.isEmpty()) {
                vh.putTypedPerFilterConfig(ALLOW_FILTER, perRoute(rbac(allows, RBAC.Action.ALLOW)));
            }
            custom.ifPresent(c -> vh.putTypedPerFilterConfig(CustomAuthz.RULES_FILTER,
                    optional(Any.pack(CustomAuthz.rules(c.policies())))));
            if (!jwt.isEmpty()) {
                vh.putTypedPerFilterConfig(JWT_FILTER, optional(Any.pack(jwtAuthentication(jwt))));
            }
        }
        return out.build();
    }

    /** The ext_authz filter of {@code s}'s listeners: the provider its CUSTOM policies call; empty when none does. */
    public Optional<HttpFilter> extAuthz(ServiceDef s) {
        return custom(policies(s)).map(c -> CustomAuthz.filter(c.provider(), c.cluster()));
    }

    private List<AuthorizationPolicy> policies(ServiceDef s) {
        Optional<String> gateway = waypoints.gatewayOf(s);
        return attached.stream().filter(p -> p.targetRefs().stream().anyMatch(t -> applies(p.ref(), t, s, gateway)))
                .toList();
    }

    /**
     * The provider the CUSTOM policies among {@code policies} call: the one they all name, when MeshConfig
     * declares it and its service has a cluster; empty otherwise (their requests are then denied).
     */
    private Optional<Custom> custom(List<AuthorizationPolicy> policies) {
        List<AuthorizationPolicy> custom = policies.stream().filter(p -> p.action() == Action.CUSTOM).toList();
        if (custom.stream().map(AuthorizationPolicy::provider).distinct().count() != 1) {
            return Optional.empty();
        }
        return model.mesh().extensionProvider(custom.getFirst().provider()).flatMap(p -> CustomAuthz.cluster(p, model)
                .map(cluster -> new Custom(p, cluster, custom)));
    }

    private static boolean applies(ObjectRef policy, TargetRef t, ServiceDef s, Optional<String> gateway) {
        return switch (t.kind()) {
            case SERVICE -> policy.namespace().equals(s.ref().namespace()) && t.name().equals(s.ref().name());
            case GATEWAY -> gateway.equals(Optional.of(policy.namespace() + "/" + t.name()));
        };
    }

    /**
     * The JWT rules of {@code rules} as Envoy's jwt_authn configuration, one provider per rule named
     * {@code <ns>/<name>[<index>]}: issuer, audiences, keys inline ({@code jwks}) or from a file
     * ({@code jwksUri: file:///…}, read by the waypoint) or a URL ({@code remote_jwks}, which the waypoint
     * does not fetch yet: a token of that issuer is refused), where the token is looked for (Istio's
     * default when none is given: {@code Authorization: Bearer} and the query parameter
     * {@code access_token}), and its payload in the metadata {@code istio_authn}.
     */
    static JwtAuthentication jwtAuthentication(List<RequestAuthentication> rules) {
        JwtAuthentication.Builder out = JwtAuthentication.newBuilder();
        for (RequestAuthentication ra : rules) {
            for (int i = 0; i < ra.jwtRules().size(); i++) {
                JwtRule r = ra.jwtRules().get(i);
                JwtProvider.Builder p = JwtProvider.newBuilder().setIssuer(r.issuer()).addAllAudiences(r.audiences())
                        .setForward(r.forwardOriginalToken()).setPayloadInMetadata(RbacRules.AUTHN_FILTER);
                if (r.jwks() != null) {
                    p.setLocalJwks(DataSource.newBuilder().setInlineString(r.jwks()));
                } else if (r.jwksUri() != null && r.jwksUri().getScheme().equals("file")) {
                    p.setLocalJwks(DataSource.newBuilder().setFilename(r.jwksUri().getPath()));
                } else if (r.jwksUri() != null) {
                    p.setRemoteJwks(RemoteJwks.newBuilder().setHttpUri(HttpUri.newBuilder()
                            .setUri(r.jwksUri().toString()).setCluster(r.jwksUri().getHost())));
                }
                if (r.fromHeaders().isEmpty() && r.fromParams().isEmpty()) {
                    p.addFromHeaders(JwtHeader.newBuilder().setName("authorization").setValuePrefix("Bearer "))
                            .addFromParams("access_token");
                }
                r.fromHeaders().forEach((name, prefix) -> p.addFromHeaders(JwtHeader.newBuilder().setName(name)
                        .setValuePrefix(prefix)));
                p.addAllFromParams(r.fromParams());
                out.putProviders(ra.ref().qualifiedName() + "[" + i + "]", p.build());
            }
        }
        return out.build();
    }

    private static RBAC rbac(List<AuthorizationPolicy> policies, RBAC.Action action) {
        RBAC.Builder r = RBAC.newBuilder().setAction(action);
        for (AuthorizationPolicy p : policies) {
            for (int i = 0; i < p.rules().size(); i++) {
                r.putPolicies(p.ref().qualifiedName() + "[" + i + "]",
                        RbacRules.policy(p.rules().get(i), action == RBAC.Action.DENY));
            }
        }
        return r.build();
    }

    private static Any perRoute(RBAC rules) {
        return optional(Any.pack(RBACPerRoute.newBuilder().setRbac(
                io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBAC.newBuilder().setRules(rules)).build()));
    }

    /** {@code config} wrapped as optional: a client without the filter ignores it. */
    private static Any optional(Any config) {
        return Any.pack(FilterConfig.newBuilder().setConfig(config).setIsOptional(true).build());
    }
}
