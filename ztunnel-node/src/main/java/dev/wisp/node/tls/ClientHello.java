package dev.wisp.node.tls;

import static java.util.Objects.requireNonNull;

import io.netty.buffer.ByteBuf;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What the HBONE server reads from a client's TLS ClientHello before the TLS provider sees it: the
 * ALPN protocols offered (RFC 7301 §3.1) and whether TLS 1.3 is among the versions offered (RFC 8446
 * §4.2.1). A pure parser, without I/O: {@link #parse} reads a ClientHello body as Netty's
 * {@code SslClientHelloHandler} hands it over (from {@code legacy_version} on, without the handshake
 * header), and refuses anything that does not parse with the structure's own lengths.
 *
 * <p>What a client offers is a claim, not a negotiated fact: this is read only to refuse early
 * (ALPN without {@code h2}) and to name why a handshake failed (no TLS 1.3 offered); the TLS
 * provider still enforces both.
 *
 * @param alpn the protocols offered, in the client's order; empty when the client sent no ALPN
 *     extension
 * @param offersTls13 whether {@code supported_versions} lists TLS 1.3 (a ClientHello without that
 *     extension offers TLS 1.2 at most)
 */
public record ClientHello(Optional<List<String>> alpn, boolean offersTls13) {
    static final int EXTENSION_SUPPORTED_VERSIONS = 43;
    static final int EXTENSION_ALPN = 16;
    static final int TLS13 = 0x0304;

    public ClientHello {
        requireNonNull(alpn, "alpn");
        alpn = alpn.map(List::copyOf);
    }

    /** Whether the client offered ALPN and {@code protocol} among it. */
    public boolean offers(String protocol) {
        return alpn.map(p -> p.contains(protocol)).orElse(false);
    }

    /** A ClientHello that does not follow its own length fields. */
    public static final class MalformedException extends Exception {
        private static final long serialVersionUID = 1L;

        MalformedException(String message) {
            super(message);
        }
    }

    /** Parses {@code body} (not consumed: read by absolute index). */
    public static ClientHello parse(ByteBuf body) throws MalformedException {
        requireNonNull(body, "body");
        Reader r = new Reader(body);
        r.skip(2 + 32, "legacy_version and random");
        r.skip(r.u8("legacy_session_id length"), "legacy_session_id");
        r.skip(r.u16("cipher_suites length"), "cipher_suites");
        r.skip(r.u8("legacy_compression_methods length"), "legacy_compression_methods");
        if (r.remaining() == 0) {
            return new ClientHello(Optional.empty(), false);
        }
        int end = r.limit(r.u16("extensions length"), "extensions");
        Optional<List<String>> alpn = Optional.empty();
        boolean tls13 = false;
        while (r.position() < end) {
            int type = r.u16("extension type");
            int extensionEnd = r.limit(r.u16("extension length"), "extension " + type);
            if (extensionEnd > end) {
                throw new MalformedException("extension " + type + " runs past the extensions block");
            }
            if (type == EXTENSION_ALPN) {
                alpn = Optional.of(protocols(r, extensionEnd));
            } else if (type == EXTENSION_SUPPORTED_VERSIONS) {
                tls13 = versionsInclude(r, extensionEnd, TLS13);
            }
            r.seek(extensionEnd);
        }
        return new ClientHello(alpn, tls13);
    }

    private static List<String> protocols(Reader r, int extensionEnd) throws MalformedException {
        int end = r.limit(r.u16("ALPN protocol_name_list length"), "ALPN protocol_name_list");
        if (end != extensionEnd) {
            throw new MalformedException("ALPN protocol_name_list does not fill its extension");
        }
        List<String> out = new ArrayList<>();
        while (r.position() < end) {
            int n = r.u8("ALPN protocol name length");
            if (n == 0) {
                throw new MalformedException("an empty ALPN protocol name");
            }
            out.add(r.string(n, "ALPN protocol name"));
        }
        return out;
    }

    private static boolean versionsInclude(Reader r, int extensionEnd, int version) throws MalformedException {
        int end = r.limit(r.u8("supported_versions length"), "supported_versions");
        if (end != extensionEnd) {
            throw new MalformedException("supported_versions does not fill its extension");
        }
        boolean found = false;
        while (r.position() < end) {
            found |= r.u16("supported version") == version;
        }
        return found;
    }

    /** Bounds-checked reads at absolute indexes of the body. */
    private static final class Reader {
        private final ByteBuf buf;
        private final int end;
        private int at;

        Reader(ByteBuf buf) {
            this.buf = buf;
            this.at = buf.readerIndex();
            this.end = buf.writerIndex();
        }

        int position() {
            return at;
        }

        int remaining() {
            return end - at;
        }

        void need(int n, String what) throws MalformedException {
            if (n > end - at) {
                throw new MalformedException(what + ": " + n + " bytes announced, " + (end - at) + " left");
            }
        }

        void skip(int n, String what) throws MalformedException {
            need(n, what);
            at += n;
        }

        void seek(int index) {
            at = index;
        }

        /** The index {@code n} bytes on, checked to be within the body. */
        int limit(int n, String what) throws MalformedException {
            need(n, what);
            return at + n;
        }

        int u8(String what) throws MalformedException {
            need(1, what);
            return buf.getUnsignedByte(at++);
        }

        int u16(String what) throws MalformedException {
            need(2, what);
            int v = buf.getUnsignedShort(at);
            at += 2;
            return v;
        }

        String string(int n, String what) throws MalformedException {
            need(n, what);
            String s = buf.toString(at, n, StandardCharsets.ISO_8859_1);
            at += n;
            return s;
        }
    }
}
