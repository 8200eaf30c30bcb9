package dev.wisp.wireguard.noise;

import dev.wisp.wireguard.crypto.Blake2s;
import dev.wisp.wireguard.crypto.X25519;
import java.nio.charset.StandardCharsets;

/**
 * A static key pair with what the MAC and cookie layers derive from its public key. Immutable after
 * construction; {@link #wipe} zeroes the private key when the device drops it.
 */
public final class Identity {
    static final byte[] LABEL_MAC1 = "mac1----".getBytes(StandardCharsets.US_ASCII);
    static final byte[] LABEL_COOKIE = "cookie--".getBytes(StandardCharsets.US_ASCII);

    private final byte[] privateKey;
    private final byte[] publicKey;
    private final byte[] mac1Key;
    private final byte[] cookieKey;

    /** {@code privateKey} is copied and clamped. */
    public Identity(byte[] privateKey) {
        this.privateKey = X25519.clamp(privateKey.clone());
        this.publicKey = X25519.publicKey(this.privateKey);
        this.mac1Key = mac1Key(publicKey);
        this.cookieKey = cookieKey(publicKey);
    }

    public byte[] privateKey() {
        return privateKey;
    }

    public byte[] publicKey() {
        return publicKey;
    }

    /** HASH("mac1----" || public key): the key others use for mac1 of messages sent to us. */
    public byte[] mac1Key() {
        return mac1Key;
    }

    /** HASH("cookie--" || public key): encrypts the cookie replies we send. */
    public byte[] cookieKey() {
        return cookieKey;
    }

    public static byte[] mac1Key(byte[] publicKey) {
        return Blake2s.hash(LABEL_MAC1, publicKey);
    }

    public static byte[] cookieKey(byte[] publicKey) {
        return Blake2s.hash(LABEL_COOKIE, publicKey);
    }

    public void wipe() {
        X25519.wipe(privateKey);
    }
}
