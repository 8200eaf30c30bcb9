package dev.wisp.wireguard.crypto;

import java.util.Arrays;
import org.bouncycastle.crypto.digests.Blake2sDigest;
import org.bouncycastle.crypto.macs.HMac;
import org.bouncycastle.crypto.params.KeyParameter;

/**
 * WireGuard's hash functions over BLAKE2s (Bouncy Castle): HASH (BLAKE2s-256), MAC (keyed
 * BLAKE2s-128), HMAC-BLAKE2s and the HKDF-style KDF of the Noise protocol. Stateless and thread-safe:
 * each call builds its own digest.
 */
public final class Blake2s {
    /** Length of HASH and KDF outputs. */
    public static final int HASH_LEN = 32;
    /** Length of MAC outputs (mac1, mac2, cookies). */
    public static final int MAC_LEN = 16;

    private Blake2s() {}

    /** BLAKE2s-256 over the concatenation of {@code parts}. */
    public static byte[] hash(byte[]... parts) {
        Blake2sDigest d = new Blake2sDigest(256);
        for (byte[] p : parts) {
            d.update(p, 0, p.length);
        }
        byte[] out = new byte[HASH_LEN];
        d.doFinal(out, 0);
        return out;
    }

    /** Keyed BLAKE2s with a 16-byte output over {@code data[off, off+len)}. */
    public static byte[] mac(byte[] key, byte[] data, int off, int len) {
        Blake2sDigest d = new Blake2sDigest(key, MAC_LEN, null, null);
        d.update(data, off, len);
        byte[] out = new byte[MAC_LEN];
        d.doFinal(out, 0);
        return out;
    }

    /** HMAC-BLAKE2s-256 of the concatenation of {@code parts} under {@code key}. */
    public static byte[] hmac(byte[] key, byte[]... parts) {
        HMac h = new HMac(new Blake2sDigest(256));
        h.init(new KeyParameter(key));
        for (byte[] p : parts) {
            h.update(p, 0, p.length);
        }
        byte[] out = new byte[HASH_LEN];
        h.doFinal(out, 0);
        return out;
    }

    /**
     * The Noise KDF with {@code n} (1..3) outputs: {@code t0 = HMAC(key, input)},
     * {@code t1 = HMAC(t0, 0x1)}, {@code ti = HMAC(t0, t(i-1) || i)}. The intermediate secret is zeroed.
     */
    public static byte[][] kdf(int n, byte[] key, byte[] input) {
        if (n < 1 || n > 3) {
            throw new IllegalArgumentException("KDF outputs must be 1..3, got " + n);
        }
        byte[] prk = hmac(key, input);
        byte[][] out = new byte[n][];
        byte[] prev = new byte[0];
        for (int i = 0; i < n; i++) {
            prev = hmac(prk, prev, new byte[]{(byte) (i + 1)});
            out[i] = prev;
        }
        Arrays.fill(prk, (byte) 0);
        return out;
    }
}
