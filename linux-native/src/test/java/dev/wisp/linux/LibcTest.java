package dev.wisp.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LibcTest {
    @TempDir
    Path dir;

    @Test
    void readsAndWritesThroughFileDescriptors() throws Exception {
        Path file = dir.resolve("f");
        Files.writeString(file, "hello wisp");
        int fd = Libc.open(file.toString(), Libc.O_RDWR | Libc.O_CLOEXEC);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(arena);
            MemorySegment buf = arena.allocate(64);
            long n = Libc.read(fd, buf, 64, err);
            assertThat(n).isEqualTo(10);
            assertThat(new String(buf.asSlice(0, n).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
                    StandardCharsets.US_ASCII)).isEqualTo("hello wisp");
            MemorySegment more = arena.allocateFrom("!");
            assertThat(Libc.write(fd, more, 1, err)).isEqualTo(1);
        } finally {
            Libc.close(fd);
        }
        assertThat(Files.readString(file)).isEqualTo("hello wisp!");
    }

    @Test
    void failuresNameTheCallAndTheErrno() {
        assertThatThrownBy(() -> Libc.open(dir.resolve("missing").toString(), Libc.O_RDONLY))
                .isInstanceOf(NativeException.class)
                .hasMessageContaining("open(")
                .hasMessageContaining("ENOENT")
                .satisfies(e -> assertThat(((NativeException) e).errno()).isEqualTo(Errno.ENOENT));
        assertThatThrownBy(() -> Libc.close(-1)).isInstanceOf(NativeException.class).hasMessageContaining("EBADF");
    }

    @Test
    void permissionErrorsCarryAnOperatorHint() {
        NativeException e = new NativeException("bpf(BPF_PROG_LOAD)", Errno.EPERM);
        assertThat(e.getMessage()).contains("EPERM").contains("needs root");
    }

    @Test
    void getpidMatchesTheJvm() {
        assertThat((long) Libc.getpid()).isEqualTo(ProcessHandle.current().pid());
    }
}
