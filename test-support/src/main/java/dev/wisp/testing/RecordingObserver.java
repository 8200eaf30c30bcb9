package dev.wisp.testing;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * The receiving side of a gRPC call in a test: every message in arrival order, and how the call
 * ended (OK on completion, the error's status otherwise). A well-behaved call ends once; {@link #ends}
 * keeps every end reported so that a test can say so. Thread-safe: gRPC may call it on its own threads.
 */
public final class RecordingObserver<T> implements StreamObserver<T> {
    private final BlockingQueue<T> messages = new LinkedBlockingQueue<>();
    private final List<Status> ends = new CopyOnWriteArrayList<>();
    private final CompletableFuture<Status> end = new CompletableFuture<>();

    @Override
    public void onNext(T message) {
        messages.add(message);
    }

    @Override
    public void onError(Throwable t) {
        ended(Status.fromThrowable(t));
    }

    @Override
    public void onCompleted() {
        ended(Status.OK);
    }

    private void ended(Status status) {
        ends.add(status);
        end.complete(status);
    }

    /** The messages received so far (a test may take them as they come). */
    public BlockingQueue<T> messages() {
        return messages;
    }

    /** Every end the call reported, in order. */
    public List<Status> ends() {
        return ends;
    }

    /** The call's first end. */
    public CompletableFuture<Status> end() {
        return end;
    }
}
