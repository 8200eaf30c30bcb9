package dev.wisp.controlplane.envoy;

import com.google.protobuf.Any;
import dev.wisp.controlplane.model.ServiceDef.ServicePort;
import io.envoyproxy.envoy.config.core.v3.Http1ProtocolOptions;
import io.envoyproxy.envoy.config.core.v3.Http2ProtocolOptions;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig;
import java.util.Locale;

/**
 * The HTTP version a service port's endpoints speak, as Istio reads it: the port's {@code appProtocol},
 * else the prefix of its name before the first {@code -} ({@code http-web}, {@code grpc-api}). HTTP/1.1
 * for {@code http} (and Kubernetes' {@code kubernetes.io/ws}, {@code kubernetes.io/wss}); HTTP/2 for
 * {@code http2}, {@code grpc}, {@code grpc-web} and {@code kubernetes.io/h2c}; anything else is not
 * known, and the waypoint speaks to the endpoint what the client spoke to it. The protocol is never
 * guessed from the traffic: a server-first protocol would hang under sniffing.
 *
 * <p>Written on the port's cluster as Envoy reads it, {@code typed_extension_protocol_options} with
 * {@code envoy.extensions.upstreams.http.v3.HttpProtocolOptions}: {@code explicit_http_config} with HTTP/1.1
 * or HTTP/2 options, or {@code use_downstream_protocol_config}.
 */
enum UpstreamProtocol {
    HTTP1, HTTP2, AS_CLIENT;

    /** The key Envoy reads a cluster's HTTP protocol options under. */
    static final String OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

    static UpstreamProtocol of(ServicePort port) {
        String declared = port.appProtocol() != null && !port.appProtocol().isBlank()
                ? port.appProtocol()
                : port.name();
        String p = declared.toLowerCase(Locale.ROOT);
        if (port.appProtocol() == null || port.appProtocol().isBlank()) {
            // A name says its protocol before its first '-' (Istio's naming rule); grpc-web has one of its own.
            p = p.startsWith("grpc-web") ? "grpc-web" : p.split("-", 2)[0];
        }
        return switch (p) {
            case "http", "kubernetes.io/ws", "kubernetes.io/wss" -> HTTP1;
            case "http2", "grpc", "grpc-web", "kubernetes.io/h2c" -> HTTP2;
            default -> AS_CLIENT;
        };
    }

    /** The cluster's {@code HttpProtocolOptions}. */
    Any options() {
        HttpProtocolOptions.Builder b = HttpProtocolOptions.newBuilder();
        switch (this) {
            case HTTP1 -> b.setExplicitHttpConfig(ExplicitHttpConfig.newBuilder()
                    .setHttpProtocolOptions(Http1ProtocolOptions.getDefaultInstance()));
            case HTTP2 -> b.setExplicitHttpConfig(ExplicitHttpConfig.newBuilder()
                    .setHttp2ProtocolOptions(Http2ProtocolOptions.getDefaultInstance()));
            case AS_CLIENT -> b.setUseDownstreamProtocolConfig(UseDownstreamHttpConfig.getDefaultInstance());
        }
        return Any.pack(b.build());
    }
}
