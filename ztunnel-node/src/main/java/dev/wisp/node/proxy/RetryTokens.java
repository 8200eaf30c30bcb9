package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.quic.QuicTokenHandler;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.function.LongSupplier;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * QUIC address validation (RFC 9000 §8.1.2) for the HBONE server: an Initial without a token is
 * answered with a Retry carrying a token, and only an Initial with a valid token makes a connection
 * (quiche state, TLS). A client that spoofs its source address never sees the Retry, so a flood of
 * spoofed Initials costs the server one HMAC and one small datagram each, and no handshake.
 *
 * <p>Token: {@code version (1) | issued at, ms since the epoch (8) | HMAC-SHA256 (32) | original
 * destination connection ID}. The MAC covers the version, the time, the client's IP address and
 * port, and the original connection ID, under a random key made per process (tokens die with the
 * agent: a Retry token is used one round trip after it is issued, never across restarts). A token
 * is valid for {@link #VALIDITY} from its issue (a client answers a Retry within one round trip;
 * the margin is for loaded machines) and not from the future beyond {@link #CLOCK_SKEW}; the MAC is
 * compared in constant time.
 *
 * <p>Thread-safe (a {@link Mac} per thread); used by the server codec on its event loop.
 */
final class RetryTokens implements QuicTokenHandler {
    static final Duration VALIDITY = Duration.ofSeconds(10);
    static final Duration CLOCK_SKEW = Duration.ofSeconds(1);
    private static final byte VERSION = 1;
    private static final int MAC_LENGTH = 32;
    /** Where the original destination connection ID starts in a token. */
    static final int ODCID_OFFSET = 1 + Long.BYTES + MAC_LENGTH;
    /** QUIC connection IDs are at most 20 bytes (RFC 9000 §17.2). */
    private static final int MAX_CID = 20;
    private final SecretKeySpec key;
    private final LongSupplier nowMillis;
    private final long validityMillis;
    private final ThreadLocal<Mac> macs;

    RetryTokens(byte[] key, LongSupplier nowMillis, Duration validity) {
        this.key = new SecretKeySpec(requireNonNull(key, "key").clone(), "HmacSHA256");
        this.nowMillis = requireNonNull(nowMillis, "nowMillis");
        this.validityMillis = requireNonNull(validity, "validity").toMillis();
        this.macs = ThreadLocal.withInitial(() -> {
            try {
                Mac m = Mac.getInstance("HmacSHA256");
                m.init(this.key);
                return m;
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("HmacSHA256 is not available in this JVM: " + e.getMessage(), e);
            }
        });
    }

    /** Tokens under a fresh random key, valid for {@link #VALIDITY}. */
    static RetryTokens create() {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        return new RetryTokens(key, System::currentTimeMillis, VALIDITY);
    }

    @Override
    public boolean writeToken(ByteBuf out, ByteBuf dcid, InetSocketAddress address) {
        if (dcid.readableBytes() > MAX_CID) {
            return false;
        }
        byte[] odcid = new byte[dcid.readableBytes()];
        dcid.getBytes(dcid.readerIndex(), odcid);
        long issued = nowMillis.getAsLong();
        out.writeByte(VERSION).writeLong(issued).writeBytes(mac(issued, address, odcid)).writeBytes(odcid);
        return true;
    }

    @Override
    public int validateToken(ByteBuf token, InetSocketAddress address) {
        int length = token.readableBytes();
        if (length < ODCID_OFFSET || length > maxTokenLength()) {
            return -1;
        }
        int at = token.readerIndex();
        if (token.getByte(at) != VERSION) {
            return -1;
        }
        long issued = token.getLong(at + 1);
        long age = nowMillis.getAsLong() - issued;
        if (age > validityMillis || age < -CLOCK_SKEW.toMillis()) {
            return -1;
        }
        byte[] mac = new byte[MAC_LENGTH];
        token.getBytes(at + 1 + Long.BYTES, mac);
        byte[] odcid = new byte[length - ODCID_OFFSET];
        token.getBytes(at + ODCID_OFFSET, odcid);
        return MessageDigest.isEqual(mac, mac(issued, address, odcid)) ? ODCID_OFFSET : -1;
    }

    @Override
    public int maxTokenLength() {
        return ODCID_OFFSET + MAX_CID;
    }

    private byte[] mac(long issued, InetSocketAddress address, byte[] odcid) {
        byte[] ip = address.getAddress().getAddress();
        ByteBuffer input = ByteBuffer.allocate(1 + Long.BYTES + 1 + ip.length + Short.BYTES + odcid.length)
                .put(VERSION).putLong(issued).put((byte) ip.length).put(ip).putShort((short) address.getPort())
                .put(odcid);
        return macs.get().doFinal(input.array());
    }
}
