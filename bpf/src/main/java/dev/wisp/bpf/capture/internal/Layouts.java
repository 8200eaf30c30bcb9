package dev.wisp.bpf.capture.internal;

import static dev.wisp.linux.Sockets.AF_INET6;
import static dev.wisp.linux.Sockets.AF_INET;
import dev.wisp.bpf.Codec;
import dev.wisp.bpf.capture.CaptureConfig;
import dev.wisp.bpf.capture.FlowEvent;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The byte layouts of capture.bpf.c's structs (x86-64, little-endian, natural alignment) and codecs
 * for them. Pure; kept next to the C by the offsets written here, which {@code LayoutsTest} checks
 * against hand-made records.
 */
public final class Layouts {
    /** struct endpoint: addr[16], port u16, family u16. */
    static final int ENDPOINT = 20;
    /** struct tuple: local endpoint, remote endpoint. */
    static final int TUPLE = 40;
    /** struct orig_dst: endpoint, redirected u32, cgroup_id u64 at 24. */
    static final int ORIG_DST = 32;
    /** struct config. */
    static final int CONFIG = 44;
    /** struct flow_event. */
    public static final int FLOW_EVENT = 104;

    private Layouts() {}

    /** A redirect record: the original destination and the connecting cgroup. */
    public record OrigDst(InetSocketAddress destination, boolean redirected, long cgroupId) {}

    /** The agent-side key of a redirected connection. */
    public record Tuple(InetSocketAddress local, InetSocketAddress remote) {}

    /** The config map's value. */
    public record Config(InetSocketAddress out4, InetSocketAddress out6, int hbonePort, int inboundPort,
            List<Integer> meshPorts) {}

    static void writeEndpoint(MemorySegment s, long off, InetSocketAddress a) {
        byte[] raw = a.getAddress().getAddress();
        s.asSlice(off, ENDPOINT).fill((byte) 0);
        MemorySegment.copy(raw, 0, s, ValueLayout.JAVA_BYTE, off, raw.length);
        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, off + 16, (short) a.getPort());
        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, off + 18, (short) (raw.length == 4 ? AF_INET : AF_INET6));
    }

    static InetSocketAddress readEndpoint(MemorySegment s, long off) {
        int family = Short.toUnsignedInt(s.get(ValueLayout.JAVA_SHORT_UNALIGNED, off + 18));
        int port = Short.toUnsignedInt(s.get(ValueLayout.JAVA_SHORT_UNALIGNED, off + 16));
        if (family != AF_INET && family != AF_INET6) {
            return null;
        }
        byte[] raw = s.asSlice(off, family == AF_INET ? 4 : 16).toArray(ValueLayout.JAVA_BYTE);
        try {
            return new InetSocketAddress(InetAddress.getByAddress(raw), port);
        } catch (UnknownHostException e) {
            throw new IllegalStateException("impossible address length " + raw.length, e);
        }
    }

    /** An address alone (port 0), as the pod-address and bypass maps key them. */
    public static final Codec<InetAddress> ADDRESS = Codec.of(ENDPOINT,
            (v, s) -> writeEndpoint(s, 0, new InetSocketAddress(v, 0)), s -> {
                InetSocketAddress a = readEndpoint(s, 0);
                return a == null ? null : a.getAddress();
            });

    /** An address and port (struct endpoint). */
    public static final Codec<InetSocketAddress> ENDPOINT_CODEC = Codec.of(ENDPOINT, (v, s) -> writeEndpoint(s, 0, v),
            s -> readEndpoint(s, 0));

    public static final Codec<Tuple> TUPLE_CODEC = Codec.of(TUPLE, (v, s) -> {
        writeEndpoint(s, 0, v.local());
        writeEndpoint(s, ENDPOINT, v.remote());
    }, s -> new Tuple(readEndpoint(s, 0), readEndpoint(s, ENDPOINT)));

    public static final Codec<OrigDst> ORIG_DST_CODEC = Codec.of(ORIG_DST, (v, s) -> {
        s.fill((byte) 0);
        writeEndpoint(s, 0, v.destination());
        s.set(ValueLayout.JAVA_INT_UNALIGNED, 20, v.redirected() ? 1 : 0);
        s.set(ValueLayout.JAVA_LONG_UNALIGNED, 24, v.cgroupId());
    }, s -> new OrigDst(readEndpoint(s, 0), s.get(ValueLayout.JAVA_INT_UNALIGNED, 20) != 0,
            s.get(ValueLayout.JAVA_LONG_UNALIGNED, 24)));

    public static final Codec<Config> CONFIG_CODEC = Codec.of(CONFIG, Layouts::writeConfig, s -> {
        throw new UnsupportedOperationException("the config map is write-only from user space");
    });

    private static void writeConfig(Config c, MemorySegment into) {
        into.fill((byte) 0);
        // out4_addr is compared with the socket's address as stored, i.e. in network order; left 0
        // (IPv4 connects not captured) without an IPv4 listener.
        if (c.out4() != null) {
            MemorySegment.copy(c.out4().getAddress().getAddress(), 0, into, ValueLayout.JAVA_BYTE, 0, 4);
            into.set(ValueLayout.JAVA_SHORT_UNALIGNED, 4, (short) c.out4().getPort());
        }
        into.set(ValueLayout.JAVA_SHORT_UNALIGNED, 6, (short) c.hbonePort());
        if (c.out6() != null) {
            MemorySegment.copy(c.out6().getAddress().getAddress(), 0, into, ValueLayout.JAVA_BYTE, 8, 16);
            into.set(ValueLayout.JAVA_SHORT_UNALIGNED, 24, (short) c.out6().getPort());
        }
        into.set(ValueLayout.JAVA_SHORT_UNALIGNED, 26, (short) c.inboundPort());
        for (int i = 0; i < c.meshPorts().size(); i++) {
            into.set(ValueLayout.JAVA_SHORT_UNALIGNED, 28 + 2L * i, (short) (int) c.meshPorts().get(i));
        }
    }

    /** The config map value for {@code config}. */
    public static Config config(CaptureConfig config) {
        if (config.outbound4() != null && !(config.outbound4().getAddress() instanceof Inet4Address)) {
            throw new IllegalArgumentException("outbound4 must be an IPv4 address: " + config.outbound4());
        }
        return new Config(config.outbound4(), config.outbound6(), config.hbonePort(), config.inboundPort(),
                config.meshPorts());
    }

    /** Decodes one ring buffer record of {@code struct flow_event}. */
    public static FlowEvent flowEvent(ByteBuffer record) {
        if (record.remaining() < FLOW_EVENT) {
            throw new IllegalArgumentException(
                    "flow event of " + record.remaining() + " bytes, expected " + FLOW_EVENT);
        }
        byte[] copy = new byte[FLOW_EVENT];
        record.duplicate().order(ByteOrder.LITTLE_ENDIAN).get(copy);
        MemorySegment s = MemorySegment.ofArray(copy);
        int type = s.get(ValueLayout.JAVA_INT_UNALIGNED, 32);
        FlowEvent.Type t = switch (type) {
            case 1 -> FlowEvent.Type.OPENED;
            case 2 -> FlowEvent.Type.CLOSED;
            case 3 -> FlowEvent.Type.ACCEPTED;
            default -> throw new IllegalArgumentException("unknown flow event type " + type);
        };
        return new FlowEvent(t, s.get(ValueLayout.JAVA_LONG_UNALIGNED, 0), s.get(ValueLayout.JAVA_LONG_UNALIGNED, 8),
                s.get(ValueLayout.JAVA_INT_UNALIGNED, 36) != 0, readEndpoint(s, 40), readEndpoint(s, 60),
                readEndpoint(s, 80), s.get(ValueLayout.JAVA_LONG_UNALIGNED, 16),
                s.get(ValueLayout.JAVA_LONG_UNALIGNED, 24));
    }
}
