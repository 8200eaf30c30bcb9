package dev.wisp.node.capture;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.capture.PodRef;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A {@link PodFollower} that sets something up inside each pod's network namespace and keeps it until the
 * pod leaves: a pod added again is torn down and set up afresh, a pod without a namespace gets nothing,
 * and nothing is set up once closed.
 *
 * <p>Threads: {@link #podAdded}, {@link #podRemoved} and {@link #close} hold this object's monitor, so
 * {@link #setUp} and {@link #tearDown} run under it too.
 *
 * @param <T> what is kept for one pod
 */
public abstract class NetnsPodFollower<T> implements PodFollower, AutoCloseable {
    private final Map<String, T> pods = new HashMap<>();
    private boolean closed;

    /** Sets the pod up in its namespace ({@code pod.netns()} is not null); null: nothing to keep for it. */
    protected abstract T setUp(PodRef pod);

    /** Undoes what {@link #setUp} kept for a pod that left (its namespace may be gone already). */
    protected abstract void tearDown(T kept);

    @Override
    public final synchronized void podAdded(PodRef pod) {
        requireNonNull(pod, "pod");
        podRemoved(pod.id());
        if (closed || pod.netns() == null) {
            return;
        }
        T kept = setUp(pod);
        if (kept != null) {
            pods.put(pod.id(), kept);
        }
    }

    @Override
    public final synchronized void podRemoved(String uid) {
        T kept = pods.remove(requireNonNull(uid, "uid"));
        if (kept != null) {
            tearDown(kept);
        }
    }

    /** The pods something is kept for now. */
    protected final synchronized Set<String> podIds() {
        return Set.copyOf(pods.keySet());
    }

    /** Tears every pod down; later additions set nothing up. */
    @Override
    public synchronized void close() {
        closed = true;
        for (String uid : List.copyOf(pods.keySet())) {
            podRemoved(uid);
        }
    }
}
