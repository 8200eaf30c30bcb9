package dev.wisp.testing;

import com.google.rpc.Status;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.auth.v3.DeniedHttpResponse;
import io.envoyproxy.envoy.service.auth.v3.OkHttpResponse;
import io.envoyproxy.envoy.type.v3.HttpStatus;
import io.envoyproxy.envoy.type.v3.StatusCode;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

/**
 * A test external authorizer: Envoy's ext_authz v3 gRPC service ({@code Authorization/Check}) on a
 * plaintext port, answering each check with {@code decide} (after {@code delay}, to test timeouts) and
 * keeping every {@link CheckRequest} it got, in order. {@link #allow}, {@link #deny} and {@link #allowGet}
 * build the usual answers.
 */
public final class ExtAuthzServer implements AutoCloseable {
    private final Server server;
    private final List<CheckRequest> checks = new CopyOnWriteArrayList<>();
    private volatile Function<CheckRequest, CheckResponse> decide;
    private volatile Duration delay = Duration.ZERO;

    private ExtAuthzServer(InetSocketAddress address, Function<CheckRequest, CheckResponse> decide) {
        this.decide = decide;
        this.server = NettyServerBuilder.forAddress(address).addService(new AuthorizationGrpc.AuthorizationImplBase() {
            @Override
            public void check(CheckRequest request, StreamObserver<CheckResponse> answer) {
                checks.add(request);
                try {
                    Thread.sleep(delay);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                answer.onNext(ExtAuthzServer.this.decide.apply(request));
                answer.onCompleted();
            }
        }).build();
        try {
            server.start();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Starts the server on {@code address} (port 0: any). */
    public static ExtAuthzServer start(InetSocketAddress address, Function<CheckRequest, CheckResponse> decide) {
        return new ExtAuthzServer(address, decide);
    }

    /** The port it listens on. */
    public int port() {
        return server.getPort();
    }

    /** The checks received so far, in order. */
    public List<CheckRequest> checks() {
        return List.copyOf(checks);
    }

    /** Answers from now on with {@code decide}. */
    public void decide(Function<CheckRequest, CheckResponse> decide) {
        this.decide = decide;
    }

    /** Waits {@code delay} before each answer from now on. */
    public void delay(Duration delay) {
        this.delay = delay;
    }

    /** OK, asking the waypoint to set {@code header: value} on the request (none when {@code header} is null). */
    public static CheckResponse allow(String header, String value) {
        OkHttpResponse.Builder ok = OkHttpResponse.newBuilder();
        if (header != null) {
            ok.addHeaders(HeaderValueOption.newBuilder().setHeader(HeaderValue.newBuilder().setKey(header)
                    .setValue(value)).setAppendAction(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD));
        }
        return CheckResponse.newBuilder().setStatus(Status.newBuilder().setCode(0)).setOkResponse(ok).build();
    }

    /** PERMISSION_DENIED with the HTTP {@code status} and {@code body} the client is to get. */
    public static CheckResponse deny(int status, String body) {
        return CheckResponse.newBuilder().setStatus(Status.newBuilder().setCode(7)).setDeniedResponse(
                DeniedHttpResponse.newBuilder().setStatus(HttpStatus.newBuilder().setCode(StatusCode.forNumber(status)))
                        .setBody(body))
                .build();
    }

    /** Allows GET (and HEAD), denies anything else with 403 and {@code body}. */
    public static Function<CheckRequest, CheckResponse> allowGet(String body) {
        return r -> switch (r.getAttributes().getRequest().getHttp().getMethod()) {
            case "GET", "HEAD" -> allow(null, null);
            default -> deny(403, body);
        };
    }

    @Override
    public void close() {
        server.shutdownNow();
    }
}
