package dev.wisp.node.dns;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class DnsMessageTest {

    @Test
    void readsTheQuestionInLowerCase() throws Exception {
        byte[] q = DnsWire.query(0x1234, "Server.Default.svc.cluster.local", DnsMessage.TYPE_AAAA);
        DnsMessage.Question parsed = DnsMessage.parse(q, q.length);
        assertThat(parsed.id()).isEqualTo(0x1234);
        assertThat(parsed.name()).isEqualTo("server.default.svc.cluster.local");
        assertThat(parsed.type()).isEqualTo(DnsMessage.TYPE_AAAA);
        assertThat(parsed.qclass()).isEqualTo(DnsMessage.CLASS_IN);
        assertThat(parsed.isResponse()).isFalse();
    }

    @Test
    void aDotOrAControlByteInsideALabelIsEscapedSoItCannotPassForAMeshName() throws Exception {
        byte[] q = DnsWire.query(1, "x", DnsMessage.TYPE_A);
        // Replace the one-label name "x" by "a.b" as ONE label, then a label with a NUL byte.
        byte[] name = {3, 'a', '.', 'b', 1, 0, 0};
        byte[] m = new byte[12 + name.length + 4];
        System.arraycopy(q, 0, m, 0, 12);
        System.arraycopy(name, 0, m, 12, name.length);
        m[m.length - 3] = 1;
        m[m.length - 1] = 1;
        assertThat(DnsMessage.parse(m, m.length).name()).isEqualTo("a\\046b.\\000");
    }

    @Test
    void refusesAPointerLoopAForwardPointerAndTruncatedMessages() {
        byte[] header = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
        byte[] self = concat(header, new byte[]{(byte) 0xC0, 12, 0, 1, 0, 1});
        assertThatThrownBy(() -> DnsMessage.parse(self, self.length)).isInstanceOf(DnsFormatException.class)
                .hasMessageContaining("backwards");
        byte[] forward = concat(header, new byte[]{(byte) 0xC0, 14, 0, 0, 1, 0, 1});
        assertThatThrownBy(() -> DnsMessage.parse(forward, forward.length)).isInstanceOf(DnsFormatException.class);
        byte[] q = DnsWire.query(1, "server.default", 1);
        for (int cut = 0; cut < q.length; cut++) {
            int len = cut;
            assertThatThrownBy(() -> DnsMessage.parse(q, len)).as("cut at %d", cut)
                    .isInstanceOf(DnsFormatException.class);
        }
    }

    @Test
    void aBackwardPointerIsFollowedAndTheQuestionEndsAfterIt() throws Exception {
        // The header's NSCOUNT/ARCOUNT bytes at 8..11 read as the name "x": label "a", then a pointer to 8.
        byte[] header = {0, 7, 1, 0, 0, 1, 0, 0, 1, 'x', 0, 0};
        byte[] m = concat(header, new byte[]{1, 'a', (byte) 0xC0, 8, 0, 28, 0, 1});
        DnsMessage.Question q = DnsMessage.parse(m, m.length);
        assertThat(q.name()).isEqualTo("a.x");
        assertThat(q.type()).isEqualTo(DnsMessage.TYPE_AAAA);
        assertThat(q.wireName()).containsExactly(1, 'a', 1, 'x', 0);
    }

    @Test
    void refusesANameLongerThan255Bytes() {
        String label = "a".repeat(63);
        byte[] q = DnsWire.query(1, String.join(".", label, label, label, label, "b"), 1);
        assertThatThrownBy(() -> DnsMessage.parse(q, q.length)).isInstanceOf(DnsFormatException.class)
                .hasMessageContaining("255");
    }

    @Test
    void refusesOtherThanOneQuestion() {
        byte[] q = DnsWire.query(1, "a", 1);
        q[5] = 2;
        assertThatThrownBy(() -> DnsMessage.parse(q, q.length)).isInstanceOf(DnsFormatException.class)
                .hasMessageContaining("one question");
    }

    @Test
    void anAnswerThatDoesNotFitIsTruncatedAndFlagged() throws Exception {
        byte[] q = DnsWire.query(9, "many.default.svc.cluster.local", DnsMessage.TYPE_A);
        List<InetAddress> addrs = new ArrayList<>();
        for (int i = 1; i <= 60; i++) {
            addrs.add(InetAddress.ofLiteral("10.0.0." + i));
        }
        byte[] a = DnsMessage.answer(DnsMessage.parse(q, q.length), addrs, 5, DnsMessage.UDP_LIMIT);
        assertThat(a.length).isLessThanOrEqualTo(DnsMessage.UDP_LIMIT);
        assertThat(DnsWire.truncated(a)).isTrue();
        assertThat(DnsWire.addresses(a)).isEqualTo(addrs.subList(0, DnsWire.addresses(a).size()))
                .hasSize((DnsMessage.UDP_LIMIT - q.length) / 16);
        byte[] full = DnsMessage.answer(DnsMessage.parse(q, q.length), addrs, 5, DnsMessage.MAX_MESSAGE);
        assertThat(DnsWire.truncated(full)).isFalse();
        assertThat(DnsWire.addresses(full)).isEqualTo(addrs);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
