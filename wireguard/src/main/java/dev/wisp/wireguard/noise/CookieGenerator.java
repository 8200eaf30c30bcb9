package dev.wisp.wireguard.noise;

import dev.wisp.wireguard.crypto.Blake2s;
import dev.wisp.wireguard.crypto.XChaChaPoly;
import java.util.Arrays;
import java.util.Optional;

/**
 * The initiator side of the MAC layer for one peer: stamps mac1 (and mac2 while a cookie from the
 * peer is fresh) on the handshake messages we send, and decrypts the cookie replies the peer sends
 * when it is under load. Not thread-safe: the owning peer serialises calls.
 */
public final class CookieGenerator {
    private final byte[] mac1Key;
    private final byte[] cookieKey;
    private byte[] lastMac1;
    private byte[] cookie;
    private long cookieNanos;

    public CookieGenerator(byte[] remoteStatic) {
        this.mac1Key = Identity.mac1Key(remoteStatic);
        this.cookieKey = Identity.cookieKey(remoteStatic);
    }

    /** Fills mac1 and mac2 of {@code msg} in place. */
    public void stamp(byte[] msg, long nowNanos) {
        int len = msg.length;
        byte[] mac1 = Blake2s.mac(mac1Key, msg, 0, len - 32);
        System.arraycopy(mac1, 0, msg, len - 32, 16);
        lastMac1 = mac1;
        if (cookie != null && nowNanos - cookieNanos < CookieChecker.COOKIE_REFRESH_NANOS) {
            byte[] mac2 = Blake2s.mac(cookie, msg, 0, len - 16);
            System.arraycopy(mac2, 0, msg, len - 16, 16);
        } else {
            Arrays.fill(msg, len - 16, len, (byte) 0);
        }
    }

    /** Takes the cookie from a reply to our last message; false when it does not authenticate. */
    public boolean consumeReply(byte[] reply, long nowNanos) {
        if (lastMac1 == null) {
            return false;
        }
        byte[] nonce = Arrays.copyOfRange(reply, Messages.COOKIE_NONCE, Messages.COOKIE_ENCRYPTED);
        byte[] enc = Arrays.copyOfRange(reply, Messages.COOKIE_ENCRYPTED, Messages.COOKIE_REPLY_LEN);
        Optional<byte[]> c = XChaChaPoly.open(cookieKey, nonce, enc, lastMac1);
        if (c.isEmpty()) {
            return false;
        }
        cookie = c.get();
        cookieNanos = nowNanos;
        lastMac1 = null;
        return true;
    }
}
