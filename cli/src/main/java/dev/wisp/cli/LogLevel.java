package dev.wisp.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import java.util.List;
import org.slf4j.LoggerFactory;

/** The launcher's one way to change a log level (logback), for {@code --log-level}, $WISP_LOG and the agent's {@code /logging}. */
final class LogLevel {
    /**
     * Libraries whose DEBUG output prints HTTP/2 headers (their frame loggers), the control plane
     * credential among them: never below INFO through this door.
     */
    private static final List<String> HEADER_LOGGERS = List.of("io.grpc", "io.netty");

    private LogLevel() {}

    /**
     * Sets {@code logger} ({@code ROOT} for all) to {@code level}.
     *
     * @throws IllegalArgumentException naming the levels when {@code level} is not one of them, and
     *             when it would make gRPC's or Netty's frame loggers print headers (a bearer token)
     */
    static void set(String logger, String level) {
        Level parsed = Level.toLevel(level, null);
        if (parsed == null) {
            throw new IllegalArgumentException("'" + level + "' is not one of error, warn, info, debug, trace");
        }
        if (!parsed.isGreaterOrEqual(Level.INFO) && printsHeaders(logger)) {
            throw new IllegalArgumentException("'" + logger + "' stays at info or above: at " + level
                    + " gRPC's and Netty's HTTP/2 frame loggers print headers, the agent's bearer token among "
                    + "them (an operator who accepts that can use -Dlogback.configurationFile)");
        }
        ((Logger) LoggerFactory.getLogger(logger)).setLevel(parsed);
    }

    /** Whether {@code logger} is one of {@link #HEADER_LOGGERS}, one of their parents or children. */
    private static boolean printsHeaders(String logger) {
        return HEADER_LOGGERS.stream().anyMatch(h -> h.equals(logger) || h.startsWith(logger + ".")
                || logger.startsWith(h + "."));
    }
}
