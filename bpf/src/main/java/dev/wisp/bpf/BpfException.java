package dev.wisp.bpf;

import dev.wisp.linux.NativeException;

/**
 * A libbpf or bpf(2) call failed. The message is one line naming the call and the cause (with an
 * operator hint such as "needs CAP_BPF/root"); {@link #log()} keeps what libbpf printed during the
 * call, e.g. the full verifier log of a rejected program.
 */
public final class BpfException extends NativeException {
    private static final long serialVersionUID = 1L;

    private final String log;

    public BpfException(String call, int errno) {
        this(call, errno, null, "");
    }

    public BpfException(String call, int errno, String detail, String log) {
        super(call, errno, detail);
        this.log = log == null ? "" : log;
    }

    /** What libbpf printed while the call ran (the verifier log on a load failure), or empty. */
    public String log() {
        return log;
    }
}
