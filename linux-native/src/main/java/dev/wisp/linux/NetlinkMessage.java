package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.nio.ByteOrder;

/**
 * One netlink message of a reply: the {@code struct nlmsghdr} fields and what follows the header
 * (the family's fixed header, then attributes). What the kernel sent: decode it with
 * {@link #attributes}, which checks every length. The payload array is the message's own copy.
 *
 * @param type {@code nlmsg_type}: for generic netlink the family id, for rtnetlink e.g. {@code RTM_NEWLINK}
 * @param flags {@code nlmsg_flags}
 * @param seq {@code nlmsg_seq}
 * @param payload the bytes after the 16-byte header, up to {@code nlmsg_len}
 */
public record NetlinkMessage(int type, int flags, int seq, byte[] payload) {
    public NetlinkMessage {
        requireNonNull(payload, "payload");
    }

    /**
     * The attributes after a fixed header of {@code fixedHeader} bytes (4 for generic netlink's
     * {@code genlmsghdr}, 16 for rtnetlink's {@code ifinfomsg}).
     *
     * @throws NetlinkException (EPROTO) when the message is shorter than the header or an attribute's
     *     length does not fit; {@code what} names the reply in the message
     */
    public NetlinkAttributes attributes(int fixedHeader, ByteOrder order, String what) throws NetlinkException {
        if (payload.length < fixedHeader) {
            throw NetlinkException.malformed(what, "a message of " + payload.length + " bytes is shorter than its "
                    + fixedHeader + "-byte header");
        }
        return NetlinkAttributes.parse(payload, fixedHeader, payload.length - fixedHeader, order, what);
    }

    /** For generic netlink: {@code genlmsghdr.cmd}. */
    public int genlCommand() {
        return payload.length > 0 ? Byte.toUnsignedInt(payload[0]) : -1;
    }
}
