package dev.wisp.wireguard.noise;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.wireguard.Timers;
import org.junit.jupiter.api.Test;

class ReplayWindowTest {
    private static final long LIMIT = Timers.DEFAULTS.rejectAfterMessages();

    @Test
    void acceptsEachCounterOnceInAnyOrderWithinTheWindow() {
        ReplayWindow w = new ReplayWindow();
        assertThat(w.accept(0, LIMIT)).isTrue();
        assertThat(w.accept(0, LIMIT)).isFalse();
        assertThat(w.accept(2, LIMIT)).isTrue();
        assertThat(w.accept(1, LIMIT)).isTrue();
        assertThat(w.accept(1, LIMIT)).isFalse();
        assertThat(w.accept(8200, LIMIT)).isTrue();
        // 8200 - 72 = 8128: exactly at the window edge is still accepted, one further is not.
        assertThat(w.accept(72, LIMIT)).isTrue();
        assertThat(w.accept(71, LIMIT)).isFalse();
        assertThat(w.accept(8199, LIMIT)).isTrue();
        assertThat(w.accept(8200, LIMIT)).isFalse();
    }

    @Test
    void aJumpFarAheadClearsOldBitsAndRejectsEverythingBehindTheWindow() {
        ReplayWindow w = new ReplayWindow();
        for (long i = 0; i < 20_000; i++) {
            assertThat(w.accept(i, LIMIT)).isTrue();
        }
        assertThat(w.accept(1_000_000, LIMIT)).isTrue();
        assertThat(w.accept(1_000_000 - 64, LIMIT)).isTrue();
        assertThat(w.accept(1_000_000 - 64, LIMIT)).isFalse();
        assertThat(w.accept(19_999, LIMIT)).isFalse();
        assertThat(w.accept(1_000_000 - ReplayWindow.WINDOW - 1, LIMIT)).isFalse();
    }

    @Test
    void refusesCountersAtOrPastTheRejectLimit() {
        ReplayWindow w = new ReplayWindow();
        assertThat(w.accept(LIMIT, LIMIT)).isFalse();
        assertThat(w.accept(-1L, LIMIT)).isFalse();
        assertThat(w.accept(LIMIT - 1, LIMIT)).isTrue();
    }
}
