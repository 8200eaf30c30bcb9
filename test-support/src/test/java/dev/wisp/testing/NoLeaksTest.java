package dev.wisp.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The leak check finds a buffer that was never released, and nothing when every buffer was. */
class NoLeaksTest {
    @Test
    void aBufferWithoutItsReleaseIsReported() {
        NoLeaks.install();
        NoLeaks.check();
        leakOne();
        List<String> leaks = NoLeaks.check();
        assertThat(leaks).as("leak records").hasSize(1);
        assertThat(leaks.getFirst()).startsWith("ByteBuf: ").contains("leakOne");
    }

    @Test
    void releasedBuffersAreNotReported() {
        NoLeaks.install();
        NoLeaks.check();
        ByteBuf b = PooledByteBufAllocator.DEFAULT.directBuffer(16);
        b.writeInt(7);
        b.release();
        assertThat(NoLeaks.check()).isEmpty();
    }

    /** Allocates, touches and drops a buffer: the touch puts this method's name in the leak record. */
    private static void leakOne() {
        ByteBuf b = PooledByteBufAllocator.DEFAULT.directBuffer(16);
        b.writeInt(42);
        b.touch("leakOne");
    }
}
