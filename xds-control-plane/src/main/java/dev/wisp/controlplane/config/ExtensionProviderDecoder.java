package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.ExtensionProvider;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * MeshConfig's {@code spec.extensionProviders} in Istio's schema: each entry a {@code name} and one
 * provider kind, of which only {@code envoyExtAuthzGrpc} is read ({@code service}, {@code port},
 * {@code timeout}, {@code failOpen}, {@code statusOnError}); any other kind, or a field of it this
 * waypoint does not apply ({@code clearRouteCache}, {@code includeRequestBodyInCheck}), is refused with
 * its field named rather than dropped.
 */
final class ExtensionProviderDecoder {
    private static final Pattern HOST = ConfigDecoder.DNS_SUBDOMAIN;
    private static final Pattern IP = Pattern.compile("[0-9.]+|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*");
    static final String GRPC = "envoyExtAuthzGrpc";

    private ExtensionProviderDecoder() {}

    static List<ExtensionProvider> decode(Fields f, YNode spec) {
        List<ExtensionProvider> out = new ArrayList<>();
        Set<String> names = new HashSet<>();
        f.each(spec, "extensionProviders", "spec.extensionProviders", (item, path) -> {
            String name = f.string(item, "name", path + ".name");
            if (name == null || name.isBlank()) {
                f.error(item, path + ".name", "required");
                return;
            }
            if (!names.add(name)) {
                f.error(f.child(item, "name"), path + ".name", "'" + name + "' is named twice");
            }
            if (!item.isMap()) {
                return;
            }
            for (String kind : item.map().keySet()) {
                if (!kind.equals("name") && !kind.equals(GRPC)) {
                    f.error(item.map().get(kind), path + "." + kind, "not supported: only " + GRPC
                            + " (Envoy's ext_authz over gRPC) is");
                }
            }
            YNode grpc = f.child(item, GRPC);
            if (grpc == null) {
                if (item.map().size() == 1) {
                    f.error(item, path, "needs a provider kind (" + GRPC + ")");
                }
                return;
            }
            ExtensionProvider p = grpc(f, grpc, path + "." + GRPC, name);
            if (p != null) {
                out.add(p);
            }
        });
        return out;
    }

    private static ExtensionProvider grpc(Fields f, YNode grpc, String path, String name) {
        f.allowOnly(grpc, path, "service", "port", "timeout", "failOpen", "statusOnError");
        String service = f.string(grpc, "service", path + ".service");
        if (service == null) {
            f.error(grpc, path + ".service", "required");
        } else if (IP.matcher(service).matches() ? !isAddress(service) : !HOST.matcher(service).matches()) {
            f.error(f.child(grpc, "service"), path + ".service", "'" + service
                    + "' is neither a host name nor an IP address");
            service = null;
        }
        String portText = f.string(grpc, "port", path + ".port");
        int port = -1;
        if (portText == null) {
            f.error(grpc, path + ".port", "required");
        } else {
            port = f.port(f.child(grpc, "port"), portText, path + ".port");
        }
        Duration timeout = RouteFilterDecoder.duration(f, grpc, "timeout", path + ".timeout");
        if (timeout != null && timeout.isZero()) {
            f.error(f.child(grpc, "timeout"), path + ".timeout", "must be more than 0");
        }
        String failOpen = f.string(grpc, "failOpen", path + ".failOpen");
        if (failOpen != null && !failOpen.equals("true") && !failOpen.equals("false")) {
            f.error(f.child(grpc, "failOpen"), path + ".failOpen", "'" + failOpen + "' is not true or false");
        }
        String status = f.string(grpc, "statusOnError", path + ".statusOnError");
        int statusOnError = 403;
        if (status != null) {
            statusOnError = status.matches("[1-5][0-9][0-9]") ? Integer.parseInt(status) : -1;
            if (statusOnError < 200) {
                f.error(f.child(grpc, "statusOnError"), path + ".statusOnError", "'" + status
                        + "' is not an HTTP status (200-599)");
            }
        }
        if (service == null || port < 0 || statusOnError < 200) {
            return null;
        }
        return new ExtensionProvider(name, service, port, timeout == null
                ? ExtensionProvider.DEFAULT_TIMEOUT
                : timeout, "true".equals(failOpen), statusOnError);
    }

    private static boolean isAddress(String s) {
        try {
            InetAddress.ofLiteral(s);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
