package dev.wisp.wireguard.crypto;

import java.security.GeneralSecurityException;
import java.util.Optional;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * ChaCha20-Poly1305 (RFC 8439) with WireGuard's nonce layout: 4 zero bytes then a 64-bit
 * little-endian counter. Not thread-safe: each thread keeps its own instance (the JDK {@link Cipher}
 * is stateful).
 */
public final class ChaChaPoly {
    public static final int TAG_LEN = 16;
    private final Cipher cipher;
    private final byte[] nonce = new byte[12];

    public ChaChaPoly() {
        try {
            cipher = Cipher.getInstance("ChaCha20-Poly1305");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK lacks ChaCha20-Poly1305", e);
        }
    }

    private void setCounter(long counter) {
        for (int i = 0; i < 8; i++) {
            nonce[4 + i] = (byte) (counter >>> (8 * i));
        }
    }

    /**
     * Encrypts {@code in[inOff, inOff+len)} into {@code out} at {@code outOff} ({@code len + 16}
     * bytes). {@code out} may be {@code in} only when the offsets are equal.
     */
    public int seal(SecretKeySpec key, long counter, byte[] aad, byte[] in, int inOff, int len, byte[] out,
            int outOff) {
        try {
            return run(Cipher.ENCRYPT_MODE, key, counter, aad, in, inOff, len, out, outOff);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("ChaCha20-Poly1305 encryption failed", e);
        }
    }

    /**
     * Decrypts and authenticates {@code in[inOff, inOff+len)} into {@code out}; returns the plaintext
     * length, or -1 when authentication fails.
     */
    public int open(SecretKeySpec key, long counter, byte[] aad, byte[] in, int inOff, int len, byte[] out,
            int outOff) {
        if (len < TAG_LEN) {
            return -1;
        }
        try {
            return run(Cipher.DECRYPT_MODE, key, counter, aad, in, inOff, len, out, outOff);
        } catch (AEADBadTagException e) {
            return -1;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("ChaCha20-Poly1305 decryption failed", e);
        }
    }

    /** One AEAD operation in {@code mode} under the nonce of {@code counter}. */
    private int run(int mode, SecretKeySpec key, long counter, byte[] aad, byte[] in, int inOff, int len, byte[] out,
            int outOff) throws GeneralSecurityException {
        setCounter(counter);
        cipher.init(mode, key, new IvParameterSpec(nonce));
        if (aad != null) {
            cipher.updateAAD(aad);
        }
        return cipher.doFinal(in, inOff, len, out, outOff);
    }

    /** Seals with a raw 12-byte nonce (for the RFC 8439 vectors, whose nonces are not counters). */
    static byte[] sealWithNonce(byte[] key, byte[] nonce12, byte[] plaintext, byte[] aad) {
        try {
            Cipher c = Cipher.getInstance("ChaCha20-Poly1305");
            c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "ChaCha20"), new IvParameterSpec(nonce12));
            c.updateAAD(aad);
            return c.doFinal(plaintext);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("ChaCha20-Poly1305 encryption failed", e);
        }
    }

    /** One-shot seal with a fresh cipher (handshake messages). */
    public static byte[] seal(byte[] key, long counter, byte[] plaintext, byte[] aad) {
        byte[] out = new byte[plaintext.length + TAG_LEN];
        new ChaChaPoly().seal(new SecretKeySpec(key, "ChaCha20"), counter, aad, plaintext, 0, plaintext.length, out,
                0);
        return out;
    }

    /** One-shot open with a fresh cipher; empty when authentication fails. */
    public static Optional<byte[]> open(byte[] key, long counter, byte[] ciphertext, byte[] aad) {
        if (ciphertext.length < TAG_LEN) {
            return Optional.empty();
        }
        byte[] out = new byte[ciphertext.length - TAG_LEN];
        int n = new ChaChaPoly().open(new SecretKeySpec(key, "ChaCha20"), counter, aad, ciphertext, 0,
                ciphertext.length, out, 0);
        return n < 0 ? Optional.empty() : Optional.of(out);
    }
}
