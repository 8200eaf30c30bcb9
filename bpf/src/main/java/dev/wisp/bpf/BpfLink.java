package dev.wisp.bpf;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.internal.LibBpf;
import dev.wisp.linux.Errno;
import dev.wisp.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A kernel BPF link: one program attached to one cgroup or network namespace. The attachment lives
 * as long as something holds the link, this object's descriptor or a pin in bpffs; so
 * {@link #close()} detaches an unpinned link and merely lets go of a pinned one. {@link #detach()}
 * detaches regardless of pins. Not thread-safe; owned by whoever attached or opened it.
 */
public final class BpfLink implements AutoCloseable {
    private final String what;
    private MemorySegment link; // NULL once closed

    BpfLink(MemorySegment link, String what) {
        this.link = link;
        this.what = what;
    }

    /** Opens the link pinned at {@code path}, e.g. by an earlier run of the agent. */
    public static BpfLink openPinned(Path path) throws BpfException {
        requireNonNull(path, "path");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(a);
            MemorySegment l = (MemorySegment) LibBpf.LINK_OPEN.invokeExact(err, a.allocateFrom(path.toString()));
            if (l.address() == 0) {
                throw new BpfException("bpf_link__open(" + path + ")",
                        Libc.errno(err) == 0 ? Errno.ENOENT : Libc.errno(err));
            }
            return new BpfLink(l, "pinned link " + path);
        } catch (BpfException e) {
            throw e;
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_link__open", t);
        }
    }

    /** Pins the link at {@code path} (on bpffs) so that it outlives this process. */
    public void pin(Path path) throws BpfException {
        requireNonNull(path, "path");
        intCall(LibBpf.LINK_PIN, "bpf_link__pin(" + path + ")", path.toString());
    }

    /** Removes the pin; the link then lives only as long as this object. */
    public void unpin() throws BpfException {
        intCall(LibBpf.LINK_UNPIN, "bpf_link__unpin(" + what + ")", null);
    }

    /** Atomically replaces the attached program (same type), keeping the attachment and any pin. */
    public void update(BpfProgram program) throws BpfException {
        requireNonNull(program, "program");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(a);
            int rc = (int) LibBpf.LINK_UPDATE.invokeExact(err, live(), program.handle());
            if (rc < 0) {
                throw new BpfException("bpf_link__update_program(" + what + ", " + program.name() + ")",
                        LibBpf.errnoOf(rc, err));
            }
        } catch (BpfException e) {
            throw e;
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_link__update_program", t);
        }
    }

    /** Detaches the program now, even if the link is pinned elsewhere. */
    public void detach() throws BpfException {
        intCall(LibBpf.LINK_DETACH, "bpf_link__detach(" + what + ")", null);
    }

    private void intCall(java.lang.invoke.MethodHandle h, String call, String path) throws BpfException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(a);
            int rc = path == null
                    ? (int) h.invokeExact(err, live())
                    : (int) h.invokeExact(err, live(), a.allocateFrom(path));
            if (rc < 0) {
                throw new BpfException(call, LibBpf.errnoOf(rc, err));
            }
        } catch (BpfException e) {
            throw e;
        } catch (Throwable t) {
            throw LibBpf.unexpected(call, t);
        }
    }

    private MemorySegment live() {
        if (link == null) {
            throw new IllegalStateException(what + " is closed");
        }
        return link;
    }

    /** Releases this handle: an unpinned link is detached, a pinned one stays attached. */
    @Override
    public void close() {
        if (link == null) {
            return;
        }
        try (Arena a = Arena.ofConfined()) {
            int rc = (int) LibBpf.LINK_DESTROY.invokeExact(Libc.newErrnoBuffer(a), link);
            if (rc < 0) {
                throw new IllegalStateException("bpf_link__destroy(" + what + ") failed: " + -rc);
            }
        } catch (IllegalStateException e) {
            throw e;
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_link__destroy", t);
        } finally {
            link = null;
        }
    }

    @Override
    public String toString() {
        return "BpfLink[" + what + "]";
    }
}
