package dev.wisp.node.dns;

import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Test helper: writes DNS queries and reads the A/AAAA records of answers. */
final class DnsWire {
    static final int TYPE_SRV = 33;

    private DnsWire() {}

    static byte[] query(int id, String name, int type) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[]{(byte) (id >> 8), (byte) id, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0});
        for (String label : name.split("\\.")) {
            byte[] b = label.getBytes(StandardCharsets.US_ASCII);
            out.write(b.length);
            out.writeBytes(b);
        }
        out.writeBytes(new byte[]{0, (byte) (type >> 8), (byte) type, 0, 1});
        return out.toByteArray();
    }

    static int rcode(byte[] answer) {
        return answer[3] & 0xF;
    }

    static boolean truncated(byte[] answer) {
        return (answer[2] & 0x02) != 0;
    }

    /** The addresses in the answer section (the proxy's answers: header, one question, A/AAAA records). */
    static List<InetAddress> addresses(byte[] answer) throws UnknownHostException {
        int count = DnsMessage.u16(answer, 6);
        int pos = DnsMessage.HEADER;
        while (answer[pos] != 0) {
            pos += (answer[pos] & 0xFF) + 1;
        }
        pos += 5;
        List<InetAddress> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            pos += 2 + 8; // name pointer, type, class, TTL
            int len = DnsMessage.u16(answer, pos);
            pos += 2;
            byte[] a = new byte[len];
            System.arraycopy(answer, pos, a, 0, len);
            out.add(InetAddress.getByAddress(a));
            pos += len;
        }
        return out;
    }
}
