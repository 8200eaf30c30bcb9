package dev.wisp.node.xds;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.random.RandomGenerator;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class BackoffTest {
    /** A generator that always returns {@code value} from nextDouble. */
    static RandomGenerator fixed(double value) {
        return new RandomGenerator() {
            @Override
            public long nextLong() {
                return 0;
            }

            @Override
            public double nextDouble() {
                return value;
            }
        };
    }

    @ParameterizedTest(name = "attempt {0}, random {1} -> {2} ms")
    @CsvSource({"0, 0.5, 500", "1, 0.5, 1000", "2, 0.5, 2000", "5, 0.5, 16000", "6, 0.5, 30000", "100, 0.5, 30000",
            "0, 0.0, 400", "0, 1.0, 600", "100, 0.0, 24000"})
    void doublesUpToTheCapWithTwentyPercentJitter(int attempt, double random, long millis) {
        assertThat(Backoff.DEFAULT.delay(attempt, fixed(random))).isEqualTo(Duration.ofMillis(millis));
    }

    @Test
    void nonsensicalSettingsAreRefused() {
        assertThatThrownBy(() -> new Backoff(Duration.ZERO, Duration.ofSeconds(1), 0.2))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Backoff(Duration.ofSeconds(2), Duration.ofSeconds(1), 0.2))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
