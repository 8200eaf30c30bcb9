package dev.wisp.linux;

/**
 * A netlink request the kernel refused ({@code NLMSG_ERROR} with a negative errno, or a dump that
 * ended in one), or a reply that broke the format ({@link Errno#EPROTO}). Names the request, the
 * errno with its description, and the kernel's own sentence when it gave one (extended ack,
 * {@code NLMSGERR_ATTR_MSG}, e.g. "Unknown device type").
 */
public final class NetlinkException extends NativeException {
    private static final long serialVersionUID = 1L;

    private final String kernelMessage;

    /**
     * @param request the request, e.g. {@code CTRL_CMD_GETFAMILY "wireguard"}
     * @param errno the positive errno
     * @param kernelMessage the extended ack's message, or null
     * @param detail what it means for the caller, or null
     */
    public NetlinkException(String request, int errno, String kernelMessage, String detail) {
        super(request, errno, join(kernelMessage, detail));
        this.kernelMessage = kernelMessage;
    }

    /** A reply that does not follow the netlink format: what the kernel (or anyone) sent is not trusted. */
    public static NetlinkException malformed(String what, String detail) {
        return new NetlinkException(what, Errno.EPROTO, null, "malformed reply: " + detail);
    }

    /** The kernel's extended-ack message, or null when it sent none. */
    public String kernelMessage() {
        return kernelMessage;
    }

    private static String join(String kernel, String detail) {
        if (kernel == null || kernel.isEmpty()) {
            return detail;
        }
        return detail == null ? "the kernel says \"" + kernel + "\"" : "the kernel says \"" + kernel + "\"; " + detail;
    }
}
