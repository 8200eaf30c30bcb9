package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The pure core of one netlink request's answer: fed the datagrams the socket reads, it keeps the
 * messages of this request's sequence number, skips the rest (another request's late ack, a
 * datagram not sent by the kernel), and says when the answer is complete: an {@code NLMSG_ERROR}
 * with errno 0 (the ack) or, for a dump, {@code NLMSG_DONE}. A negative errno, in an error message
 * or at the end of a dump, becomes a {@link NetlinkException} naming the request, with the kernel's
 * extended-ack message when there is one. Every header length is checked against the datagram. Not
 * thread-safe: one per request, on the requesting thread.
 */
final class NetlinkReplies {
    /** The control messages ({@code NLMSG_*}) that pad, end or break an answer; every other type is data. */
    enum Control {
        NOOP(1), ERROR(2), DONE(3), OVERRUN(4);

        private static final Control[] ALL = values();

        final int type;

        Control(int type) {
            this.type = type;
        }

        /** The control message of {@code type}, or null for a data message. */
        static Control of(int type) {
            for (Control c : ALL) {
                if (c.type == type) {
                    return c;
                }
            }
            return null;
        }
    }

    private final String what;
    private final int seq;
    private final ByteOrder order;
    private final long maxBytes;
    private final List<NetlinkMessage> messages = new ArrayList<>();
    private long bytes;
    private int skipped;
    private boolean complete;

    /**
     * @param what names the request in errors
     * @param maxBytes the most this answer may hold (a bound on what the kernel can make us keep)
     */
    NetlinkReplies(String what, int seq, ByteOrder order, long maxBytes) {
        this.what = requireNonNull(what, "what");
        this.seq = seq;
        this.order = requireNonNull(order, "order");
        this.maxBytes = maxBytes;
    }

    /**
     * One datagram, {@code length} bytes of {@code buf}, from the netlink port {@code senderPort} (0 is
     * the kernel). Returns true once the answer is complete.
     *
     * @throws NetlinkException the kernel's refusal, or a malformed datagram
     */
    boolean accept(byte[] buf, int length, int senderPort) throws NetlinkException {
        if (complete) {
            throw new IllegalStateException("the answer to " + what + " is already complete");
        }
        if (senderPort != 0) {
            skipped++;
            return false;
        }
        ByteBuffer b = ByteBuffer.wrap(buf, 0, length).order(order);
        int at = 0;
        while (length - at >= NetlinkWriter.NLMSG_HDRLEN) {
            int len = b.getInt(at);
            int type = Short.toUnsignedInt(b.getShort(at + 4));
            int flags = Short.toUnsignedInt(b.getShort(at + 6));
            int msgSeq = b.getInt(at + 8);
            if (len < NetlinkWriter.NLMSG_HDRLEN || len > length - at) {
                throw NetlinkException.malformed(what, "message at offset " + at + " claims " + Integer
                        .toUnsignedString(len) + " bytes, " + (length - at) + " remain");
            }
            int body = at + NetlinkWriter.NLMSG_HDRLEN;
            int bodyLength = len - NetlinkWriter.NLMSG_HDRLEN;
            at = Math.min(length, at + NetlinkWriter.align(len));
            if (msgSeq != seq) {
                skipped++;
                continue;
            }
            switch (Control.of(type)) {
                case NOOP -> skipped++;
                case ERROR -> {
                    int error = intAt(b, body, bodyLength, "error message");
                    if (error == 0) {
                        complete = true;
                        return true;
                    }
                    if (error > 0) {
                        throw NetlinkException.malformed(what, "error message with a positive errno " + error);
                    }
                    throw new NetlinkException(what, -error,
                            NetlinkExtendedAck.message(buf, body, bodyLength, flags, order, what), null);
                }
                case DONE -> {
                    int error = bodyLength >= 4 ? b.getInt(body) : 0;
                    if (error < 0) {
                        throw new NetlinkException(what, -error,
                                NetlinkExtendedAck.message(buf, body, bodyLength, flags, order, what),
                                "the dump ended in an error");
                    }
                    complete = true;
                    return true;
                }
                case OVERRUN -> throw new NetlinkException(what, Errno.ENOBUFS, null,
                        "the kernel dropped part of the answer (overrun)");
                case null -> {
                    bytes += len;
                    if (bytes > maxBytes) {
                        throw new NetlinkException(what, Errno.ENOBUFS, null, "the answer passed " + maxBytes
                                + " bytes, the most this reader keeps");
                    }
                    byte[] payload = new byte[bodyLength];
                    System.arraycopy(buf, body, payload, 0, bodyLength);
                    // Not complete yet: a single answer is followed by the ack asked for, a dump by NLMSG_DONE.
                    messages.add(new NetlinkMessage(type, flags, msgSeq, payload));
                }
            }
        }
        if (at != length) {
            throw NetlinkException.malformed(what, (length - at) + " stray byte(s) after the last message");
        }
        return false;
    }

    private int intAt(ByteBuffer b, int body, int bodyLength, String which) throws NetlinkException {
        if (bodyLength < 4) {
            throw NetlinkException.malformed(what, which + " of " + bodyLength + " bytes has no errno");
        }
        return b.getInt(body);
    }

    /** The data messages, in order (complete once {@link #accept} returned true). */
    List<NetlinkMessage> messages() {
        return List.copyOf(messages);
    }

    /** Messages and datagrams skipped: another sequence, not from the kernel, or no-ops. */
    int skipped() {
        return skipped;
    }
}
