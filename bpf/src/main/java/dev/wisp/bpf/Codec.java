package dev.wisp.bpf;

import static java.util.Objects.requireNonNull;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.function.BiConsumer;
import java.util.function.Function;

/**
 * How a key or value type maps to the bytes of a BPF map entry. Implementations are stateless;
 * integers are in the host's byte order, as the kernel stores them.
 */
public interface Codec<T> {
    /** The entry's size in bytes, which must equal the map's key or value size. */
    int size();

    void write(T value, MemorySegment into);

    T read(MemorySegment from);

    /** A codec from its size and two functions. */
    static <T> Codec<T> of(int size, BiConsumer<T, MemorySegment> writer, Function<MemorySegment, T> reader) {
        requireNonNull(writer, "writer");
        requireNonNull(reader, "reader");
        return new Codec<>() {
            @Override
            public int size() {
                return size;
            }

            @Override
            public void write(T value, MemorySegment into) {
                writer.accept(value, into);
            }

            @Override
            public T read(MemorySegment from) {
                return reader.apply(from);
            }
        };
    }

    /** A {@code __u32}. */
    static Codec<Integer> u32() {
        return of(4, (v, s) -> s.set(ValueLayout.JAVA_INT_UNALIGNED, 0, v),
                s -> s.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
    }

    /** A {@code __u64}. */
    static Codec<Long> u64() {
        return of(8, (v, s) -> s.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, v),
                s -> s.get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
    }

    /** A {@code __u8}. */
    static Codec<Byte> u8() {
        return of(1, (v, s) -> s.set(ValueLayout.JAVA_BYTE, 0, v), s -> s.get(ValueLayout.JAVA_BYTE, 0));
    }

    /** Raw bytes of a fixed size. */
    static Codec<byte[]> bytes(int size) {
        return of(size, (v, s) -> {
            if (v.length != size) {
                throw new IllegalArgumentException("expected " + size + " bytes, got " + v.length);
            }
            MemorySegment.copy(v, 0, s, ValueLayout.JAVA_BYTE, 0, size);
        }, s -> s.asSlice(0, size).toArray(ValueLayout.JAVA_BYTE));
    }
}
