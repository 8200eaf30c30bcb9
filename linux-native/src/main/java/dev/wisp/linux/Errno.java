package dev.wisp.linux;

import java.util.Map;

/** Names and operator hints for the errno values Wisp's native calls meet. */
public final class Errno {
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int EINTR = 4;
    public static final int EIO = 5;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EFAULT = 14;
    public static final int EBUSY = 16;
    public static final int EEXIST = 17;
    public static final int ENODEV = 19;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;
    public static final int E2BIG = 7;
    public static final int ENOSYS = 38;
    public static final int ENOTSUP = 95;
    public static final int EOPNOTSUPP = 95;
    public static final int EADDRINUSE = 98;
    public static final int ENOTCONN = 107;

    private static final Map<Integer, String[]> TABLE = Map.ofEntries(
            Map.entry(EPERM, new String[]{"EPERM", "operation not permitted",
                    "needs root (CAP_NET_ADMIN / CAP_BPF / CAP_SYS_ADMIN)"}),
            Map.entry(ENOENT, new String[]{"ENOENT", "no such file or directory", null}),
            Map.entry(EINTR, new String[]{"EINTR", "interrupted system call", null}),
            Map.entry(EIO, new String[]{"EIO", "input/output error", null}),
            Map.entry(E2BIG, new String[]{"E2BIG", "argument list too long", null}),
            Map.entry(EBADF, new String[]{"EBADF", "bad file descriptor", null}),
            Map.entry(EAGAIN, new String[]{"EAGAIN", "resource temporarily unavailable", null}),
            Map.entry(ENOMEM, new String[]{"ENOMEM", "out of memory",
                    "for BPF maps, check the locked-memory limit (ulimit -l)"}),
            Map.entry(EACCES,
                    new String[]{"EACCES", "permission denied", "needs root, or the verifier refused the program"}),
            Map.entry(EFAULT, new String[]{"EFAULT", "bad address", null}),
            Map.entry(EBUSY, new String[]{"EBUSY", "device or resource busy", null}),
            Map.entry(EEXIST, new String[]{"EEXIST", "file exists", null}),
            Map.entry(ENODEV, new String[]{"ENODEV", "no such device", null}),
            Map.entry(EINVAL, new String[]{"EINVAL", "invalid argument", null}),
            Map.entry(ENOSPC, new String[]{"ENOSPC", "no space left on device", null}),
            Map.entry(ENOSYS, new String[]{"ENOSYS", "function not implemented", "the kernel lacks this feature"}),
            Map.entry(EOPNOTSUPP,
                    new String[]{"EOPNOTSUPP", "operation not supported", "the kernel lacks this feature"}),
            Map.entry(EADDRINUSE, new String[]{"EADDRINUSE", "address already in use", null}),
            Map.entry(ENOTCONN, new String[]{"ENOTCONN", "transport endpoint is not connected", null}));

    private Errno() {}

    /** Symbolic name, e.g. {@code "EPERM"}, or {@code "errno 123"} when unknown. */
    public static String name(int errno) {
        String[] e = TABLE.get(errno);
        return e != null ? e[0] : "errno " + errno;
    }

    /** The C library's description, or a generic one. */
    public static String describe(int errno) {
        String[] e = TABLE.get(errno);
        return e != null ? e[1] : "unknown error";
    }

    /** What an operator can do about it, or {@code null}. */
    public static String hint(int errno) {
        String[] e = TABLE.get(errno);
        return e != null ? e[2] : null;
    }
}
