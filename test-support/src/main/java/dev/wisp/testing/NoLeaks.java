package dev.wisp.testing;

import io.netty.buffer.AbstractByteBuf;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test class that leaked a Netty buffer: {@code @ExtendWith(NoLeaks.class)}. Before the
 * class it turns leak detection to {@code PARANOID} (every buffer tracked) and sets a listener on the
 * detector every {@code ByteBuf} reports to; after the class it forces garbage collection until the
 * detector has seen every unreachable buffer, and fails with the leak records if there were any.
 *
 * <p>Netty reports a leak only when a buffer that was never released has been collected and a later
 * allocation polls the detector's queue, hence the loop of {@code System.gc()} and tracked
 * allocations in {@link #check}. One listener per JVM (the detector is a static of
 * {@link AbstractByteBuf}); the leaks it saw are kept in this class, guarded by its lock.
 */
public final class NoLeaks implements BeforeAllCallback, AfterAllCallback {
    /** Leak records (Netty's text) seen since the last {@link #check}; guarded by {@code NoLeaks.class}. */
    private static final List<String> LEAKS = new ArrayList<>();
    private static boolean installed;

    @Override
    public void beforeAll(ExtensionContext context) {
        install();
    }

    @Override
    public void afterAll(ExtensionContext context) {
        assertNone(context.getDisplayName());
    }

    /**
     * {@link #check}, failing with the first leak record if there was a leak; a fuzz target calls it
     * every few thousand inputs so that a leak stops a fuzzing run as a finding.
     */
    public static void assertNone(String what) {
        List<String> leaks = check();
        if (!leaks.isEmpty()) {
            throw new AssertionError(what + " leaked " + leaks.size()
                    + " Netty buffer(s) (a ByteBuf without its release); first record:\n" + leaks.getFirst());
        }
    }

    /** Turns on paranoid detection and the listener (idempotent). */
    public static synchronized void install() {
        ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
        if (installed) {
            return;
        }
        try {
            Field f = AbstractByteBuf.class.getDeclaredField("leakDetector");
            f.setAccessible(true);
            ResourceLeakDetector<?> detector = (ResourceLeakDetector<?>) f.get(null);
            detector.setLeakListener((type, records) -> {
                synchronized (NoLeaks.class) {
                    LEAKS.add(type + ": " + records);
                }
            });
            installed = true;
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(
                    "cannot reach Netty's ByteBuf leak detector (AbstractByteBuf.leakDetector); "
                            + "has Netty renamed it?",
                    e);
        }
    }

    /**
     * Collects garbage and polls the detector until it has reported whatever was unreachable, then
     * returns (and forgets) the leaks seen so far.
     */
    public static List<String> check() {
        install();
        for (int round = 0; round < 5; round++) {
            System.gc();
            // Each tracked allocation polls the detector's reference queue and reports what is there.
            for (int i = 0; i < 64; i++) {
                ByteBuf a = UnpooledByteBufAllocator.DEFAULT.directBuffer(1);
                a.release();
                ByteBuf b = PooledByteBufAllocator.DEFAULT.heapBuffer(1);
                b.release();
            }
        }
        synchronized (NoLeaks.class) {
            List<String> seen = List.copyOf(LEAKS);
            LEAKS.clear();
            return seen;
        }
    }
}
