package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

class LogLevelTest {
    @Test
    void wispLoggersAndTheRootMayGoToDebug() {
        LogLevel.set("dev.wisp.node.test", "debug");
        assertThat(((Logger) LoggerFactory.getLogger("dev.wisp.node.test")).getLevel()).isEqualTo(Level.DEBUG);
        LogLevel.set("dev.wisp.node.test", "info");
        assertThat(((Logger) LoggerFactory.getLogger("dev.wisp.node.test")).getLevel()).isEqualTo(Level.INFO);
    }

    @Test
    void loggersThatPrintHttp2HeadersStayAtInfoOrAbove() {
        for (String name : new String[]{"io.grpc", "io.grpc.netty.NettyClientHandler", "io.netty",
                "io.netty.handler.codec.http2.Http2FrameLogger", "io"}) {
            Level before = ((Logger) LoggerFactory.getLogger(name)).getLevel();
            for (String level : new String[]{"debug", "trace"}) {
                assertThatThrownBy(() -> LogLevel.set(name, level)).as(name + " at " + level)
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bearer token");
            }
            assertThat(((Logger) LoggerFactory.getLogger(name)).getLevel()).as(name).isEqualTo(before);
        }
        LogLevel.set("io.grpc", "error");
        assertThat(((Logger) LoggerFactory.getLogger("io.grpc")).getLevel()).isEqualTo(Level.ERROR);
        LogLevel.set("io.grpc", "warn");
    }

    @Test
    void anUnknownLevelIsRefusedNamingTheLevels() {
        assertThatThrownBy(() -> LogLevel.set("dev.wisp", "loud")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("error, warn, info, debug, trace");
    }
}
