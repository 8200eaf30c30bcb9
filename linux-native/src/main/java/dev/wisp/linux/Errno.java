package dev.wisp.linux;

import java.util.Map;
import java.util.stream.Collectors;

/** Names and operator hints for the errno values Wisp's native calls meet. */
public final class Errno {
    /** Tried without the privilege it needs. */
    public static final int EPERM = 1;
    /** No such file, map entry or link. */
    public static final int ENOENT = 2;
    /** A blocking call interrupted by a signal: retried ({@link Libc}). */
    public static final int EINTR = 4;
    /** Also stands for a Java I/O failure around a native step. */
    public static final int EIO = 5;
    /** Nothing to read or write on a non-blocking descriptor now. */
    public static final int EAGAIN = 11;
    /** The object exists already. */
    public static final int EEXIST = 17;
    /** A call that failed without setting errno is reported as this. */
    public static final int EINVAL = 22;
    /** A peer that broke its protocol (the WireGuard UAPI answers it to a malformed line). */
    public static final int EPROTO = 71;
    public static final int EADDRINUSE = 98;
    /** No such device (a link that is not there). */
    public static final int ENODEV = 19;
    /** The kernel lacks the feature (e.g. an unknown link kind). */
    public static final int EOPNOTSUPP = 95;
    /** A message larger than the reader takes. */
    public static final int EMSGSIZE = 90;
    /** No buffer space: a netlink answer too large or overrun. */
    public static final int ENOBUFS = 105;

    /** {@code number name description [| hint]}, one errno a line. */
    private static final String TEXT = """
            1 EPERM operation not permitted | needs root (CAP_NET_ADMIN / CAP_BPF / CAP_SYS_ADMIN)
            2 ENOENT no such file or directory
            4 EINTR interrupted system call
            5 EIO input/output error
            7 E2BIG argument list too long
            9 EBADF bad file descriptor
            11 EAGAIN resource temporarily unavailable
            12 ENOMEM out of memory | for BPF maps, check the locked-memory limit (ulimit -l)
            13 EACCES permission denied | needs root, or the verifier refused the program
            14 EFAULT bad address
            16 EBUSY device or resource busy
            17 EEXIST file exists
            19 ENODEV no such device
            22 EINVAL invalid argument
            28 ENOSPC no space left on device
            38 ENOSYS function not implemented | the kernel lacks this feature
            71 EPROTO protocol error
            90 EMSGSIZE message too long
            93 EPROTONOSUPPORT protocol not supported | the kernel lacks this netlink protocol
            95 EOPNOTSUPP operation not supported | the kernel lacks this feature
            97 EAFNOSUPPORT address family not supported by protocol
            98 EADDRINUSE address already in use
            105 ENOBUFS no buffer space available
            107 ENOTCONN transport endpoint is not connected
            """;

    private record Known(String name, String description, String hint) {}

    private static final Map<Integer, Known> TABLE = TEXT.lines().map(l -> l.split(" ", 3))
            .collect(Collectors.toUnmodifiableMap(f -> Integer.parseInt(f[0]), f -> {
                String[] rest = f[2].split(" \\| ", 2);
                return new Known(f[1], rest[0], rest.length > 1 ? rest[1] : null);
            }));

    private Errno() {}

    /** Symbolic name, e.g. {@code "EPERM"}, or {@code "errno 123"} when unknown. */
    public static String name(int errno) {
        Known e = TABLE.get(errno);
        return e != null ? e.name() : "errno " + errno;
    }

    /** The C library's description, or a generic one. */
    public static String describe(int errno) {
        Known e = TABLE.get(errno);
        return e != null ? e.description() : "unknown error";
    }

    /** What an operator can do about it, or {@code null}. */
    public static String hint(int errno) {
        Known e = TABLE.get(errno);
        return e != null ? e.hint() : null;
    }
}
