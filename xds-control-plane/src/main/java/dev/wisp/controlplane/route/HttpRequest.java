package dev.wisp.controlplane.route;

import static java.util.Objects.requireNonNull;

import java.util.List;
import java.util.Locale;

/**
 * One HTTP request as the route engine sees it (a value; where it came from is the caller's affair).
 *
 * @param method upper-case
 * @param path the path, starting with {@code /}, without the query
 * @param query the raw query after {@code ?}, or empty
 * @param host the authority ({@code Host} / {@code :authority}), possibly with a port
 * @param headers in arrival order, names lower-case; {@code host} is not among them
 */
public record HttpRequest(String method, String path, String query, String host, List<Header> headers) {
    public HttpRequest {
        requireNonNull(method, "method");
        requireNonNull(path, "path");
        requireNonNull(query, "query");
        requireNonNull(host, "host");
        headers = List.copyOf(headers);
    }

    /** One header line; the name lower-case. */
    public record Header(String name, String value) {
        public Header {
            name = name.toLowerCase(Locale.ROOT);
        }
    }

    /** gRPC is HTTP/2 with {@code content-type: application/grpc[+proto|…]}. */
    public boolean grpc() {
        return headers.stream().anyMatch(h -> h.name().equals("content-type")
                && h.value().toLowerCase(Locale.ROOT).startsWith("application/grpc"));
    }

    /** The host without a port (IPv6 literals keep their brackets). */
    public String hostName() {
        int colon = host.lastIndexOf(':');
        return colon > host.lastIndexOf(']') && colon >= 0 ? host.substring(0, colon) : host;
    }
}
