package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Links over rtnetlink ({@code <linux/rtnetlink.h>}, {@code <linux/if_link.h>}): create one of a
 * kind ({@code RTM_NEWLINK} with {@code IFLA_LINKINFO}/{@code IFLA_INFO_KIND}, e.g.
 * {@code "wireguard"}), look one up by name, set its MTU and bring it up, delete it. On a
 * {@link NetlinkSocket} of {@link NetlinkSocket#NETLINK_ROUTE}, in that socket's network namespace;
 * creating and changing links needs {@code CAP_NET_ADMIN}. Stateless and thread-safe.
 */
public final class RtNetlink {
    static final int RTM_NEWLINK = 16;
    static final int RTM_DELLINK = 17;
    static final int RTM_GETLINK = 18;
    static final int IFLA_IFNAME = 3;
    static final int IFLA_MTU = 4;
    static final int IFLA_LINKINFO = 18;
    static final int IFLA_INFO_KIND = 1;
    /** {@code IFF_UP}. */
    public static final int IFF_UP = 0x1;
    /** {@code sizeof(struct ifinfomsg)}. */
    static final int IFINFOMSG = 16;

    /**
     * A link as the kernel reports it.
     *
     * @param kind {@code IFLA_INFO_KIND} (e.g. {@code "wireguard"}, {@code "veth"}), or null for a
     *     link without one (loopback, physical)
     */
    public record Link(int index, String name, int flags, int mtu, String kind) {
        public boolean up() {
            return (flags & IFF_UP) != 0;
        }
    }

    private RtNetlink() {}

    /** {@code RTM_NEWLINK} that creates a link {@code name} of {@code kind} (and fails if it exists). */
    public static byte[] newLinkRequest(String name, String kind, ByteOrder order) {
        return NetlinkWriter.link(order, RTM_NEWLINK, NetlinkWriter.REQUEST_WITH_ACK | NetlinkWriter.NLM_F_CREATE
                | NetlinkWriter.NLM_F_EXCL, 0, 0, 0, 0)
                .string(IFLA_IFNAME, checkName(name))
                .begin(IFLA_LINKINFO).string(IFLA_INFO_KIND, requireNonNull(kind, "kind")).end()
                .finish();
    }

    /**
     * Creates the link {@code name} of {@code kind}.
     *
     * @throws NetlinkException the kernel's refusal: {@code EOPNOTSUPP} ("Unknown device type") for a
     *     kind it has no driver for, {@code EEXIST}, {@code EPERM} without {@code CAP_NET_ADMIN}
     */
    public static void createLink(NetlinkChannel socket, String name, String kind) throws NativeException {
        String what = "RTM_NEWLINK " + name + " kind " + kind;
        try {
            socket.request(what, newLinkRequest(name, kind, socket.order()));
        } catch (NetlinkException e) {
            if (e.errno() == Errno.EOPNOTSUPP) {
                throw new NetlinkException(what, e.errno(), e.kernelMessage(), "this kernel cannot create links of "
                        + "kind \"" + kind + "\" (no driver: is its module available?)");
            }
            throw e;
        }
    }

    /**
     * The link called {@code name}.
     *
     * @throws NetlinkException {@code ENODEV} when there is none
     */
    public static Link link(NetlinkChannel socket, String name) throws NativeException {
        String what = "RTM_GETLINK " + name;
        byte[] request = NetlinkWriter.link(socket.order(), RTM_GETLINK, NetlinkWriter.REQUEST_WITH_ACK, 0, 0, 0, 0)
                .string(IFLA_IFNAME, checkName(name)).finish();
        List<NetlinkMessage> answer = socket.request(what, request);
        if (answer.size() != 1) {
            throw NetlinkException.malformed(what, answer.size() + " messages where one link was expected");
        }
        return decodeLink(answer.get(0), socket.order(), what + " reply");
    }

    /** Sets the link's MTU (when {@code mtu > 0}) and brings it up. */
    public static void setMtuAndUp(NetlinkChannel socket, int index, int mtu) throws NativeException {
        NetlinkWriter w = NetlinkWriter.link(socket.order(), RTM_NEWLINK, NetlinkWriter.REQUEST_WITH_ACK, 0, index,
                IFF_UP, IFF_UP);
        if (mtu > 0) {
            w.u32(IFLA_MTU, mtu);
        }
        socket.request("RTM_NEWLINK index " + index + " up, MTU " + mtu, w.finish());
    }

    /** Deletes the link {@code index}. */
    public static void deleteLink(NetlinkChannel socket, int index) throws NativeException {
        socket.request("RTM_DELLINK index " + index, NetlinkWriter.link(socket.order(), RTM_DELLINK,
                NetlinkWriter.REQUEST_WITH_ACK, 0, index, 0, 0).finish());
    }

    /** One {@code RTM_NEWLINK} message (the answer to a get). Pure. */
    public static Link decodeLink(NetlinkMessage m, ByteOrder order, String what) throws NetlinkException {
        if (m.type() != RTM_NEWLINK) {
            throw NetlinkException.malformed(what, "message type " + m.type() + " is not RTM_NEWLINK");
        }
        NetlinkAttributes a = m.attributes(IFINFOMSG, order, what);
        ByteBuffer h = ByteBuffer.wrap(m.payload()).order(order);
        NetlinkAttributes.Attribute name = a.first(IFLA_IFNAME);
        NetlinkAttributes.Attribute mtu = a.first(IFLA_MTU);
        NetlinkAttributes.Attribute info = a.first(IFLA_LINKINFO);
        NetlinkAttributes.Attribute kind = info == null ? null : info.nested().first(IFLA_INFO_KIND);
        return new Link(h.getInt(4), name == null ? null : name.string(), h.getInt(8), mtu == null ? 0 : mtu.u32(),
                kind == null ? null : kind.string());
    }

    private static String checkName(String name) {
        requireNonNull(name, "name");
        if (name.isEmpty() || name.length() > 15) {
            throw new IllegalArgumentException("interface name '" + name + "' must be 1-15 characters");
        }
        return name;
    }
}
