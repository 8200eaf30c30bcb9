package dev.wisp.base;

import static java.util.Objects.requireNonNull;

/**
 * A {@code HOST:PORT} the operator wrote ({@code 10.0.0.2:15012}, {@code [fd00::2]:15012},
 * {@code cp.local:15012}): the one parser of such options, so that every command reads them alike.
 *
 * @param host the host without brackets
 * @param port 0-65535
 */
public record HostPort(String host, int port) {
    public HostPort {
        requireNonNull(host, "host");
        if (host.isEmpty() || port < 0 || port > 65535) {
            throw new IllegalArgumentException("'" + host + ":" + port + "' is not HOST:PORT");
        }
    }

    /** Parses {@code text}; the message of a refusal quotes it and shows the expected form. */
    public static HostPort parse(String text) {
        requireNonNull(text, "text");
        int colon = text.lastIndexOf(':');
        int port = -1;
        if (colon > 0) {
            try {
                port = Integer.parseInt(text.substring(colon + 1));
            } catch (NumberFormatException e) {
                port = -1;
            }
        }
        String host = colon > 0 ? text.substring(0, colon) : "";
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        if (port < 0 || port > 65535 || host.isEmpty() || host.contains("[") || host.contains("]")) {
            throw new IllegalArgumentException("'" + text + "' is not HOST:PORT (e.g. 10.0.0.2:15012 or "
                    + "[fd00::2]:15012)");
        }
        return new HostPort(host, port);
    }
}
