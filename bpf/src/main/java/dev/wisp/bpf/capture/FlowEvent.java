package dev.wisp.bpf.capture;

import java.net.InetSocketAddress;

/**
 * A TCP connection of a member pod opening or closing, as the kernel reported it.
 *
 * @param cookie the kernel's socket cookie, the same in the OPENED and CLOSED events of one socket
 * @param cgroupId the connecting task's cgroup id (inode of its cgroup v2 directory); 0 when the
 *     flow was not redirected (then the kernel hook that sees it has no task to ask)
 * @param source the pod's end
 * @param destination the peer as connected (the agent's outbound listener when redirected)
 * @param originalDestination what the application asked for
 * @param bytesSent bytes the peer acknowledged, in CLOSED events
 * @param bytesReceived bytes received, in CLOSED events
 */
public record FlowEvent(Type type, long cookie, long cgroupId, boolean redirected, InetSocketAddress source,
        InetSocketAddress destination, InetSocketAddress originalDestination, long bytesSent, long bytesReceived) {

    /** What happened. */
    public enum Type {
        /** The pod's connect completed (sockops ACTIVE_ESTABLISHED). */
        OPENED,
        /** A pod's listener accepted a connection (PASSIVE_ESTABLISHED). */
        ACCEPTED,
        /** The socket reached TCP_CLOSE; byte counts are final. */
        CLOSED
    }
}
