package dev.wisp.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class PrerequisitesTest {
    @Test
    void findsCommandsOnPath() {
        assertThat(Prerequisites.requireCommands("sh")).singleElement()
                .satisfies(p -> assertThat(p.getFileName().toString()).isEqualTo("sh"));
    }

    @Test
    void missingCommandFailsInsteadOfSkipping() {
        assertThatThrownBy(() -> Prerequisites.requireCommands("sh", "no-such-command-wisp"))
                .isInstanceOf(AssertionError.class)
                .hasMessageContaining("no-such-command-wisp")
                .hasMessageContaining("scripts/test.sh");
    }

    @Test
    void readsTheEffectiveUid() {
        assertThat(Prerequisites.uid()).isGreaterThanOrEqualTo(0);
    }
}
