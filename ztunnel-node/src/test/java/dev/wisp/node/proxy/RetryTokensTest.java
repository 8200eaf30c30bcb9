package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The Retry token: bound to the client's address and port and the original connection ID, short-lived, unforgeable. */
class RetryTokensTest {
    static final InetSocketAddress CLIENT = new InetSocketAddress("10.0.0.7", 40000);
    static final byte[] ODCID = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    final AtomicLong now = new AtomicLong(1_000_000);
    final RetryTokens tokens = new RetryTokens(new byte[32], now::get, Duration.ofSeconds(10));

    ByteBuf token() {
        ByteBuf out = Unpooled.buffer(tokens.maxTokenLength());
        assertThat(tokens.writeToken(out, Unpooled.wrappedBuffer(ODCID), CLIENT)).isTrue();
        return out;
    }

    @Test
    void aTokenIsValidForItsAddressAndGivesTheOriginalConnectionIdBack() {
        ByteBuf t = token();
        now.addAndGet(9_000);
        int offset = tokens.validateToken(t, CLIENT);
        assertThat(offset).isEqualTo(RetryTokens.ODCID_OFFSET);
        byte[] odcid = new byte[t.readableBytes() - offset];
        t.getBytes(offset, odcid);
        assertThat(odcid).containsExactly(ODCID);
        assertThat(t.readableBytes()).isLessThanOrEqualTo(tokens.maxTokenLength());
    }

    @Test
    void aTokenForAnotherAddressOrPortIsRefused() {
        assertThat(tokens.validateToken(token(), new InetSocketAddress("10.0.0.8", 40000))).isEqualTo(-1);
        assertThat(tokens.validateToken(token(), new InetSocketAddress("10.0.0.7", 40001))).isEqualTo(-1);
    }

    @Test
    void anExpiredOrFutureTokenIsRefused() {
        ByteBuf t = token();
        now.addAndGet(10_001);
        assertThat(tokens.validateToken(t, CLIENT)).as("expired").isEqualTo(-1);
        now.set(1_000_000 - 1_001);
        assertThat(tokens.validateToken(t, CLIENT)).as("issued in the future").isEqualTo(-1);
    }

    @Test
    void aTamperedTokenIsRefused() {
        ByteBuf good = token();
        for (int i = 0; i < good.readableBytes(); i++) { // every byte: version, time, MAC, connection ID
            ByteBuf t = good.copy();
            t.setByte(i, t.getByte(i) ^ 0x01);
            assertThat(tokens.validateToken(t, CLIENT)).as("byte %d flipped", i).isEqualTo(-1);
        }
        assertThat(tokens.validateToken(good.copy(0, RetryTokens.ODCID_OFFSET - 1), CLIENT)).as("short").isEqualTo(-1);
        ByteBuf longer = Unpooled.buffer().writeBytes(good.copy()).writeZero(tokens.maxTokenLength());
        assertThat(tokens.validateToken(longer, CLIENT)).as("too long").isEqualTo(-1);
    }

    @Test
    void anotherProcessKeyRefusesTheToken() {
        byte[] other = new byte[32];
        other[0] = 1;
        assertThat(new RetryTokens(other, now::get, Duration.ofSeconds(10)).validateToken(token(), CLIENT))
                .isEqualTo(-1);
        assertThat(tokens.validateToken(token(), CLIENT)).isEqualTo(RetryTokens.ODCID_OFFSET);
    }
}
