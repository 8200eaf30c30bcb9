package dev.wisp.linux;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PollFdTest {
    @TempDir
    Path dir;

    /**
     * A FIFO opened for reading and writing in one descriptor (Linux allows it): writable at once,
     * not readable until a byte is in it (the wait ends at its time-out), then readable.
     */
    @Test
    void awaitsWhatTheDescriptorCanDoAndSaysNoWhenTheTimeOutEndsTheWait() throws Exception {
        Path fifo = dir.resolve("fifo");
        assertThat(new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start().waitFor()).isZero();
        int fd = Libc.open(fifo.toString(), Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            PollFd poll = new PollFd(arena);
            assertThat(poll.await(fd, PollFd.OUT, 0)).as("writable").isTrue();
            assertThat(poll.await(fd, PollFd.IN, 200)).as("readable with nothing written").isFalse();
            MemorySegment oneByte = arena.allocate(1);
            assertThat(Libc.write(fd, oneByte, 1, Libc.newErrnoBuffer(arena))).isEqualTo(1);
            assertThat(poll.await(fd, PollFd.IN, 60_000)).as("readable with a byte in it").isTrue();
        } finally {
            Libc.close(fd);
        }
    }
}
