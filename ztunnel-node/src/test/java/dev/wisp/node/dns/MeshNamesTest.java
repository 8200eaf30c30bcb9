package dev.wisp.node.dns;

import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.node.Fixtures;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import java.net.InetAddress;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class MeshNamesTest {
    static final String SERVER = "server.default.svc.cluster.local";
    static final String HEADLESS = "db.default.svc.cluster.local";
    WorkloadIndex index;
    MeshNames names;

    @BeforeEach
    void state() throws Exception {
        index = WorkloadIndex.create();
        index.apply(StateUpdates.WORKLOAD, List.of(
                res(workload("db-0", "db", "n1", "10.1.0.7").putServices("default/" + HEADLESS, Fixtures.ports(5432,
                        5432))),
                res(workload("db-1", "db", "n2", "10.1.0.8").putServices("default/" + HEADLESS, Fixtures.ports(5432,
                        5432)))),
                List.of());
        Resource dual = Fixtures.service(SERVER, "10.96.0.10", 80, 8080).toBuilder()
                .setService(Fixtures.service(SERVER, "10.96.0.10", 80, 8080).getService().toBuilder()
                        .addAddresses(ByteString.copyFrom(InetAddress.ofLiteral("fd00::10").getAddress())))
                .build();
        Resource headless = Resource.newBuilder().setName("default/" + HEADLESS).setVersion("1")
                .setService(Service.newBuilder().setName("db").setNamespace("default").setHostname(HEADLESS)).build();
        index.apply(StateUpdates.SERVICE, List.of(dual, headless), List.of());
        names = new MeshNames(index);
    }

    byte[] answer(String name, int type) {
        byte[] q = DnsWire.query(42, name, type);
        MeshNames.Reply r = names.reply(q, q.length, DnsMessage.UDP_LIMIT);
        assertThat(r).as("reply to %s type %d", name, type).isInstanceOf(MeshNames.Reply.Answer.class);
        byte[] a = ((MeshNames.Reply.Answer) r).message();
        assertThat(DnsMessage.u16(a, 0)).isEqualTo(42);
        return a;
    }

    @Test
    void aServiceNameIsAnsweredWithItsVipPerFamilyInAnyCase() throws Exception {
        assertThat(DnsWire.addresses(answer("Server.Default.svc.cluster.local", DnsMessage.TYPE_A)))
                .containsExactly(InetAddress.ofLiteral("10.96.0.10"));
        assertThat(DnsWire.addresses(answer(SERVER, DnsMessage.TYPE_AAAA)))
                .containsExactly(InetAddress.ofLiteral("fd00::10"));
        assertThat(DnsWire.rcode(answer(SERVER, DnsMessage.TYPE_A))).isZero();
    }

    @Test
    void aHeadlessServiceIsAnsweredWithItsEndpointsAndNoDataForTheOtherFamily() throws Exception {
        assertThat(DnsWire.addresses(answer(HEADLESS, DnsMessage.TYPE_A)))
                .containsExactlyInAnyOrder(InetAddress.ofLiteral("10.1.0.7"), InetAddress.ofLiteral("10.1.0.8"));
        byte[] noV6 = answer(HEADLESS, DnsMessage.TYPE_AAAA);
        assertThat(DnsWire.rcode(noV6)).isZero();
        assertThat(DnsWire.addresses(noV6)).isEmpty();
    }

    @Test
    void otherNamesAndSrvGoUpstream() {
        for (byte[] q : List.of(DnsWire.query(1, "example.org", DnsMessage.TYPE_A),
                DnsWire.query(1, "other.default.svc.cluster.local", DnsMessage.TYPE_A),
                DnsWire.query(1, "_http._tcp." + SERVER, DnsWire.TYPE_SRV),
                DnsWire.query(1, SERVER, DnsWire.TYPE_SRV))) {
            assertThat(names.reply(q, q.length, DnsMessage.UDP_LIMIT)).isInstanceOf(MeshNames.Reply.Forward.class);
        }
    }

    @Test
    void aStateChangeIsAnsweredAtOnce() throws Exception {
        index.apply(StateUpdates.SERVICE, List.of(Fixtures.service(SERVER, "10.96.0.99", 80, 8080)), List.of());
        assertThat(DnsWire.addresses(answer(SERVER, DnsMessage.TYPE_A)))
                .containsExactly(InetAddress.ofLiteral("10.96.0.99"));
        index.apply(StateUpdates.SERVICE, List.of(), List.of("default/" + SERVER));
        byte[] q = DnsWire.query(1, SERVER, DnsMessage.TYPE_A);
        assertThat(names.reply(q, q.length, DnsMessage.UDP_LIMIT)).isInstanceOf(MeshNames.Reply.Forward.class);
    }

    @Test
    void aMalformedQueryGetsFormErrAndAResponseOrRuntGetsNothing() {
        byte[] loop = {0, 5, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, (byte) 0xC0, 12, 0, 1, 0, 1};
        MeshNames.Reply r = names.reply(loop, loop.length, DnsMessage.UDP_LIMIT);
        assertThat(r).isInstanceOf(MeshNames.Reply.Answer.class);
        assertThat(DnsWire.rcode(((MeshNames.Reply.Answer) r).message())).isEqualTo(DnsMessage.RCODE_FORMERR);
        byte[] response = DnsWire.query(1, SERVER, DnsMessage.TYPE_A);
        response[2] |= (byte) 0x80;
        assertThat(names.reply(response, response.length, 512)).isInstanceOf(MeshNames.Reply.Drop.class);
        assertThat(names.reply(new byte[5], 5, 512)).isInstanceOf(MeshNames.Reply.Drop.class);
    }
}
