package dev.wisp.testing;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.util.List;
import org.slf4j.LoggerFactory;

/**
 * Captures what one logger writes (the access log, a TLS refusal, Netty's leak reports) for
 * assertions; {@link #close} detaches it. Logback appends under the appender's lock, so reads take
 * the same lock.
 */
public final class LogCapture implements AutoCloseable {
    private final Logger logger;
    private final ListAppender<ILoggingEvent> appender = new ListAppender<>();

    public LogCapture(String loggerName) {
        logger = (Logger) LoggerFactory.getLogger(loggerName);
        appender.start();
        logger.addAppender(appender);
    }

    public LogCapture(Class<?> logger) {
        this(logger.getName());
    }

    /** The formatted messages so far, oldest first. */
    public List<String> lines() {
        synchronized (appender) {
            return appender.list.stream().map(ILoggingEvent::getFormattedMessage).toList();
        }
    }

    /** The events so far that carry a throwable (a stack trace in the log), as "message: throwable class". */
    public List<String> withThrowables() {
        synchronized (appender) {
            return appender.list.stream().filter(e -> e.getThrowableProxy() != null).map(e -> e.getFormattedMessage()
                    + ": " + e.getThrowableProxy().getClassName()).toList();
        }
    }

    public void clear() {
        synchronized (appender) {
            appender.list.clear();
        }
    }

    @Override
    public void close() {
        logger.detachAppender(appender);
    }
}
