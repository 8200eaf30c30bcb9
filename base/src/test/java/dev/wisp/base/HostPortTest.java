package dev.wisp.base;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class HostPortTest {
    @ParameterizedTest(name = "{0}")
    @CsvSource({"10.0.0.2:15012, 10.0.0.2, 15012", "'[fd00::2]:15012', fd00::2, 15012", "cp.local:0, cp.local, 0",
            "'::1:80', ::1, 80"})
    void parsesHostAndPort(String text, String host, int port) {
        assertThat(HostPort.parse(text)).isEqualTo(new HostPort(host, port));
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"10.0.0.2", ":15012", "10.0.0.2:", "10.0.0.2:x", "10.0.0.2:65536", "10.0.0.2:-1",
            "[fd00::2:15012", "[]:1"})
    void refusesWhatIsNotHostPort(String text) {
        assertThatThrownBy(() -> HostPort.parse(text)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("'" + text + "' is not HOST:PORT");
    }
}
