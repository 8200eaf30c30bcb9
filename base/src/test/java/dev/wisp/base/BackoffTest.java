package dev.wisp.base;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class BackoffTest {
    static final Backoff RECONNECT = new Backoff(Duration.ofMillis(500), Duration.ofSeconds(30), 0.2);

    @ParameterizedTest(name = "attempt {0}, draw {1} -> {2} ms")
    @CsvSource({"0, 0.5, 500", "1, 0.5, 1000", "2, 0.5, 2000", "5, 0.5, 16000", "6, 0.5, 30000", "100, 0.5, 30000",
            "0, 0.0, 400", "0, 1.0, 600", "100, 0.0, 24000", "100, 1.0, 36000"})
    void doublesUpToTheCapThenSpreadsByTheJitter(int attempt, double draw, long millis) {
        assertThat(RECONNECT.delay(attempt, draw)).isEqualTo(Duration.ofMillis(millis));
    }

    @Test
    void withoutJitterTheDelayIsExact() {
        Backoff exact = new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(4), 0);
        assertThat(exact.delay(0, 0.9)).isEqualTo(Duration.ofSeconds(1));
        assertThat(exact.delay(3, 0.1)).isEqualTo(Duration.ofSeconds(4));
    }

    @Test
    void nonsensicalSettingsAreRefused() {
        assertThatThrownBy(() -> new Backoff(Duration.ZERO, Duration.ofSeconds(1), 0.2))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("initial PT0S");
        assertThatThrownBy(() -> new Backoff(Duration.ofSeconds(2), Duration.ofSeconds(1), 0.2))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(2), 1.0))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> RECONNECT.delay(-1, 0.5)).isInstanceOf(IllegalArgumentException.class);
    }
}
