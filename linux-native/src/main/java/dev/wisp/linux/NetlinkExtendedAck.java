package dev.wisp.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The kernel's extended ack: the sentence ({@code NLMSGERR_ATTR_MSG}, e.g. "Unknown device type")
 * that an error message may carry after its errno and the echo of the request. Pure; every length
 * is checked against the message.
 */
final class NetlinkExtendedAck {
    /** {@code NLM_F_CAPPED}, {@code NLM_F_ACK_TLVS}: flags of an error message. */
    static final int NLM_F_CAPPED = 0x100;
    static final int NLM_F_ACK_TLVS = 0x200;
    /** {@code NLMSGERR_ATTR_MSG}: the extended ack's sentence. */
    static final int NLMSGERR_ATTR_MSG = 1;

    private NetlinkExtendedAck() {}

    /**
     * The extended ack's sentence: after the errno and the request's header (only the header when
     * {@code NLM_F_CAPPED}, else the whole request), attributes, when {@code NLM_F_ACK_TLVS} is set.
     */
    static String message(byte[] buf, int body, int bodyLength, int flags, ByteOrder order, String what)
            throws NetlinkException {
        if ((flags & NLM_F_ACK_TLVS) == 0 || bodyLength < 4 + NetlinkWriter.NLMSG_HDRLEN) {
            return null;
        }
        int echoed = (flags & NLM_F_CAPPED) != 0
                ? NetlinkWriter.NLMSG_HDRLEN
                : NetlinkWriter.align(ByteBuffer.wrap(buf).order(order).getInt(body + 4));
        if (echoed < NetlinkWriter.NLMSG_HDRLEN || echoed > bodyLength - 4) {
            throw NetlinkException.malformed(what, "error message echoes " + Integer.toUnsignedString(echoed)
                    + " bytes of the request, " + (bodyLength - 4) + " are there");
        }
        NetlinkAttributes.Attribute msg = NetlinkAttributes.parse(buf, body + 4 + echoed, bodyLength - 4 - echoed,
                order, what + " (extended ack)").first(NLMSGERR_ATTR_MSG);
        return msg == null ? null : msg.string();
    }
}
