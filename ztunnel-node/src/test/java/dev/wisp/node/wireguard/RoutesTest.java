package dev.wisp.node.wireguard;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RoutesTest {
    @Test
    void aBatchsFailedLinesAreReadFromIpsMessagesAndTheFailureNamesTheLine() {
        String err = """
                RTNETLINK answers: No such file or directory
                Command failed -:1
                RTNETLINK answers: No such file or directory
                Command failed -:2
                RTNETLINK answers: File exists
                Command failed -:17
                """;
        Routes.Batch b = Routes.Batch.of(err);
        assertThat(b.failed()).isEqualTo(Set.of(1, 2, 17));
        List<String> lines = new java.util.ArrayList<>(java.util.Collections.nCopies(16, "rule del pref 5200"));
        lines.add("rule add pref 5200 lookup 51820");
        assertThat(b.failure("-4", lines, 17)).hasMessageStartingWith(
                "'ip -4 rule add pref 5200 lookup 51820' failed: ").hasMessageContaining("File exists");
    }

    @Test
    void aBatchWithNoFailedLineHasNone() {
        assertThat(Routes.Batch.of("").failed()).isEmpty();
    }
}
