package dev.wisp.e2e;

import dev.wisp.linux.Libc;
import dev.wisp.linux.Sockets;
import java.net.InetAddress;
import java.net.InetSocketAddress;

/**
 * A stand-in app in the agent's place (its cgroup, its outbound address and port): accepts one
 * connection and prints what {@code getsockopt(SO_ORIGINAL_DST)} on the accepted socket answers, as
 * any app holding the agent's accepted socket would see it. Arguments: address port.
 */
public final class OriginalDstProbe {
    private OriginalDstProbe() {}

    public static void main(String[] args) throws Exception {
        int listener = Sockets.listen(new InetSocketAddress(InetAddress.ofLiteral(args[0]), Integer.parseInt(args[1])),
                16);
        System.out.println("listening");
        System.out.flush();
        int fd = Sockets.accept(listener);
        InetSocketAddress dst = Sockets.originalDestination(fd);
        System.out.println("ORIGINAL_DST " + dst.getAddress().getHostAddress() + ":" + dst.getPort());
        System.out.flush();
        Libc.close(fd);
        Libc.close(listener);
    }
}
