package dev.wisp.bpf;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.internal.LibBpf;
import dev.wisp.linux.Errno;
import dev.wisp.linux.Libc;
import dev.wisp.linux.NativeException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One program of a loaded {@link BpfObject}. Its attach type comes from the ELF section name
 * ({@code cgroup/connect4}, {@code sockops}, {@code sk_lookup}, …); attaching returns a
 * {@link BpfLink} that detaches when closed unless pinned. Valid while its object is open.
 */
public final class BpfProgram {
    private static final Logger LOG = LoggerFactory.getLogger(BpfProgram.class);
    private static final int O_DIRECTORY = 0x10000;

    private final String name;
    private final MemorySegment program;
    private final BpfObject owner;

    BpfProgram(String name, MemorySegment program, BpfObject owner) {
        this.name = name;
        this.program = program;
        this.owner = owner;
    }

    public String name() {
        return name;
    }

    MemorySegment handle() {
        owner.requireLoaded();
        return program;
    }

    /** Attaches to the cgroup v2 directory {@code cgroup} (connect, sockops, sockopt, bind hooks). */
    public BpfLink attachCgroup(Path cgroup) throws BpfException {
        requireNonNull(cgroup, "cgroup");
        return attach(LibBpf.ATTACH_CGROUP, cgroup, Libc.O_RDONLY | O_DIRECTORY | Libc.O_CLOEXEC,
                "bpf_program__attach_cgroup(" + name + ", " + cgroup + ")");
    }

    /** Attaches to the network namespace {@code netns} (e.g. {@code /run/netns/pod}) for sk_lookup. */
    public BpfLink attachNetns(Path netns) throws BpfException {
        requireNonNull(netns, "netns");
        return attach(LibBpf.ATTACH_NETNS, netns, Libc.O_RDONLY | Libc.O_CLOEXEC,
                "bpf_program__attach_netns(" + name + ", " + netns + ")");
    }

    private BpfLink attach(MethodHandle how, Path target, int flags, String call) throws BpfException {
        MemorySegment prog = handle();
        int fd;
        try {
            fd = Libc.open(target.toString(), flags);
        } catch (NativeException e) {
            throw new BpfException("open(" + target + ") to attach " + name, e.errno());
        }
        try {
            return LibBpf.collecting(() -> {
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment err = Libc.newErrnoBuffer(a);
                    MemorySegment link = (MemorySegment) how.invokeExact(err, prog, fd);
                    if (link.address() == 0) {
                        throw new BpfException(call, Libc.errno(err) == 0 ? Errno.EINVAL : Libc.errno(err));
                    }
                    return new BpfLink(link, call);
                } catch (BpfException e) {
                    throw e;
                } catch (Throwable t) {
                    throw LibBpf.unexpected(call, t);
                }
            }, (e, log) -> new BpfException(e.call(), e.errno(), null, log));
        } finally {
            try {
                Libc.close(fd);
            } catch (NativeException e) {
                // The link holds its own reference to the cgroup or netns, so this is only noise.
                LOG.debug("closing {} after attaching {}: {}", target, name, e.getMessage());
            }
        }
    }

    @Override
    public String toString() {
        return "BpfProgram[" + name + " of " + owner.name() + "]";
    }
}
