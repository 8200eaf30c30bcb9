package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The generic-netlink controller ({@code nlctrl}, the family with the fixed id {@code GENL_ID_CTRL})
 * as {@code <linux/genetlink.h>} lays it out: {@code CTRL_CMD_GETFAMILY} by name resolves a family's
 * id (a family such as {@code wireguard} gets its id when its module loads), and the same command as
 * a dump lists every family. Requests are pure ({@link #getFamilyRequest}); {@link #resolve} and
 * {@link #families} send them on a {@link NetlinkChannel} (a {@link NetlinkSocket} of {@link NetlinkSocket#NETLINK_GENERIC}).
 * Stateless and thread-safe.
 */
public final class GenericNetlink {
    /** The controller's fixed family id. */
    public static final int GENL_ID_CTRL = 0x10;
    static final int CTRL_CMD_NEWFAMILY = 1;
    static final int CTRL_CMD_GETFAMILY = 3;
    static final int CTRL_ATTR_FAMILY_ID = 1;
    static final int CTRL_ATTR_FAMILY_NAME = 2;
    static final int CTRL_ATTR_VERSION = 3;
    static final int CTRL_ATTR_HDRSIZE = 4;
    static final int CTRL_ATTR_MAXATTR = 5;
    static final int CTRL_ATTR_OPS = 6;
    static final int CTRL_ATTR_MCAST_GROUPS = 7;
    static final int CTRL_ATTR_OP_ID = 1;
    static final int CTRL_ATTR_OP_FLAGS = 2;
    static final int CTRL_ATTR_MCAST_GRP_NAME = 1;
    static final int CTRL_ATTR_MCAST_GRP_ID = 2;

    /** One command a family offers, with its {@code GENL_*} flags (e.g. {@code GENL_ADMIN_PERM}). */
    public record Operation(int id, int flags) {}

    /**
     * A generic-netlink family as the controller describes it.
     *
     * @param multicastGroups group name to group id, in the kernel's order
     */
    public record Family(int id, String name, int version, int headerSize, int maxAttribute,
            List<Operation> operations, Map<String, Integer> multicastGroups) {
        public Family {
            requireNonNull(name, "name");
            operations = List.copyOf(operations);
            multicastGroups = Map.copyOf(multicastGroups);
        }
    }

    private GenericNetlink() {}

    /** {@code CTRL_CMD_GETFAMILY} for {@code name} (the answer is one {@code CTRL_CMD_NEWFAMILY}). */
    public static byte[] getFamilyRequest(String name, int seq, ByteOrder order) {
        requireNonNull(name, "name");
        return NetlinkWriter.genl(order, GENL_ID_CTRL, NetlinkWriter.REQUEST_WITH_ACK, seq, CTRL_CMD_GETFAMILY, 1)
                .string(CTRL_ATTR_FAMILY_NAME, name).finish();
    }

    /**
     * The family called {@code name}.
     *
     * @throws NetlinkException {@code ENOENT} naming the family when this kernel has none of that name
     */
    public static Family resolve(NetlinkChannel socket, String name) throws NativeException {
        requireNonNull(socket, "socket");
        String what = "CTRL_CMD_GETFAMILY \"" + name + "\"";
        List<NetlinkMessage> answer;
        try {
            answer = socket.request(what, getFamilyRequest(name, 0, socket.order()));
        } catch (NetlinkException e) {
            if (e.errno() == Errno.ENOENT) {
                throw new NetlinkException(what, e.errno(), e.kernelMessage(), "this kernel has no generic-netlink "
                        + "family \"" + name + "\" (is its module loaded?)");
            }
            throw e;
        }
        if (answer.size() != 1) {
            throw NetlinkException.malformed(what, answer.size() + " messages where one family was expected");
        }
        return decode(answer.get(0), socket.order(), what + " reply");
    }

    /** Every family this kernel has now ({@code CTRL_CMD_GETFAMILY} as a dump). */
    public static List<Family> families(NetlinkChannel socket) throws NativeException {
        requireNonNull(socket, "socket");
        String what = "CTRL_CMD_GETFAMILY dump";
        byte[] request = NetlinkWriter.genl(socket.order(), GENL_ID_CTRL, NetlinkWriter.REQUEST_WITH_ACK
                | NetlinkWriter.NLM_F_DUMP, 0, CTRL_CMD_GETFAMILY, 1).finish();
        List<Family> out = new ArrayList<>();
        for (NetlinkMessage m : socket.request(what, request)) {
            out.add(decode(m, socket.order(), what));
        }
        return out;
    }

    /** One {@code CTRL_CMD_NEWFAMILY} message. Pure. */
    public static Family decode(NetlinkMessage m, ByteOrder order, String what) throws NetlinkException {
        if (m.type() != GENL_ID_CTRL || m.genlCommand() != CTRL_CMD_NEWFAMILY) {
            throw NetlinkException.malformed(what, "message type " + m.type() + " command " + m.genlCommand()
                    + " is not the controller's CTRL_CMD_NEWFAMILY");
        }
        NetlinkAttributes a = m.attributes(NetlinkWriter.GENL_HDRLEN, order, what);
        NetlinkAttributes.Attribute id = a.first(CTRL_ATTR_FAMILY_ID);
        NetlinkAttributes.Attribute name = a.first(CTRL_ATTR_FAMILY_NAME);
        if (id == null || name == null) {
            throw NetlinkException.malformed(what, "a family without its id or name");
        }
        List<Operation> ops = new ArrayList<>();
        for (NetlinkAttributes o : entries(a, CTRL_ATTR_OPS)) {
            ops.add(new Operation(required(o, CTRL_ATTR_OP_ID, what, "an operation's id").u32(), u32Or0(o,
                    CTRL_ATTR_OP_FLAGS)));
        }
        Map<String, Integer> groups = new LinkedHashMap<>();
        for (NetlinkAttributes g : entries(a, CTRL_ATTR_MCAST_GROUPS)) {
            groups.put(required(g, CTRL_ATTR_MCAST_GRP_NAME, what, "a multicast group's name").string(), required(g,
                    CTRL_ATTR_MCAST_GRP_ID, what, "a multicast group's id").u32());
        }
        return new Family(id.u16(), name.string(), u32Or0(a, CTRL_ATTR_VERSION), u32Or0(a, CTRL_ATTR_HDRSIZE),
                u32Or0(a, CTRL_ATTR_MAXATTR), ops, groups);
    }

    /** The entries of the nested array {@code type} (none when it is absent), each as its attributes. */
    private static List<NetlinkAttributes> entries(NetlinkAttributes a, int type) throws NetlinkException {
        List<NetlinkAttributes> out = new ArrayList<>();
        NetlinkAttributes.Attribute array = a.first(type);
        if (array != null) {
            for (NetlinkAttributes.Attribute e : array.nested().all()) {
                out.add(e.nested());
            }
        }
        return out;
    }

    private static NetlinkAttributes.Attribute required(NetlinkAttributes a, int type, String what, String thing)
            throws NetlinkException {
        NetlinkAttributes.Attribute x = a.first(type);
        if (x == null) {
            throw NetlinkException.malformed(what, thing + " is missing");
        }
        return x;
    }

    private static int u32Or0(NetlinkAttributes a, int type) throws NetlinkException {
        NetlinkAttributes.Attribute x = a.first(type);
        return x == null ? 0 : x.u32();
    }
}
