package dev.wisp.wireguard.noise;

import dev.wisp.wireguard.crypto.Blake2s;
import dev.wisp.wireguard.crypto.XChaChaPoly;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * The responder side of WireGuard's MAC layer: checks mac1 (always, before any Diffie-Hellman
 * work), checks mac2 against a cookie bound to the sender's address, and builds cookie replies. The
 * cookie secret rotates every {@link #COOKIE_REFRESH_NANOS}. Thread-safe: the secret is guarded by
 * this object's monitor; mac1 checks touch only immutable state.
 */
public final class CookieChecker {
    public static final long COOKIE_REFRESH_NANOS = 120_000_000_000L;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final byte[] mac1Key;
    private final byte[] cookieKey;
    /** Guarded by {@code this}. */
    private final byte[] secret = new byte[32];
    /** Guarded by {@code this}. */
    private long secretSetNanos;
    /** Guarded by {@code this}. */
    private boolean secretSet;

    public CookieChecker(Identity local) {
        this.mac1Key = local.mac1Key();
        this.cookieKey = local.cookieKey();
    }

    /** Whether the mac1 field (32 bytes before the end) is valid for our public key. */
    public boolean checkMac1(byte[] msg, int len) {
        byte[] mac = Blake2s.mac(mac1Key, msg, 0, len - 32);
        return MessageDigest.isEqual(mac, Arrays.copyOfRange(msg, len - 32, len - 16));
    }

    /** Whether mac2 (the last 16 bytes) carries a valid cookie for {@code source}. */
    public boolean checkMac2(byte[] msg, int len, byte[] source, long nowNanos) {
        byte[] cookie = cookie(source, nowNanos);
        byte[] mac = Blake2s.mac(cookie, msg, 0, len - 16);
        return MessageDigest.isEqual(mac, Arrays.copyOfRange(msg, len - 16, len));
    }

    private synchronized byte[] cookie(byte[] source, long nowNanos) {
        if (!secretSet || nowNanos - secretSetNanos >= COOKIE_REFRESH_NANOS) {
            RANDOM.nextBytes(secret);
            secretSetNanos = nowNanos;
            secretSet = true;
        }
        return Blake2s.mac(secret, source, 0, source.length);
    }

    /** A cookie reply to {@code msg} (an initiation or response) that came from {@code source}. */
    public byte[] createReply(byte[] msg, int len, byte[] source, long nowNanos) {
        byte[] reply = new byte[Messages.COOKIE_REPLY_LEN];
        reply[0] = Messages.TYPE_COOKIE_REPLY;
        System.arraycopy(msg, 4, reply, Messages.COOKIE_RECEIVER, 4);
        byte[] nonce = new byte[XChaChaPoly.NONCE_LEN];
        RANDOM.nextBytes(nonce);
        System.arraycopy(nonce, 0, reply, Messages.COOKIE_NONCE, nonce.length);
        byte[] mac1 = Arrays.copyOfRange(msg, len - 32, len - 16);
        byte[] enc = XChaChaPoly.seal(cookieKey, nonce, cookie(source, nowNanos), mac1);
        System.arraycopy(enc, 0, reply, Messages.COOKIE_ENCRYPTED, enc.length);
        return reply;
    }
}
