package dev.wisp.wireguard.noise;

import static dev.wisp.wireguard.noise.Messages.*;

import dev.wisp.wireguard.crypto.Blake2s;
import dev.wisp.wireguard.crypto.ChaChaPoly;
import dev.wisp.wireguard.crypto.X25519;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.atomic.LongAdder;

/**
 * The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake of one peer, as initiator or responder. Pure:
 * messages in and out as byte arrays, no I/O, no clock (timestamps and ephemeral keys are passed
 * in). Not thread-safe: the owning peer serialises calls. Every X25519 operation is counted in the
 * shared {@code dhOperations} counter so that tests can prove cheap checks run first.
 */
public final class Handshake {
    static final byte[] CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".getBytes(StandardCharsets.US_ASCII);
    static final byte[] IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com".getBytes(StandardCharsets.US_ASCII);
    static final byte[] INITIAL_CHAIN_KEY = Blake2s.hash(CONSTRUCTION);
    static final byte[] INITIAL_HASH = Blake2s.hash(INITIAL_CHAIN_KEY, IDENTIFIER);
    private static final byte[] EMPTY = new byte[0];

    /** Where a handshake stands. */
    public enum State {
        NONE, INITIATION_CREATED, INITIATION_CONSUMED, RESPONSE_CREATED
    }

    private final Identity local;
    private final byte[] remoteStatic;
    private final byte[] presharedKey;
    private final LongAdder dhOperations;

    private State state = State.NONE;
    private byte[] chainKey;
    private byte[] hash;
    private byte[] ephemeralPrivate;
    private byte[] remoteEphemeral;
    private int localIndex;
    private int remoteIndex;

    /** {@code presharedKey} may be all zeros (none). */
    public Handshake(Identity local, byte[] remoteStatic, byte[] presharedKey, LongAdder dhOperations) {
        this.local = local;
        this.remoteStatic = remoteStatic.clone();
        this.presharedKey = presharedKey.clone();
        this.dhOperations = dhOperations;
    }

    public State state() {
        return state;
    }

    /** Our static key pair in this handshake. */
    public Identity local() {
        return local;
    }

    public int localIndex() {
        return localIndex;
    }

    private byte[] dh(byte[] priv, byte[] pub) {
        dhOperations.increment();
        return X25519.dh(priv, pub).orElseThrow(() -> new HandshakeException("low-order public key"));
    }

    private void mixHash(byte[] data) {
        hash = Blake2s.hash(hash, data);
    }

    /** Writes our ephemeral public key at {@code msg[at]} and mixes it into chaining key and hash. */
    private void writeEphemeral(byte[] msg, int at) {
        byte[] ephemeralPublic = X25519.publicKey(ephemeralPrivate);
        dhOperations.increment();
        System.arraycopy(ephemeralPublic, 0, msg, at, 32);
        chainKey = Blake2s.kdf(1, chainKey, ephemeralPublic)[0];
        mixHash(ephemeralPublic);
    }

    /** Seals {@code plaintext} under the transcript hash into {@code msg[at]}, then hashes the ciphertext. */
    private void sealInto(byte[] key, byte[] plaintext, byte[] msg, int at) {
        byte[] sealed = ChaChaPoly.seal(key, 0, plaintext, hash);
        System.arraycopy(sealed, 0, msg, at, sealed.length);
        mixHash(sealed);
    }

    /**
     * Builds an initiation (mac1/mac2 left zero for the cookie layer) with a fresh ephemeral key.
     */
    public byte[] createInitiation(int senderIndex, byte[] timestamp, byte[] ephemeralPrivate) {
        wipeState();
        this.ephemeralPrivate = ephemeralPrivate;
        chainKey = INITIAL_CHAIN_KEY.clone();
        hash = Blake2s.hash(INITIAL_HASH, remoteStatic);
        byte[] msg = new byte[INITIATION_LEN];
        msg[0] = TYPE_INITIATION;
        putInt(msg, INIT_SENDER, senderIndex);
        writeEphemeral(msg, INIT_EPHEMERAL);
        byte[][] ck = Blake2s.kdf(2, chainKey, dh(ephemeralPrivate, remoteStatic));
        chainKey = ck[0];
        sealInto(ck[1], local.publicKey(), msg, INIT_STATIC);
        ck = Blake2s.kdf(2, chainKey, dh(local.privateKey(), remoteStatic));
        chainKey = ck[0];
        sealInto(ck[1], timestamp, msg, INIT_TIMESTAMP);
        localIndex = senderIndex;
        state = State.INITIATION_CREATED;
        return msg;
    }

    /** What the first half of consuming an initiation learnt, before the peer is known. */
    public record Initiation(byte[] remoteStatic, byte[] remoteEphemeral, byte[] timestamp, int senderIndex,
            byte[] chainKey, byte[] hash) {}

    /**
     * Decrypts an initiation addressed to {@code local} (mac1 already checked). Empty when it does
     * not authenticate. The result names the initiator's static key so the caller can find the peer
     * and then call {@link #acceptInitiation}.
     */
    public static Optional<Initiation> consumeInitiation(Identity local, byte[] msg, LongAdder dhOperations) {
        try {
            byte[] ck = INITIAL_CHAIN_KEY.clone();
            byte[] h = Blake2s.hash(INITIAL_HASH, local.publicKey());
            byte[] e = Arrays.copyOfRange(msg, INIT_EPHEMERAL, INIT_EPHEMERAL + 32);
            ck = Blake2s.kdf(1, ck, e)[0];
            h = Blake2s.hash(h, e);
            byte[][] chain = {ck, h};
            dhOperations.increment();
            byte[] stat = mixDhAndOpen(chain, X25519.dh(local.privateKey(), e), msg, INIT_STATIC, INIT_TIMESTAMP);
            if (stat == null) {
                return Optional.empty();
            }
            dhOperations.increment();
            byte[] ts = mixDhAndOpen(chain, X25519.dh(local.privateKey(), stat), msg, INIT_TIMESTAMP, INIT_MAC1);
            if (ts == null) {
                return Optional.empty();
            }
            return Optional.of(new Initiation(stat, e, ts, getInt(msg, INIT_SENDER), chain[0], chain[1]));
        } catch (HandshakeException ex) {
            return Optional.empty();
        }
    }

    /**
     * One responder step: mixes the DH result into the chaining key {@code chain[0]}, then decrypts
     * {@code msg[from, to)} with the derived key under the transcript hash {@code chain[1]}, which
     * then absorbs the ciphertext. Null (the initiation is refused) for a low-order DH or a field
     * that does not authenticate.
     */
    private static byte[] mixDhAndOpen(byte[][] chain, Optional<byte[]> dh, byte[] msg, int from, int to) {
        if (dh.isEmpty()) {
            return null;
        }
        byte[][] k = Blake2s.kdf(2, chain[0], dh.get());
        chain[0] = k[0];
        byte[] encrypted = Arrays.copyOfRange(msg, from, to);
        Optional<byte[]> plain = ChaChaPoly.open(k[1], 0, encrypted, chain[1]);
        if (plain.isEmpty()) {
            return null;
        }
        chain[1] = Blake2s.hash(chain[1], encrypted);
        return plain.get();
    }

    /** Adopts a consumed initiation for this peer (the timestamp check is the caller's). */
    public void acceptInitiation(Initiation init) {
        if (!Arrays.equals(init.remoteStatic(), remoteStatic)) {
            throw new IllegalArgumentException("initiation is from another peer");
        }
        wipeState();
        chainKey = init.chainKey();
        hash = init.hash();
        remoteEphemeral = init.remoteEphemeral();
        remoteIndex = init.senderIndex();
        state = State.INITIATION_CONSUMED;
    }

    /** Builds the response to the consumed initiation (macs left zero). */
    public byte[] createResponse(int senderIndex, byte[] ephemeralPrivate) {
        if (state != State.INITIATION_CONSUMED) {
            throw new IllegalStateException("no initiation to respond to");
        }
        this.ephemeralPrivate = ephemeralPrivate;
        byte[] msg = new byte[RESPONSE_LEN];
        msg[0] = TYPE_RESPONSE;
        putInt(msg, RESP_SENDER, senderIndex);
        putInt(msg, RESP_RECEIVER, remoteIndex);
        writeEphemeral(msg, RESP_EPHEMERAL);
        chainKey = Blake2s.kdf(1, chainKey, dh(ephemeralPrivate, remoteEphemeral))[0];
        chainKey = Blake2s.kdf(1, chainKey, dh(ephemeralPrivate, remoteStatic))[0];
        byte[][] k = Blake2s.kdf(3, chainKey, presharedKey);
        chainKey = k[0];
        mixHash(k[1]);
        sealInto(k[2], EMPTY, msg, RESP_EMPTY);
        localIndex = senderIndex;
        state = State.RESPONSE_CREATED;
        return msg;
    }

    /**
     * Consumes a response to our initiation; on success returns the new keypair (we are the
     * initiator) and clears the handshake. Empty when it does not authenticate.
     */
    public Optional<Keypair> consumeResponse(byte[] msg, long nowNanos) {
        if (state != State.INITIATION_CREATED || getInt(msg, RESP_RECEIVER) != localIndex) {
            return Optional.empty();
        }
        try {
            byte[] e = Arrays.copyOfRange(msg, RESP_EPHEMERAL, RESP_EPHEMERAL + 32);
            byte[] ck = Blake2s.kdf(1, chainKey, e)[0];
            byte[] h = Blake2s.hash(hash, e);
            ck = Blake2s.kdf(1, ck, dh(ephemeralPrivate, e))[0];
            ck = Blake2s.kdf(1, ck, dh(local.privateKey(), e))[0];
            byte[][] k = Blake2s.kdf(3, ck, presharedKey);
            ck = k[0];
            h = Blake2s.hash(h, k[1]);
            byte[] empty = Arrays.copyOfRange(msg, RESP_EMPTY, RESP_MAC1);
            if (ChaChaPoly.open(k[2], 0, empty, h).isEmpty()) {
                return Optional.empty();
            }
            byte[][] t = Blake2s.kdf(2, ck, EMPTY);
            Keypair kp = new Keypair(t[0], t[1], true, nowNanos, localIndex, getInt(msg, RESP_SENDER));
            Arrays.fill(ck, (byte) 0);
            wipeState();
            return Optional.of(kp);
        } catch (HandshakeException ex) {
            return Optional.empty();
        }
    }

    /** After {@link #createResponse}: the responder's keypair; clears the handshake. */
    public Keypair responderKeypair(long nowNanos) {
        if (state != State.RESPONSE_CREATED) {
            throw new IllegalStateException("no response created");
        }
        byte[][] t = Blake2s.kdf(2, chainKey, EMPTY);
        Keypair kp = new Keypair(t[1], t[0], false, nowNanos, localIndex, remoteIndex);
        wipeState();
        return kp;
    }

    /** Zeroes and forgets the ephemeral and chaining state. */
    public void wipeState() {
        X25519.wipe(ephemeralPrivate);
        X25519.wipe(chainKey);
        X25519.wipe(hash);
        ephemeralPrivate = null;
        chainKey = null;
        hash = null;
        remoteEphemeral = null;
        state = State.NONE;
    }

    /** Wipes everything including the preshared key (peer removed). */
    public void destroy() {
        wipeState();
        Arrays.fill(presharedKey, (byte) 0);
    }

    /** A handshake step failed on a cryptographic check. */
    static final class HandshakeException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        HandshakeException(String message) {
            super(message, null, false, false);
        }
    }
}
