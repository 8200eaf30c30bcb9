package dev.wisp.controlplane.envoy;

import com.google.protobuf.Any;
import com.google.protobuf.UInt32Value;
import dev.wisp.controlplane.model.HttpFault;
import dev.wisp.controlplane.model.LocalRateLimit;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.RouteParts.ExtensionRef;
import dev.wisp.controlplane.model.RouteParts.Filter;
import dev.wisp.controlplane.model.RouteParts.HeaderModifier;
import dev.wisp.controlplane.model.RouteParts.Mirror;
import dev.wisp.controlplane.model.RouteParts.Redirect;
import dev.wisp.controlplane.model.RouteParts.Retry;
import dev.wisp.controlplane.model.RouteParts.Rewrite;
import dev.wisp.controlplane.model.RouteParts.Timeouts;
import dev.wisp.controlplane.model.ServiceDef;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption.HeaderAppendAction;
import io.envoyproxy.envoy.config.core.v3.RuntimeFractionalPercent;
import io.envoyproxy.envoy.config.route.v3.DirectResponseAction;
import io.envoyproxy.envoy.config.route.v3.RedirectAction;
import io.envoyproxy.envoy.config.route.v3.RetryPolicy;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.WeightedCluster;
import io.envoyproxy.envoy.extensions.filters.common.fault.v3.FaultDelay;
import io.envoyproxy.envoy.extensions.filters.http.fault.v3.FaultAbort;
import io.envoyproxy.envoy.type.matcher.v3.RegexMatchAndSubstitute;
import io.envoyproxy.envoy.type.matcher.v3.RegexMatcher;
import io.envoyproxy.envoy.type.v3.FractionalPercent;
import io.envoyproxy.envoy.type.v3.TokenBucket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * What one rule does once matched, as Envoy route fields: its filters (header modifiers, redirect,
 * rewrite, mirror, an HTTPFault or a LocalRateLimit by ExtensionRef as the route's {@value #FAULT_FILTER} or
 * {@value #RATE_LIMIT_FILTER} configuration), its backends (one cluster or weighted clusters), timeouts and retry.
 *
 * <p>Gateway API outcomes kept: a rule without backendRefs goes to its parent service; a backend that
 * is not a core Service of the route's namespace with that port gets a cluster name no cluster has
 * and {@code cluster_not_found_response_code: INTERNAL_SERVER_ERROR}, so its share is a 500; backends
 * whose weights are all 0 answer 500 directly. No {@code timeouts.request} means no timeout (not
 * Envoy's implicit 15 s).
 */
record BackendActions(MeshModel model, ServiceDef parent, int port) {
    /** Envoy's fault filter, whose per-route configuration carries an HTTPFault. */
    static final String FAULT_FILTER = "envoy.filters.http.fault";
    /** Envoy's local rate limit filter, whose per-route configuration carries a LocalRateLimit. */
    static final String RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit";

    private String clusterDomain() {
        return model.mesh().clusterDomain();
    }

    /**
     * Sets {@code route}'s action.
     *
     * @param form the path form matched (for {@code ReplacePrefixMatch}), or null for gRPC and default routes
     */
    void apply(Route.Builder route, List<Filter> filters, List<BackendRef> backends, Timeouts timeouts, Retry retry,
            PathForm form) {
        RouteAction.Builder action = RouteAction.newBuilder()
                .setClusterNotFoundResponseCode(RouteAction.ClusterNotFoundResponseCode.INTERNAL_SERVER_ERROR);
        for (Filter f : filters) {
            switch (f) {
                case HeaderModifier h -> headers(route, h);
                case Redirect r -> {
                    route.setRedirect(redirect(r, form, port));
                    return;
                }
                case Rewrite r -> rewrite(action, r, form);
                case Mirror m -> action.addRequestMirrorPolicies(RouteAction.RequestMirrorPolicy.newBuilder()
                        .setCluster(cluster(m.backend()))
                        .setRuntimeFraction(RuntimeFractionalPercent.newBuilder()
                                .setDefaultValue(FractionalPercent.newBuilder().setNumerator(m.percent())
                                        .setDenominator(FractionalPercent.DenominatorType.HUNDRED))));
                case ExtensionRef e -> {
                    MeshObject o = model.objects().get(new ObjectRef(e.kind(), parent.ref().namespace(), e.name()));
                    switch (o) {
                        case HttpFault fault -> route.putTypedPerFilterConfig(FAULT_FILTER, Any.pack(fault(fault)));
                        case LocalRateLimit limit ->
                            route.putTypedPerFilterConfig(RATE_LIMIT_FILTER, Any.pack(rateLimit(limit, rule(route))));
                        case null, default -> {
                            // The Gateway API's answer to a reference that does not resolve.
                            route.setDirectResponse(DirectResponseAction.newBuilder().setStatus(500));
                            return;
                        }
                    }
                }
            }
        }
        if (backends.isEmpty()) {
            action.setCluster(EnvoyNames.cluster(parent.ref().namespace(), parent.ref().name(), port, clusterDomain()));
        } else {
            List<BackendRef> weighted = backends.stream().filter(b -> b.weight() > 0).toList();
            if (weighted.isEmpty()) {
                route.setDirectResponse(DirectResponseAction.newBuilder().setStatus(500));
                return;
            }
            if (weighted.size() == 1 && weighted.getFirst().filters().isEmpty()) {
                action.setCluster(cluster(weighted.getFirst()));
            } else {
                // Backend-level header modifiers live on the cluster's weight (one weight for a single backend).
                WeightedCluster.Builder w = WeightedCluster.newBuilder();
                for (BackendRef b : weighted) {
                    WeightedCluster.ClusterWeight.Builder cw = WeightedCluster.ClusterWeight.newBuilder()
                            .setName(cluster(b)).setWeight(UInt32Value.of(b.weight()));
                    b.filters().forEach(f -> {
                        if (f instanceof HeaderModifier h) {
                            headers(cw, h);
                        }
                    });
                    w.addClusters(cw);
                }
                action.setWeightedClusters(w);
            }
        }
        Duration request = timeouts.request();
        action.setTimeout(duration(request == null ? Duration.ZERO : request));
        if (retry != null) {
            action.setRetryPolicy(retry(retry, timeouts.backendRequest()));
        } else if (timeouts.backendRequest() != null) {
            action.setRetryPolicy(RetryPolicy.newBuilder().setNumRetries(UInt32Value.of(0))
                    .setPerTryTimeout(duration(timeouts.backendRequest())));
        }
        route.setRoute(action);
    }

    /** An HTTPFault as Envoy's fault filter configuration (percentages out of a hundred). */
    static io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault fault(HttpFault f) {
        var b = io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault.newBuilder();
        if (f.delay() != null) {
            b.setDelay(FaultDelay.newBuilder().setFixedDelay(duration(f.delay().fixedDelay()))
                    .setPercentage(percent(f.delay().percentage())));
        }
        if (f.abort() != null) {
            FaultAbort.Builder abort = FaultAbort.newBuilder().setPercentage(percent(f.abort().percentage()));
            if (f.abort().grpcStatus() >= 0) {
                abort.setGrpcStatus(f.abort().grpcStatus());
            } else {
                abort.setHttpStatus(f.abort().httpStatus());
            }
            b.setAbort(abort);
        }
        return b.build();
    }

    /**
     * A LocalRateLimit as Envoy's local rate limit configuration, enabled and enforced for every
     * request; {@code statPrefix} names the rule, whose routes (one per match) share one bucket.
     */
    static io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit rateLimit(LocalRateLimit l,
            String statPrefix) {
        RuntimeFractionalPercent all = RuntimeFractionalPercent.newBuilder().setDefaultValue(percent(100)).build();
        return io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.newBuilder()
                .setStatPrefix(statPrefix)
                .setTokenBucket(TokenBucket.newBuilder().setMaxTokens(l.tokens())
                        .setTokensPerFill(UInt32Value.of(l.tokensPerFill()))
                        .setFillInterval(duration(l.fillInterval())))
                .setFilterEnabled(all.toBuilder().setRuntimeKey("local_rate_limit_enabled"))
                .setFilterEnforced(all.toBuilder().setRuntimeKey("local_rate_limit_enforced")).build();
    }

    /** The rule a route was made from: its name without the match ({@code HTTPRoute/ns/name/rule/0}). */
    private static String rule(Route.Builder route) {
        return route.getName().replaceFirst("/match/[0-9]+$", "");
    }

    private static FractionalPercent percent(int p) {
        return FractionalPercent.newBuilder().setNumerator(p).setDenominator(FractionalPercent.DenominatorType.HUNDRED)
                .build();
    }

    /** The backend's cluster, or a name no cluster has when it cannot take traffic. */
    private String cluster(BackendRef b) {
        boolean valid = b.kind().equals(BackendRef.SERVICE) && b.namespace().equals(parent.ref().namespace())
                && model.all(ServiceDef.class).stream().anyMatch(s -> s.ref().namespace().equals(b.namespace())
                        && s.ref().name().equals(b.name()) && s.ports().stream().anyMatch(p -> p.port() == b.port()));
        return valid ? EnvoyNames.cluster(b.namespace(), b.name(), b.port(), clusterDomain()) : EnvoyNames.invalid(b);
    }

    private static void headers(Route.Builder route, HeaderModifier h) {
        headers(h, h.response() ? route::addResponseHeadersToAdd : route::addRequestHeadersToAdd,
                h.response() ? route::addAllResponseHeadersToRemove : route::addAllRequestHeadersToRemove);
    }

    private static void headers(WeightedCluster.ClusterWeight.Builder cw, HeaderModifier h) {
        headers(h, h.response() ? cw::addResponseHeadersToAdd : cw::addRequestHeadersToAdd,
                h.response() ? cw::addAllResponseHeadersToRemove : cw::addAllRequestHeadersToRemove);
    }

    private static void headers(HeaderModifier h, Consumer<HeaderValueOption> add, Consumer<List<String>> remove) {
        options(h.set(), HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD).forEach(add);
        options(h.add(), HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD).forEach(add);
        remove.accept(h.remove());
    }

    private static List<HeaderValueOption> options(Map<String, String> headers, HeaderAppendAction how) {
        return headers.entrySet().stream()
                .map(e -> HeaderValueOption.newBuilder()
                        .setHeader(HeaderValue.newBuilder().setKey(e.getKey()).setValue(e.getValue()))
                        .setAppendAction(how).build())
                .toList();
    }

    /**
     * The redirect, its port always written (the Gateway API's default: the scheme's well-known port
     * when a scheme is given, else the service port the request came to), so that the waypoint and
     * {@code wisp route check} write the same {@code Location}; http:80 and https:443 are then left out.
     */
    private static RedirectAction redirect(Redirect r, PathForm form, int servicePort) {
        RedirectAction.Builder b = RedirectAction.newBuilder()
                .setResponseCode(r.statusCode() == 301
                        ? RedirectAction.RedirectResponseCode.MOVED_PERMANENTLY
                        : RedirectAction.RedirectResponseCode.FOUND);
        if (r.scheme() != null) {
            b.setSchemeRedirect(r.scheme());
        }
        if (r.hostname() != null) {
            b.setHostRedirect(r.hostname());
        }
        if (r.port() != null) {
            b.setPortRedirect(r.port());
        } else if (r.scheme() != null) {
            b.setPortRedirect(r.scheme().equals("https") ? 443 : 80);
        } else {
            b.setPortRedirect(servicePort);
        }
        if (r.path() != null) {
            if (r.path().fullPath()) {
                b.setPathRedirect(r.path().value());
            } else if (form != null) {
                b.setPrefixRewrite(form.prefixRewrite(r.path()));
            }
        }
        return b.build();
    }

    private static void rewrite(RouteAction.Builder action, Rewrite r, PathForm form) {
        if (r.hostname() != null) {
            action.setHostRewriteLiteral(r.hostname());
        }
        if (r.path() == null) {
            return;
        }
        if (r.path().fullPath()) {
            action.setRegexRewrite(RegexMatchAndSubstitute.newBuilder()
                    .setPattern(RegexMatcher.newBuilder().setRegex("^/.*$"))
                    .setSubstitution(r.path().value().replace("\\", "\\\\")));
        } else if (form != null) {
            action.setPrefixRewrite(form.prefixRewrite(r.path()));
        }
    }

    /**
     * GEP-1731: {@code codes} retried (and a connection that could not be made, which the backend never
     * saw), {@code attempts} retries, {@code backoff} the base interval.
     */
    private static RetryPolicy retry(Retry r, Duration perTry) {
        RetryPolicy.Builder b = RetryPolicy.newBuilder();
        if (r.codes() != null && !r.codes().isEmpty()) {
            b.setRetryOn("retriable-status-codes,connect-failure").addAllRetriableStatusCodes(r.codes());
        } else {
            b.setRetryOn("5xx");
        }
        if (r.attempts() != null) {
            b.setNumRetries(UInt32Value.of(r.attempts()));
        }
        if (r.backoff() != null) {
            b.setRetryBackOff(RetryPolicy.RetryBackOff.newBuilder().setBaseInterval(duration(r.backoff())));
        }
        if (perTry != null) {
            b.setPerTryTimeout(duration(perTry));
        }
        return b.build();
    }

    static com.google.protobuf.Duration duration(Duration d) {
        return com.google.protobuf.Duration.newBuilder().setSeconds(d.getSeconds()).setNanos(d.getNano()).build();
    }
}
