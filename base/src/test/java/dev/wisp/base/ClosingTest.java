package dev.wisp.base;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClosingTest {
    @Test
    void closesInOrderAndSkipsWhatWasNeverOpened() {
        List<String> closed = new ArrayList<>();
        Closing.inOrder(() -> closed.add("a"), null, () -> closed.add("b"));
        assertThat(closed).containsExactly("a", "b");
    }

    @Test
    void aFailureDoesNotKeepTheRestOpenAndTheFirstIsThrownWithTheOthersSuppressed() {
        List<String> closed = new ArrayList<>();
        IllegalStateException first = new IllegalStateException("first");
        assertThatThrownBy(() -> Closing.inOrder(() -> {
            throw first;
        }, () -> closed.add("b"), () -> {
            throw new IOException("second");
        }, () -> closed.add("d"))).isSameAs(first);
        assertThat(closed).containsExactly("b", "d");
        assertThat(first.getSuppressed()).singleElement().satisfies(s -> assertThat(s).hasMessage("second"));
    }

    @Test
    void aCheckedFailureIsWrappedWithItsCause() {
        IOException io = new IOException("disk");
        assertThatThrownBy(() -> Closing.inOrder(() -> {
            throw io;
        })).isInstanceOf(IllegalStateException.class).hasCause(io).hasMessageContaining("disk");
    }
}
