package dev.wisp.controlplane;

import io.grpc.MethodDescriptor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * gRPC calls whose messages are raw bytes, for tests that send what no generated stub would (a
 * malformed body) or serve a method no proto declares.
 */
public final class RawGrpc {
    /** A message as its bytes, unparsed. */
    public static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    private RawGrpc() {}

    /** A unary method {@code fullName} ({@code package.Service/Method}) of raw bytes both ways. */
    public static MethodDescriptor<byte[], byte[]> unary(String fullName) {
        return MethodDescriptor.<byte[], byte[]>newBuilder().setType(MethodDescriptor.MethodType.UNARY)
                .setFullMethodName(fullName).setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
    }

    /** {@code method} with raw bytes both ways, to send a body byte for byte. */
    public static MethodDescriptor<byte[], byte[]> raw(MethodDescriptor<?, ?> method) {
        return method.toBuilder(BYTES, BYTES).build();
    }
}
