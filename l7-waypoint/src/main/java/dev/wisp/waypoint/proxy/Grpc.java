package dev.wisp.waypoint.proxy;

import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import java.nio.charset.StandardCharsets;

/**
 * gRPC as the waypoint sees it: a request is gRPC when its {@code content-type} is
 * {@code application/grpc} (or a {@code +suffix} of it); the waypoint's own answers to one (no route,
 * refused, no endpoint…) are trailers-only gRPC responses (HTTP 200, the status in
 * {@code grpc-status}, the reason in {@code grpc-message}) with the HTTP status mapped as gRPC's HTTP
 * mapping and Envoy map it; a response's gRPC status is its {@code grpc-status} trailer (or header,
 * for a trailers-only response).
 */
final class Grpc {
    static final int UNKNOWN = 2;
    static final String STATUS = "grpc-status";
    static final String MESSAGE = "grpc-message";

    private Grpc() {}

    static boolean is(HttpHeaders request) {
        String type = request.get(HttpHeaderNames.CONTENT_TYPE);
        return type != null && (type.equals("application/grpc") || type.startsWith("application/grpc+")
                || type.startsWith("application/grpc;"));
    }

    /** The gRPC status of an HTTP status the waypoint answers with. */
    static int status(int http) {
        return switch (http) {
            case 400 -> 13; // INTERNAL
            case 401 -> 16; // UNAUTHENTICATED
            case 403 -> 7; // PERMISSION_DENIED
            case 404 -> 12; // UNIMPLEMENTED
            case 429, 502, 503, 504 -> 14; // UNAVAILABLE
            default -> UNKNOWN;
        };
    }

    /** The trailers-only answer to a gRPC request the waypoint answers with {@code http} itself. */
    static FullHttpResponse answer(int http, String reason) {
        return answerStatus(status(http), reason);
    }

    /** The trailers-only answer with gRPC status {@code code}. */
    static FullHttpResponse answerStatus(int code, String reason) {
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/grpc").setInt(STATUS, code).set(MESSAGE,
                percentEncoded(reason));
        return r;
    }

    /** The gRPC status of a backend's answer: its trailer, else its header, else mapped from HTTP. */
    static String status(FullHttpResponse r) {
        return status(r.status().code(), r.headers(), r.trailingHeaders());
    }

    /**
     * The gRPC status of an answer with status {@code http}, head {@code headers} and {@code trailers}
     * (empty when it ended without them): the trailer, else the header, else mapped from HTTP.
     */
    static String status(int http, HttpHeaders headers, HttpHeaders trailers) {
        String s = trailers.get(STATUS);
        if (s == null) {
            s = headers.get(STATUS);
        }
        return s != null ? s : String.valueOf(http == 200 ? UNKNOWN : status(http));
    }

    /** {@code grpc-message}'s encoding: printable ASCII but {@code %} as is, every other byte as {@code %XX}. */
    static String percentEncoded(String s) {
        StringBuilder b = new StringBuilder();
        for (byte x : s.getBytes(StandardCharsets.UTF_8)) {
            if (x >= 0x20 && x <= 0x7e && x != '%') {
                b.append((char) x);
            } else {
                b.append(String.format("%%%02X", x & 0xff));
            }
        }
        return b.toString();
    }
}
