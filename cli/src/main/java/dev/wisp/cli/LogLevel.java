package dev.wisp.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import org.slf4j.LoggerFactory;

/** The launcher's one way to change a log level (logback), for {@code --log-level}, $WISP_LOG and the agent's {@code /logging}. */
final class LogLevel {
    private LogLevel() {}

    /**
     * Sets {@code logger} ({@code ROOT} for all) to {@code level}.
     *
     * @throws IllegalArgumentException naming the levels when {@code level} is not one of them
     */
    static void set(String logger, String level) {
        Level parsed = Level.toLevel(level, null);
        if (parsed == null) {
            throw new IllegalArgumentException("'" + level + "' is not one of error, warn, info, debug, trace");
        }
        ((Logger) LoggerFactory.getLogger(logger)).setLevel(parsed);
    }
}
