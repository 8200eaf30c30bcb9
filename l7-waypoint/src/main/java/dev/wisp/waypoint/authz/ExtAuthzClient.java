package dev.wisp.waypoint.authz;

import static java.util.Objects.requireNonNull;

import com.google.protobuf.Timestamp;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.waypoint.route.RouteActions;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;

/**
 * The waypoint's client of external authorizers: Envoy's ext_authz v3 gRPC API
 * ({@code envoy.service.auth.v3.Authorization/Check}), called as a listener's
 * {@code envoy.filters.http.ext_authz} filter says ({@link ExtAuthz}: the cluster whose EDS endpoints serve
 * it, taken in turn; the timeout; {@code failure_mode_allow}; {@code status_on_error};
 * {@code stat_prefix}, the provider's name). One plaintext HTTP/2 channel per endpoint address, kept
 * until {@link #close}.
 *
 * <p>The {@link CheckRequest} says what the waypoint verified, never what the client claims: the source
 * principal is the SPIFFE ID of the client's certificate and the source address the tunnel's peer; the
 * request's method, path (with its query), host and headers follow, without {@code
 * x-forwarded-client-cert} (a client's claim of an identity, dropped as Envoy's default sanitizing does).
 * Each answer is counted ({@code counted(provider, result)}: {@code allowed}, {@code denied},
 * {@code error} (refused: no answer in time, unreachable, a gRPC error), {@code error_allowed} (let on by
 * {@code failure_mode_allow})).
 */
public final class ExtAuthzClient implements AutoCloseable {
    private static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(600);
    private final Map<InetSocketAddress, ManagedChannel> channels = new ConcurrentHashMap<>();
    private final AtomicInteger next = new AtomicInteger();
    private final BiConsumer<String, String> counted;

    /** @param counted called with the provider and the result of each check */
    public ExtAuthzClient(BiConsumer<String, String> counted) {
        this.counted = requireNonNull(counted, "counted");
    }

    /** What the authorizer decided, or what its failure amounts to. */
    public sealed interface Verdict {
        /** Let on, with the authorizer's edits of the request's headers. */
        record Allowed(List<HeaderValueOption> headers, List<String> remove) implements Verdict {
            /**
             * Applies the edits to {@code h} (lower-case names), as Envoy's ext_authz filter does: removals
             * first, then each header by its {@code append} (true: added, false: set) or, without it, its
             * {@code append_action}.
             */
            public void applyTo(RouteActions.Headers h) {
                RouteActions.edit(headers.stream().map(o -> o.hasAppend()
                        ? o.toBuilder().clearAppend().setAppendAction(o.getAppend().getValue()
                                ? HeaderValueOption.HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD
                                : HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD).build()
                        : o).toList(), remove, h);
            }
        }

        /** Refused with {@code status}; {@code body} the authorizer's (null: the waypoint's own {@code reason}). */
        record Denied(int status, String body, String reason) implements Verdict {}
    }

    /** The authorizer of one listener, bound to the configuration a request is served with. */
    public final class Bound {
        private final ExtAuthz filter;
        private final EnvoyConfig config;

        private Bound(ExtAuthz filter, EnvoyConfig config) {
            this.filter = filter;
            this.config = config;
        }

        /** The provider's name (the filter's {@code stat_prefix}). */
        public String provider() {
            return filter.getStatPrefix().isEmpty() ? "-" : filter.getStatPrefix();
        }

        /** Asks the authorizer about {@code r}; completes on a gRPC thread, never exceptionally. */
        public CompletableFuture<Verdict> check(AuthzRequest r) {
            CompletableFuture<Verdict> out = new CompletableFuture<>();
            String cluster = filter.getGrpcService().getEnvoyGrpc().getClusterName();
            Optional<InetSocketAddress> endpoint = endpoint(cluster);
            if (endpoint.isEmpty()) {
                out.complete(failed("no endpoint for cluster " + cluster));
                return out;
            }
            com.google.protobuf.Duration t = filter.getGrpcService().getTimeout();
            Duration timeout = t.getSeconds() == 0 && t.getNanos() == 0
                    ? DEFAULT_TIMEOUT
                    : Duration.ofSeconds(t.getSeconds(), t.getNanos());
            AuthorizationGrpc.newStub(channel(endpoint.get())).withDeadlineAfter(timeout.toNanos(),
                    TimeUnit.NANOSECONDS).check(request(r, Instant.now()), new StreamObserver<>() {
                        @Override
                        public void onNext(CheckResponse answer) {
                            out.complete(verdict(answer));
                        }

                        @Override
                        public void onError(Throwable e) {
                            Status s = Status.fromThrowable(e);
                            if (!out.isDone()) {
                                out.complete(failed(s.getCode() + (s.getDescription() == null
                                        ? ""
                                        : ": " + s.getDescription())));
                            }
                        }

                        @Override
                        public void onCompleted() {
                            if (!out.isDone()) {
                                out.complete(failed("no answer"));
                            }
                        }
                    });
            return out;
        }

        private Verdict verdict(CheckResponse answer) {
            if (answer.getStatus().getCode() == 0) {
                counted.accept(provider(), "allowed");
                return new Verdict.Allowed(answer.getOkResponse().getHeadersList(),
                        answer.getOkResponse().getHeadersToRemoveList());
            }
            counted.accept(provider(), "denied");
            int status = answer.getDeniedResponse().getStatus().getCodeValue();
            return new Verdict.Denied(status == 0 ? 403 : status, answer.getDeniedResponse().getBody(),
                    "ext_authz: denied by provider " + provider());
        }

        private Verdict failed(String why) {
            if (filter.getFailureModeAllow()) {
                counted.accept(provider(), "error_allowed");
                return new Verdict.Allowed(List.of(), List.of());
            }
            counted.accept(provider(), "error");
            int status = filter.getStatusOnError().getCodeValue();
            return new Verdict.Denied(status == 0 ? 403 : status, null, "ext_authz: provider " + provider()
                    + " failed (" + why + "), fail closed");
        }

        private Optional<InetSocketAddress> endpoint(String cluster) {
            List<InetSocketAddress> all = new ArrayList<>();
            var assignment = config.endpoints().get(cluster);
            if (assignment != null) {
                for (LocalityLbEndpoints l : assignment.getEndpointsList()) {
                    for (LbEndpoint e : l.getLbEndpointsList()) {
                        SocketAddress a = e.getEndpoint().getAddress().getSocketAddress();
                        all.add(new InetSocketAddress(InetAddress.ofLiteral(a.getAddress()), a.getPortValue()));
                    }
                }
            }
            return all.isEmpty()
                    ? Optional.empty()
                    : Optional.of(all.get(Math.floorMod(next.getAndIncrement(), all.size())));
        }
    }

    /** The authorizer of the listener serving {@code target} in {@code config}; empty when it has none. */
    public Optional<Bound> bind(EnvoyConfig config, InetSocketAddress target) {
        return config.authorizer(target).map(f -> new Bound(f, config));
    }

    private ManagedChannel channel(InetSocketAddress a) {
        return channels.computeIfAbsent(a, x -> NettyChannelBuilder.forAddress(x).usePlaintext().build());
    }

    /** The check of {@code r} as Envoy's ext_authz filter words it, from what the waypoint verified. */
    static CheckRequest request(AuthzRequest r, Instant now) {
        String path = r.http().query().isEmpty() ? r.http().path() : r.http().path() + "?" + r.http().query();
        String host = r.http().headers().getOrDefault("host", List.of("")).getFirst();
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put(":method", r.http().method());
        headers.put(":path", path);
        headers.put(":authority", host);
        r.http().headers().forEach((name, values) -> {
            if (!name.equals("x-forwarded-client-cert") && !name.equals("host")) {
                headers.put(name, String.join(",", values));
            }
        });
        return CheckRequest.newBuilder().setAttributes(AttributeContext.newBuilder()
                .setSource(AttributeContext.Peer.newBuilder().setAddress(address(r.source(), 0))
                        .setPrincipal(r.peer().map(SpiffeId::toString).orElse("")))
                .setDestination(AttributeContext.Peer.newBuilder().setAddress(address(r.destination().getAddress(),
                        r.destination().getPort())))
                .setRequest(AttributeContext.Request.newBuilder()
                        .setTime(Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()))
                        .setHttp(AttributeContext.HttpRequest.newBuilder().setMethod(r.http().method()).setPath(path)
                                .setHost(host).setScheme("http").putAllHeaders(headers))))
                .build();
    }

    private static Address address(InetAddress ip, int port) {
        return Address.newBuilder().setSocketAddress(SocketAddress.newBuilder().setAddress(ip.getHostAddress())
                .setPortValue(port)).build();
    }

    @Override
    public void close() {
        channels.values().forEach(ManagedChannel::shutdownNow);
        channels.clear();
    }
}
