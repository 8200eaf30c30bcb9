package dev.wisp.wireguard;

import static java.util.Objects.requireNonNull;

import dev.wisp.wireguard.crypto.X25519;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;

/**
 * A 32-byte WireGuard key (private, public or preshared): base64 as {@code wg} prints it, hex as the
 * UAPI speaks it. {@link #toString} never prints the key material, so a key in a log line leaks
 * nothing. Immutable; equality is constant-time.
 */
public final class Key {
    public static final int LEN = 32;
    private final byte[] bytes;

    private Key(byte[] bytes) {
        if (bytes.length != LEN) {
            throw new IllegalArgumentException("a WireGuard key is 32 bytes, got " + bytes.length);
        }
        this.bytes = bytes;
    }

    public static Key of(byte[] bytes) {
        return new Key(requireNonNull(bytes, "bytes").clone());
    }

    /** Parses {@code wg}'s base64 form; the error says what was wrong, never the input. */
    public static Key fromBase64(String text) {
        requireNonNull(text, "text");
        byte[] b;
        try {
            b = Base64.getDecoder().decode(text.trim());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("key is not valid base64");
        }
        return new Key(b);
    }

    public static Key fromHex(String text) {
        requireNonNull(text, "text");
        if (text.length() != 2 * LEN) {
            throw new IllegalArgumentException("a hex key has 64 digits, got " + text.length());
        }
        try {
            return new Key(HexFormat.of().parseHex(text));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("key is not valid hex");
        }
    }

    /** A new clamped private key. */
    public static Key generatePrivate() {
        return new Key(X25519.generatePrivateKey());
    }

    /** The public key of this private key. */
    public Key publicKey() {
        return new Key(X25519.publicKey(X25519.clamp(bytes.clone())));
    }

    public byte[] bytes() {
        return bytes.clone();
    }

    public String toBase64() {
        return Base64.getEncoder().encodeToString(bytes);
    }

    public String toHex() {
        return HexFormat.of().formatHex(bytes);
    }

    public boolean isZero() {
        int acc = 0;
        for (byte b : bytes) {
            acc |= b;
        }
        return acc == 0;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Key k && MessageDigest.isEqual(bytes, k.bytes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(bytes);
    }

    /** Redacted: shows only that this is a key. Use {@link #toBase64} for public keys. */
    @Override
    public String toString() {
        return "Key(redacted)";
    }
}
