package dev.wisp.wireguard.crypto;

import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.Optional;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha), used by WireGuard only for cookie replies: HChaCha20
 * derives a subkey from the key and the first 16 nonce bytes, then ChaCha20-Poly1305 runs with
 * 4 zero bytes followed by the last 8 nonce bytes. Stateless and thread-safe.
 */
public final class XChaChaPoly {
    public static final int NONCE_LEN = 24;

    private XChaChaPoly() {}

    /** HChaCha20 of a 32-byte key and a 16-byte nonce: 20 rounds, words 0..3 and 12..15 out. */
    public static byte[] hchacha20(byte[] key, byte[] nonce16) {
        if (key.length != 32 || nonce16.length != 16) {
            throw new IllegalArgumentException("HChaCha20 takes a 32-byte key and a 16-byte nonce");
        }
        int[] s = new int[16];
        s[0] = 0x61707865;
        s[1] = 0x3320646e;
        s[2] = 0x79622d32;
        s[3] = 0x6b206574;
        for (int i = 0; i < 8; i++) {
            s[4 + i] = LittleEndian.getInt(key, 4 * i);
        }
        for (int i = 0; i < 4; i++) {
            s[12 + i] = LittleEndian.getInt(nonce16, 4 * i);
        }
        for (int r = 0; r < 10; r++) {
            quarter(s, 0, 4, 8, 12);
            quarter(s, 1, 5, 9, 13);
            quarter(s, 2, 6, 10, 14);
            quarter(s, 3, 7, 11, 15);
            quarter(s, 0, 5, 10, 15);
            quarter(s, 1, 6, 11, 12);
            quarter(s, 2, 7, 8, 13);
            quarter(s, 3, 4, 9, 14);
        }
        byte[] out = new byte[32];
        for (int i = 0; i < 4; i++) {
            LittleEndian.putInt(out, 4 * i, s[i]);
            LittleEndian.putInt(out, 16 + 4 * i, s[12 + i]);
        }
        Arrays.fill(s, 0);
        return out;
    }

    private static void quarter(int[] s, int a, int b, int c, int d) {
        s[a] += s[b];
        s[d] = Integer.rotateLeft(s[d] ^ s[a], 16);
        s[c] += s[d];
        s[b] = Integer.rotateLeft(s[b] ^ s[c], 12);
        s[a] += s[b];
        s[d] = Integer.rotateLeft(s[d] ^ s[a], 8);
        s[c] += s[d];
        s[b] = Integer.rotateLeft(s[b] ^ s[c], 7);
    }

    public static byte[] seal(byte[] key, byte[] nonce24, byte[] plaintext, byte[] aad) {
        return run(Cipher.ENCRYPT_MODE, key, nonce24, plaintext, aad).orElseThrow();
    }

    /** Empty when authentication fails. */
    public static Optional<byte[]> open(byte[] key, byte[] nonce24, byte[] ciphertext, byte[] aad) {
        if (ciphertext.length < ChaChaPoly.TAG_LEN) {
            return Optional.empty();
        }
        return run(Cipher.DECRYPT_MODE, key, nonce24, ciphertext, aad);
    }

    private static Optional<byte[]> run(int mode, byte[] key, byte[] nonce24, byte[] input, byte[] aad) {
        if (nonce24.length != NONCE_LEN) {
            throw new IllegalArgumentException("XChaCha20 nonces are 24 bytes");
        }
        byte[] subkey = hchacha20(key, Arrays.copyOf(nonce24, 16));
        byte[] nonce = new byte[12];
        System.arraycopy(nonce24, 16, nonce, 4, 8);
        try {
            Cipher c = Cipher.getInstance("ChaCha20-Poly1305");
            c.init(mode, new SecretKeySpec(subkey, "ChaCha20"), new IvParameterSpec(nonce));
            c.updateAAD(aad);
            return Optional.of(c.doFinal(input));
        } catch (AEADBadTagException e) {
            return Optional.empty();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("XChaCha20-Poly1305 failed", e);
        } finally {
            Arrays.fill(subkey, (byte) 0);
        }
    }
}
