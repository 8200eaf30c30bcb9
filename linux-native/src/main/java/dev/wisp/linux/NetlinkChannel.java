package dev.wisp.linux;

import java.nio.ByteOrder;
import java.util.List;

/**
 * Where netlink requests go and their answers come from: a {@link NetlinkSocket} to the kernel, or
 * in tests a scripted stand-in that answers with messages built to the kernel's layout.
 */
public interface NetlinkChannel {
    /**
     * Sends one request and returns its answer's data messages (see {@link NetlinkSocket#request}).
     *
     * @throws NativeException the refusal ({@link NetlinkException}) or a failed call
     */
    List<NetlinkMessage> request(String what, byte[] message) throws NativeException;

    /** The byte order of the integers in the messages. */
    ByteOrder order();
}
