package dev.wisp.node.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.Unpooled;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The ClientHello reader, on ClientHellos the JDK's TLS client writes, and on broken ones. */
class ClientHelloTest {
    static final String[] TLS13 = {"TLSv1.3"};
    static final String[] TLS12 = {"TLSv1.2"};

    static ClientHello parse(byte[] body) throws ClientHello.MalformedException {
        return ClientHello.parse(Unpooled.wrappedBuffer(body));
    }

    static Stream<Arguments> realClientHellos() {
        return Stream.of(
                Arguments.of("TLS 1.3, h2", TLS13, new String[]{"h2"}, Optional.of(List.of("h2")), true),
                Arguments.of("TLS 1.3, http/1.1 only", TLS13, new String[]{"http/1.1"},
                        Optional.of(List.of("http/1.1")), true),
                Arguments.of("TLS 1.3, http/1.1 then h2", TLS13, new String[]{"http/1.1", "h2"},
                        Optional.of(List.of("http/1.1", "h2")), true),
                Arguments.of("TLS 1.3, no ALPN", TLS13, new String[0], Optional.empty(), true),
                Arguments.of("TLS 1.2 only, h2", TLS12, new String[]{"h2"}, Optional.of(List.of("h2")), false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("realClientHellos")
    void readsWhatAJdkClientOffers(String name, String[] versions, String[] alpn, Optional<List<String>> offered,
            boolean tls13) throws Exception {
        ClientHello hello = parse(ClientHellos.body(ClientHellos.record(versions, alpn)));
        assertThat(hello.alpn()).isEqualTo(offered);
        assertThat(hello.offersTls13()).isEqualTo(tls13);
        assertThat(hello.offers("h2")).isEqualTo(offered.map(p -> p.contains("h2")).orElse(false));
    }

    @Test
    void everyTruncationIsRefusedNotMisread() throws Exception {
        byte[] body = ClientHellos.body(ClientHellos.record(TLS13, "h2"));
        assertThat(parse(body).offers("h2")).isTrue();
        // Cut anywhere inside the extensions (which end the body), the length fields no longer hold.
        for (int cut = 2 + 32 + 1; cut < body.length; cut++) {
            byte[] truncated = Arrays.copyOf(body, cut);
            try {
                ClientHello h = parse(truncated);
                // Only a cut exactly after the compression methods leaves a valid, extension-less hello.
                assertThat(h.alpn()).as("cut at %d", cut).isEmpty();
                assertThat(h.offersTls13()).isFalse();
            } catch (ClientHello.MalformedException expected) {
                // refused
            }
        }
    }

    @Test
    void anExtensionLongerThanItsBlockIsRefused() {
        // legacy_version, random, empty session id, one suite, one compression method, then an
        // extensions block of 4 bytes holding an extension that announces 8.
        byte[] body = new byte[2 + 32 + 1 + 2 + 2 + 2 + 2 + 4 + 8];
        int at = 34;
        body[at++] = 0; // session id length
        body[at++] = 0;
        body[at++] = 2; // cipher_suites length
        at += 2;
        body[at++] = 1; // compression methods length
        at++;
        body[at++] = 0;
        body[at++] = 4; // extensions length
        body[at++] = 0;
        body[at++] = 16; // ALPN
        body[at++] = 0;
        body[at] = 8; // extension length past the block
        assertThatThrownBy(() -> parse(body)).isInstanceOf(ClientHello.MalformedException.class)
                .hasMessageContaining("past the extensions block");
    }

    @Test
    void anEmptyProtocolNameIsRefused() {
        byte[] body = new byte[2 + 32 + 1 + 2 + 2 + 2 + 2 + 7];
        int at = 34;
        body[at++] = 0; // session id length
        body[at++] = 0;
        body[at++] = 2; // cipher_suites
        at += 2;
        body[at++] = 1; // compression
        at++;
        body[at++] = 0;
        body[at++] = 7; // extensions length: type, length, list length, one empty name
        body[at++] = 0;
        body[at++] = 16;
        body[at++] = 0;
        body[at++] = 3;
        body[at++] = 0;
        body[at++] = 1; // protocol_name_list length 1
        body[at] = 0; // name length 0
        assertThatThrownBy(() -> parse(body)).isInstanceOf(ClientHello.MalformedException.class)
                .hasMessageContaining("empty ALPN protocol name");
    }
}
