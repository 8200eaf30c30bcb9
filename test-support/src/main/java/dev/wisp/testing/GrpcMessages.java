package dev.wisp.testing;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Parser;
import java.util.Optional;

/**
 * Fuzz input as the bytes of one gRPC message. gRPC decodes a message before any handler sees it
 * and ends the call when it does not parse, so such input reaches none of our code: a fuzz test
 * decodes its bytes here and tests only what decodes.
 */
public final class GrpcMessages {
    private GrpcMessages() {}

    /** {@code bytes} decoded by {@code parser}, or empty when gRPC would refuse them. */
    public static <T> Optional<T> decode(Parser<T> parser, byte[] bytes) {
        try {
            return Optional.of(parser.parseFrom(bytes));
        } catch (InvalidProtocolBufferException e) {
            return Optional.empty();
        }
    }
}
