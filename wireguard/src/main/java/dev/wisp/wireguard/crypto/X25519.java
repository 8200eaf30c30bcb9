package dev.wisp.wireguard.crypto;

import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.spec.NamedParameterSpec;
import java.security.spec.XECPrivateKeySpec;
import java.security.spec.XECPublicKeySpec;
import java.util.Arrays;
import java.util.Optional;
import javax.crypto.KeyAgreement;

/**
 * Curve25519 Diffie-Hellman (RFC 7748) on raw 32-byte keys through the JDK's {@code X25519}
 * provider. Thread-safe: every call uses fresh JCA objects.
 */
public final class X25519 {
    public static final int KEY_LEN = 32;
    private static final byte[] BASE_POINT = new byte[KEY_LEN];
    private static final SecureRandom RANDOM = new SecureRandom();

    static {
        BASE_POINT[0] = 9;
    }

    private X25519() {}

    /** A new clamped private key from the system's secure random source. */
    public static byte[] generatePrivateKey() {
        byte[] k = new byte[KEY_LEN];
        RANDOM.nextBytes(k);
        return clamp(k);
    }

    /** Clamps {@code key} in place as RFC 7748 decodes scalars, and returns it. */
    public static byte[] clamp(byte[] key) {
        key[0] &= (byte) 248;
        key[31] &= 127;
        key[31] |= 64;
        return key;
    }

    /** The public key of {@code privateKey}. */
    public static byte[] publicKey(byte[] privateKey) {
        return dh(privateKey, BASE_POINT)
                .orElseThrow(() -> new IllegalArgumentException("private key yields no public key"));
    }

    /**
     * The shared secret of {@code privateKey} and {@code publicKey}, or empty when the result is all
     * zeros (a low-order public key), which WireGuard treats as a failed handshake.
     */
    public static Optional<byte[]> dh(byte[] privateKey, byte[] publicKey) {
        if (privateKey.length != KEY_LEN || publicKey.length != KEY_LEN) {
            throw new IllegalArgumentException("X25519 keys are 32 bytes");
        }
        try {
            KeyFactory kf = KeyFactory.getInstance("XDH");
            PrivateKey priv = kf.generatePrivate(new XECPrivateKeySpec(NamedParameterSpec.X25519, privateKey.clone()));
            byte[] u = publicKey.clone();
            u[31] &= 127;
            reverse(u);
            PublicKey pub = kf.generatePublic(new XECPublicKeySpec(NamedParameterSpec.X25519, new BigInteger(1, u)));
            KeyAgreement ka = KeyAgreement.getInstance("XDH");
            ka.init(priv);
            ka.doPhase(pub, true);
            byte[] shared = ka.generateSecret();
            if (isZero(shared)) {
                return Optional.empty();
            }
            return Optional.of(shared);
        } catch (InvalidKeyException e) {
            // The JDK refuses small-order points with this exception: an all-zero result.
            return Optional.empty();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK lacks X25519 (needs Java 11+ SunEC)", e);
        }
    }

    private static boolean isZero(byte[] b) {
        int acc = 0;
        for (byte x : b) {
            acc |= x;
        }
        return acc == 0;
    }

    private static void reverse(byte[] b) {
        for (int i = 0, j = b.length - 1; i < j; i++, j--) {
            byte t = b[i];
            b[i] = b[j];
            b[j] = t;
        }
    }

    /** Zeroes {@code key} (null-tolerant). */
    public static void wipe(byte[] key) {
        if (key != null) {
            Arrays.fill(key, (byte) 0);
        }
    }
}
