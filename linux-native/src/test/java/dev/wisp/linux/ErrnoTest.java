package dev.wisp.linux;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ErrnoTest {
    @Test
    void knownErrnosHaveTheirNameDescriptionAndHint() {
        assertThat(Errno.name(Errno.EAGAIN)).isEqualTo("EAGAIN");
        assertThat(Errno.describe(107)).isEqualTo("transport endpoint is not connected");
        assertThat(Errno.hint(12)).isEqualTo("for BPF maps, check the locked-memory limit (ulimit -l)");
        assertThat(Errno.hint(Errno.ENOENT)).isNull();
        assertThat(Errno.name(95)).isEqualTo("EOPNOTSUPP");
    }

    @Test
    void anUnknownErrnoIsNamedByItsNumber() {
        assertThat(Errno.name(4242)).isEqualTo("errno 4242");
        assertThat(Errno.describe(4242)).isEqualTo("unknown error");
        assertThat(Errno.hint(4242)).isNull();
    }
}
