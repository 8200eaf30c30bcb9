package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import org.junit.jupiter.api.Test;

/** What makes a request gRPC, the statuses of the waypoint's own answers, and a backend answer's status. */
class GrpcTest {
    @Test
    void aRequestIsGrpcByItsContentType() {
        assertThat(Grpc.is(new DefaultHttpHeaders().set("content-type", "application/grpc"))).isTrue();
        assertThat(Grpc.is(new DefaultHttpHeaders().set("content-type", "application/grpc+proto"))).isTrue();
        assertThat(Grpc.is(new DefaultHttpHeaders().set("content-type", "application/grpc-web"))).isFalse();
        assertThat(Grpc.is(new DefaultHttpHeaders().set("content-type", "application/json"))).isFalse();
        assertThat(Grpc.is(new DefaultHttpHeaders())).isFalse();
    }

    @Test
    void theWaypointsAnswersAreTrailersOnlyWithEnvoysMapping() {
        FullHttpResponse denied = Grpc.answer(403, "RBAC: access denied by ns/deny-b");
        assertThat(denied.status().code()).isEqualTo(200);
        assertThat(denied.content().readableBytes()).isZero();
        assertThat(denied.headers().get("content-type")).isEqualTo("application/grpc");
        assertThat(denied.headers().get("grpc-status")).isEqualTo("7");
        assertThat(denied.headers().get("grpc-message")).isEqualTo("RBAC: access denied by ns/deny-b");
        assertThat(Grpc.answer(404, "no route").headers().get("grpc-status")).isEqualTo("12");
        assertThat(Grpc.answer(503, "no endpoint").headers().get("grpc-status")).isEqualTo("14");
        assertThat(Grpc.answer(504, "timeout").headers().get("grpc-status")).isEqualTo("14");
        assertThat(Grpc.answer(401, "bad token").headers().get("grpc-status")).isEqualTo("16");
        assertThat(Grpc.answer(500, "invalid backend").headers().get("grpc-status")).isEqualTo("2");
        assertThat(Grpc.answer(400, "50% \"ü\"\n").headers().get("grpc-message")).isEqualTo("50%25 \"%C3%BC\"%0A");
    }

    @Test
    void aBackendsStatusIsItsTrailerElseItsHeaderElseMappedFromHttp() {
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
        r.trailingHeaders().set("grpc-status", "5");
        assertThat(Grpc.status(r)).isEqualTo("5");
        FullHttpResponse trailersOnly = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
        trailersOnly.headers().set("grpc-status", "3");
        assertThat(Grpc.status(trailersOnly)).isEqualTo("3");
        assertThat(Grpc.status(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.BAD_GATEWAY)))
                .isEqualTo("14");
        assertThat(Grpc.status(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK)))
                .isEqualTo("2");
    }
}
