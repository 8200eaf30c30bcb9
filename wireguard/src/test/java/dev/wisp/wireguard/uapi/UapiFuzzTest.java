package dev.wisp.wireguard.uapi;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.wisp.wireguard.WireGuard;
import dev.wisp.wireguard.WireGuardDevice;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * The UAPI text protocol ({@code wg(8)}'s socket) fed arbitrary bytes through the server's own
 * framing and operations ({@link UapiServer#serve}) against a real TUN-less device: each request is
 * answered with exactly one {@code errno=N} block, nothing but an over-long request's
 * {@link IOException} escapes, and the device still answers {@code get=1} afterwards.
 *
 * <p>So that a fuzzed configuration can send nothing anywhere, the harness drops lines that would
 * give the device a usable private key (a handshake to a fuzzed endpoint would follow) or a fixed
 * listen port (it would bind a port another process may want); every other line reaches the parser,
 * invalid keys and ports included. Each input starts by removing the previous input's peers.
 */
class UapiFuzzTest {
    private static final Pattern USABLE_KEY = Pattern.compile("private_key=(?!0{64})[0-9a-fA-F]{64}");
    private static final Pattern FIXED_PORT = Pattern.compile("listen_port=0*[1-9][0-9]*");
    static WireGuardDevice device;

    @BeforeAll
    static void start() throws IOException {
        device = WireGuard.builder("uapifuzz").withoutTun().start();
    }

    @AfterAll
    static void stop() {
        device.close();
    }

    static String serve(String text) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        UapiServer.serve(device, new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)), out);
        return out.toString(StandardCharsets.UTF_8);
    }

    @FuzzTest(maxDuration = "10s")
    void anyRequests(byte[] bytes) throws IOException {
        String text = new String(bytes, StandardCharsets.UTF_8).lines()
                .filter(l -> !USABLE_KEY.matcher(l).matches() && !FIXED_PORT.matcher(l).matches())
                .collect(Collectors.joining("\n", "", bytes.length > 0 && bytes[bytes.length - 1] == '\n' ? "\n" : ""));
        assertThat(serve("set=1\nreplace_peers=true\n\n")).isEqualTo("errno=0\n\n");
        String answer;
        try {
            answer = serve(text);
        } catch (IOException tooLong) {
            assertThat(tooLong.getMessage()).contains("longer than");
            return;
        }
        long requests = text.lines().count() == 0 ? 0 : answer.split("errno=", -1).length - 1;
        assertThat(answer.isEmpty() || answer.endsWith("\n\n")).as("answer ends its block: %s", answer).isTrue();
        assertThat(requests).isLessThanOrEqualTo(text.lines().count());
        assertThat(serve("get=1\n\n")).endsWith("errno=0\n\n");
    }
}
