package dev.wisp.wireguard.noise;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.wireguard.crypto.ChaChaPoly;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.atomic.LongAdder;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.crypto.digests.Blake2sDigest;
import org.bouncycastle.math.ec.rfc7748.X25519;
import org.junit.jupiter.api.Test;

/**
 * A full IKpsk2 handshake with fixed static, ephemeral and preshared keys, checked byte for byte
 * against a re-derivation written here from the WireGuard paper's message construction (section
 * 5.4), on independent primitives: Bouncy Castle's X25519 and raw BLAKE2s with a hand-written
 * HMAC, and the JDK's ChaCha20-Poly1305. Both messages, mac1 and the resulting transport keys must
 * agree.
 */
class HandshakeTranscriptTest {
    // ------------------------------------------------ independent primitives

    static byte[] hash(byte[]... parts) {
        Blake2sDigest d = new Blake2sDigest(256);
        for (byte[] p : parts) {
            d.update(p, 0, p.length);
        }
        byte[] out = new byte[32];
        d.doFinal(out, 0);
        return out;
    }

    /** Keyed BLAKE2s with a 16-byte output (WireGuard's MAC). */
    static byte[] mac(byte[] key, byte[] data) {
        Blake2sDigest d = new Blake2sDigest(key, 16, null, null);
        d.update(data, 0, data.length);
        byte[] out = new byte[16];
        d.doFinal(out, 0);
        return out;
    }

    /** HMAC (RFC 2104) over BLAKE2s, block 64. */
    static byte[] hmac(byte[] key, byte[] data) {
        byte[] k = Arrays.copyOf(key.length > 64 ? hash(key) : key, 64);
        byte[] ipad = new byte[64];
        byte[] opad = new byte[64];
        for (int i = 0; i < 64; i++) {
            ipad[i] = (byte) (k[i] ^ 0x36);
            opad[i] = (byte) (k[i] ^ 0x5c);
        }
        return hash(opad, hash(ipad, data));
    }

    /** KDF_n(key, input) = HKDF with HMAC-BLAKE2s: T1 = HMAC(prk, 0x1), Ti = HMAC(prk, Ti-1 || i). */
    static byte[][] kdf(int n, byte[] key, byte[] input) {
        byte[] prk = hmac(key, input);
        byte[][] out = new byte[n][];
        byte[] prev = new byte[0];
        for (int i = 0; i < n; i++) {
            byte[] m = Arrays.copyOf(prev, prev.length + 1);
            m[prev.length] = (byte) (i + 1);
            prev = hmac(prk, m);
            out[i] = prev;
        }
        return out;
    }

    static byte[] pub(byte[] priv) {
        byte[] out = new byte[32];
        X25519.scalarMultBase(priv, 0, out, 0);
        return out;
    }

    static byte[] dh(byte[] priv, byte[] pub) {
        byte[] out = new byte[32];
        X25519.scalarMult(priv, 0, pub, 0, out, 0);
        return out;
    }

    static byte[] aead(byte[] key, long counter, byte[] plaintext, byte[] aad) throws Exception {
        byte[] nonce = new byte[12];
        ByteBuffer.wrap(nonce, 4, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(counter);
        Cipher c = Cipher.getInstance("ChaCha20-Poly1305");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "ChaCha20"), new IvParameterSpec(nonce));
        c.updateAAD(aad);
        return c.doFinal(plaintext);
    }

    static byte[] fill(int seed) {
        byte[] b = new byte[32];
        for (int i = 0; i < 32; i++) {
            b[i] = (byte) (seed * 31 + i * 7);
        }
        return b;
    }

    static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    static byte[] header(int type, int... indices) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * indices.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) type).put((byte) 0).put((byte) 0).put((byte) 0);
        for (int i : indices) {
            b.putInt(i);
        }
        return b.array();
    }

    // ------------------------------------------------ the handshake

    @Test
    void initiationResponseMac1AndTransportKeysMatchAnIndependentDerivation() throws Exception {
        byte[] initiatorStatic = X25519Clamp.clamp(fill(1));
        byte[] responderStatic = X25519Clamp.clamp(fill(2));
        byte[] initiatorEphemeral = X25519Clamp.clamp(fill(3));
        byte[] responderEphemeral = X25519Clamp.clamp(fill(4));
        byte[] psk = fill(5);
        byte[] timestamp = Arrays.copyOf(fill(6), 12);
        int initiatorIndex = 0x11223344;
        int responderIndex = 0x55667788;
        byte[] si = pub(initiatorStatic);
        byte[] sr = pub(responderStatic);
        byte[] ei = pub(initiatorEphemeral);
        byte[] er = pub(responderEphemeral);

        // Expected initiation.
        byte[] c = hash("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".getBytes(StandardCharsets.US_ASCII));
        byte[] h = hash(c, "WireGuard v1 zx2c4 Jason@zx2c4.com".getBytes(StandardCharsets.US_ASCII));
        h = hash(h, sr);
        c = kdf(1, c, ei)[0];
        h = hash(h, ei);
        byte[][] ck = kdf(2, c, dh(initiatorEphemeral, sr));
        c = ck[0];
        byte[] encStatic = aead(ck[1], 0, si, h);
        h = hash(h, encStatic);
        ck = kdf(2, c, dh(initiatorStatic, sr));
        c = ck[0];
        byte[] encTimestamp = aead(ck[1], 0, timestamp, h);
        h = hash(h, encTimestamp);
        byte[] expectedInitiation = concat(header(1, initiatorIndex), ei, encStatic, encTimestamp);
        byte[] expectedMac1 = mac(hash("mac1----".getBytes(StandardCharsets.US_ASCII), sr), expectedInitiation);

        LongAdder dh = new LongAdder();
        Identity initiatorId = new Identity(initiatorStatic.clone());
        Identity responderId = new Identity(responderStatic.clone());
        Handshake initiator = new Handshake(initiatorId, sr, psk.clone(), dh);
        byte[] init = initiator.createInitiation(initiatorIndex, timestamp, initiatorEphemeral.clone());
        new CookieGenerator(sr).stamp(init, 0);
        assertThat(Arrays.copyOf(init, 116)).isEqualTo(expectedInitiation);
        assertThat(Arrays.copyOfRange(init, 116, 132)).as("mac1").isEqualTo(expectedMac1);
        assertThat(Arrays.copyOfRange(init, 132, 148)).as("mac2 without a cookie").isEqualTo(new byte[16]);

        // Expected response.
        c = kdf(1, c, er)[0];
        h = hash(h, er);
        c = kdf(1, c, dh(responderEphemeral, ei))[0];
        c = kdf(1, c, dh(responderEphemeral, si))[0];
        byte[][] ctk = kdf(3, c, psk);
        c = ctk[0];
        h = hash(h, ctk[1]);
        byte[] encEmpty = aead(ctk[2], 0, new byte[0], h);
        byte[] expectedResponse = concat(header(2, responderIndex, initiatorIndex), er, encEmpty);
        byte[][] transport = kdf(2, c, new byte[0]);

        Handshake.Initiation parsed = Handshake.consumeInitiation(responderId, init, dh).orElseThrow();
        assertThat(parsed.remoteStatic()).isEqualTo(si);
        assertThat(parsed.timestamp()).isEqualTo(timestamp);
        assertThat(parsed.senderIndex()).isEqualTo(initiatorIndex);
        Handshake responder = new Handshake(responderId, si, psk.clone(), dh);
        responder.acceptInitiation(parsed);
        byte[] resp = responder.createResponse(responderIndex, responderEphemeral.clone());
        assertThat(Arrays.copyOf(resp, 60)).isEqualTo(expectedResponse);

        Keypair responderKeys = responder.responderKeypair(0);
        new CookieGenerator(si).stamp(resp, 0);
        assertThat(Arrays.copyOfRange(resp, 60, 76)).as("response mac1")
                .isEqualTo(mac(hash("mac1----".getBytes(StandardCharsets.US_ASCII), si), Arrays.copyOf(resp, 60)));
        Keypair initiatorKeys = initiator.consumeResponse(resp, 0).orElseThrow();
        assertThat(initiatorKeys.sendKey().getEncoded()).as("initiator -> responder key").isEqualTo(transport[0]);
        assertThat(initiatorKeys.receiveKey().getEncoded()).isEqualTo(transport[1]);
        assertThat(responderKeys.sendKey().getEncoded()).as("responder -> initiator key").isEqualTo(transport[1]);
        assertThat(responderKeys.receiveKey().getEncoded()).isEqualTo(transport[0]);
        assertThat(initiatorKeys.remoteIndex()).isEqualTo(responderIndex);
        assertThat(responderKeys.remoteIndex()).isEqualTo(initiatorIndex);
        // And a transport packet sealed with the derived key opens on the device's keypair.
        byte[] sealed = aead(transport[0], 7, "hello".getBytes(StandardCharsets.US_ASCII), new byte[0]);
        byte[] out = new byte[sealed.length];
        int n = new ChaChaPoly().open(responderKeys.receiveKey(), 7, null, sealed, 0, sealed.length, out, 0);
        assertThat(new String(out, 0, n, StandardCharsets.US_ASCII)).isEqualTo("hello");
    }

    /** RFC 7748 clamping, so that the fixed scalars are valid private keys for either library. */
    static final class X25519Clamp {
        static byte[] clamp(byte[] k) {
            k[0] &= (byte) 248;
            k[31] &= 127;
            k[31] |= 64;
            return k;
        }
    }
}
