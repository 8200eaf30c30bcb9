package dev.wisp.node.dns;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.wisp.node.Fixtures;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;

/**
 * Pods' DNS queries are hostile input: whatever the bytes, {@link MeshNames#reply} returns a reply —
 * never an exception, which would end the proxy's UDP loop for every pod — and an answer fits the
 * UDP limit, carries the query's ID and, unless it is FORMERR, repeats the query's question. Seeds
 * (replayed in every build): {@code MeshNamesFuzzTestInputs}.
 */
class MeshNamesFuzzTest {
    static MeshNames names;

    @BeforeAll
    static void state() throws Exception {
        WorkloadIndex index = WorkloadIndex.create();
        index.apply(StateUpdates.SERVICE, List.of(Fixtures.service("server.default.svc.cluster.local", "10.96.0.10",
                80, 8080)), List.of());
        names = new MeshNames(index);
    }

    @FuzzTest(maxDuration = "10s")
    void anyBytesFromAPod(byte[] input) throws Exception {
        MeshNames.Reply r = names.reply(input, input.length, DnsMessage.UDP_LIMIT);
        if (r instanceof MeshNames.Reply.Answer(byte[] a)) {
            assertThat(a.length).isBetween(DnsMessage.HEADER, DnsMessage.UDP_LIMIT);
            assertThat(DnsMessage.id(a, a.length)).isEqualTo(DnsMessage.id(input, input.length));
            if (DnsWire.rcode(a) != DnsMessage.RCODE_FORMERR) {
                DnsMessage.Question asked = DnsMessage.parse(input, input.length);
                DnsMessage.Question answered = DnsMessage.parse(a, a.length);
                assertThat(answered.name()).isEqualTo(asked.name());
                assertThat(answered.type()).isEqualTo(asked.type());
            }
        } else if (r instanceof MeshNames.Reply.Forward) {
            assertThat(input.length).isGreaterThanOrEqualTo(DnsMessage.HEADER);
        }
    }
}
