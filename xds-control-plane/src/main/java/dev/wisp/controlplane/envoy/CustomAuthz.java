package dev.wisp.controlplane.envoy;

import com.google.protobuf.Any;
import com.google.protobuf.UInt32Value;
import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.ExtensionProvider;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.ServiceDef;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.ApiVersion;
import io.envoyproxy.envoy.config.core.v3.GrpcService;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.Endpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.config.rbac.v3.Permission;
import io.envoyproxy.envoy.config.rbac.v3.Policy;
import io.envoyproxy.envoy.config.rbac.v3.Principal;
import io.envoyproxy.envoy.config.rbac.v3.RBAC;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
import io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBACPerRoute;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
import io.envoyproxy.envoy.type.matcher.v3.MetadataMatcher;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import io.envoyproxy.envoy.type.matcher.v3.ValueMatcher;
import io.envoyproxy.envoy.type.v3.HttpStatus;
import io.envoyproxy.envoy.type.v3.StatusCode;
import java.net.InetAddress;
import java.util.List;
import java.util.Optional;

/**
 * CUSTOM AuthorizationPolicies as Envoy configures an external authorizer, the way Istio does (pure):
 * the listener's HTTP connection manager gets the provider's {@code envoy.filters.http.ext_authz}
 * filter ({@link ExtAuthz}: {@code grpc_service} = the provider's cluster, its timeout,
 * {@code failure_mode_allow}, {@code status_on_error}, {@code stat_prefix} = the provider's name), enabled
 * only for requests whose RBAC shadow policy id starts with {@code istio-ext-authz}; the virtual host
 * carries, under {@link #RULES_FILTER}, an {@link RBACPerRoute} whose {@code shadow_rules} are the
 * CUSTOM policies' rules (one policy per rule, {@code <ns>/<name>[<index>]}, denying semantics: a
 * condition the waypoint cannot evaluate counts as matching, so the authorizer sees more requests, never
 * fewer). A request matching one is sent to the authorizer; others are not.
 *
 * <p>The provider's cluster: a mesh Service's host name is that Service's cluster at the provider's port
 * ({@code outbound|<port>||<host>}, its EDS the Service's pods); an IP address gets a cluster of its own,
 * {@code outbound|<port>||<ip>}, with that one endpoint ({@link #clusters}). A provider whose service is
 * neither is not usable: the policy then denies every request it applies to (fail closed).
 */
final class CustomAuthz {
    /** Envoy's name of the ext_authz HTTP filter, the listener's filter that calls the provider. */
    static final String FILTER = "envoy.filters.http.ext_authz";

    /** The virtual host's per-filter entry holding which requests go to the provider (RBAC shadow rules). */
    static final String RULES_FILTER = "wisp.authz.custom";

    /** Istio's shadow-rules prefix for CUSTOM policies, and the policy-id prefix the ext_authz filter waits for. */
    static final String SHADOW_PREFIX = "istio_ext_authz_";

    private CustomAuthz() {}

    /** The Envoy cluster of {@code p}'s service; empty when it names neither an IP address nor a mesh Service with that port. */
    static Optional<String> cluster(ExtensionProvider p, MeshModel model) {
        if (address(p).isPresent()) {
            return Optional.of("outbound|" + p.port() + "||" + p.service());
        }
        String domain = model.mesh().clusterDomain();
        return model.all(ServiceDef.class).stream().filter(s -> s.hostname(domain).equals(p.service())
                && s.ports().stream().anyMatch(sp -> sp.port() == p.port()))
                .map(s -> EnvoyNames.cluster(s.ref().namespace(), s.ref().name(), p.port(), domain)).findFirst();
    }

    /** The ext_authz filter calling {@code p} through {@code cluster}. */
    static HttpFilter filter(ExtensionProvider p, String cluster) {
        ExtAuthz.Builder config = ExtAuthz.newBuilder()
                .setGrpcService(GrpcService.newBuilder()
                        .setEnvoyGrpc(GrpcService.EnvoyGrpc.newBuilder().setClusterName(cluster))
                        .setTimeout(BackendActions.duration(p.timeout())))
                .setTransportApiVersion(ApiVersion.V3).setFailureModeAllow(p.failOpen()).setStatPrefix(p.name())
                .setFilterEnabledMetadata(MetadataMatcher.newBuilder().setFilter("envoy.filters.http.rbac")
                        .addPath(MetadataMatcher.PathSegment.newBuilder().setKey(SHADOW_PREFIX
                                + "shadow_effective_policy_id"))
                        .setValue(ValueMatcher.newBuilder().setStringMatch(StringMatcher.newBuilder()
                                .setPrefix("istio-ext-authz"))));
        if (p.statusOnError() != 403) {
            config.setStatusOnError(HttpStatus.newBuilder().setCode(StatusCode.forNumber(p.statusOnError())));
        }
        return HttpFilter.newBuilder().setName(FILTER).setTypedConfig(Any.pack(config.build())).build();
    }

    /** The virtual host's entry: the CUSTOM policies' rules as RBAC shadow rules. */
    static RBACPerRoute rules(List<AuthorizationPolicy> policies) {
        RBAC.Builder shadow = RBAC.newBuilder().setAction(RBAC.Action.DENY);
        for (AuthorizationPolicy p : policies) {
            for (int i = 0; i < p.rules().size(); i++) {
                shadow.putPolicies(p.ref().qualifiedName() + "[" + i + "]", RbacRules.policy(p.rules().get(i), true));
            }
        }
        return RBACPerRoute.newBuilder().setRbac(io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBAC.newBuilder()
                .setShadowRules(shadow).setShadowRulesStatPrefix(SHADOW_PREFIX)).build();
    }

    /** A policy that matches every request: what a CUSTOM policy without a usable provider denies. */
    static Policy everything() {
        return Policy.newBuilder().addPermissions(Permission.newBuilder().setAny(true))
                .addPrincipals(Principal.newBuilder().setAny(true)).build();
    }

    /** The clusters and load assignments of the providers whose service is an IP address (EDS, one endpoint). */
    static void clusters(MeshModel model, List<Cluster> clusters, List<ClusterLoadAssignment> endpoints) {
        for (ExtensionProvider p : model.mesh().extensionProviders()) {
            Optional<InetAddress> ip = address(p);
            String name = "outbound|" + p.port() + "||" + p.service();
            if (ip.isEmpty() || clusters.stream().anyMatch(c -> c.getName().equals(name))) {
                continue;
            }
            clusters.add(EnvoyTranslator.edsCluster(name));
            endpoints.add(ClusterLoadAssignment.newBuilder().setClusterName(name).addEndpoints(LocalityLbEndpoints
                    .newBuilder().setLoadBalancingWeight(UInt32Value.of(1)).addLbEndpoints(LbEndpoint.newBuilder()
                            .setEndpoint(Endpoint.newBuilder().setAddress(Address.newBuilder().setSocketAddress(
                                    SocketAddress.newBuilder().setAddress(ip.get().getHostAddress())
                                            .setPortValue(p.port()))))))
                    .build());
        }
    }

    private static Optional<InetAddress> address(ExtensionProvider p) {
        try {
            return p.service().matches("[0-9.]+|.*:.*")
                    ? Optional.of(InetAddress.ofLiteral(p.service()))
                    : Optional.empty();
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }
}
