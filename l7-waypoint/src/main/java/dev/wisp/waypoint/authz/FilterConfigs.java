package dev.wisp.waypoint.authz;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import io.envoyproxy.envoy.config.route.v3.FilterConfig;
import java.util.Optional;

/** A virtual host's {@code typed_per_filter_config} entry, unwrapped from an optional {@link FilterConfig}. */
final class FilterConfigs {
    private FilterConfigs() {}

    /** {@code config} (or the config it wraps) as {@code type}; empty when absent or of another type. */
    static <T extends Message> Optional<T> unpack(Any config, Class<T> type) {
        if (config == null) {
            return Optional.empty();
        }
        try {
            Any inner = config.is(FilterConfig.class) ? config.unpack(FilterConfig.class).getConfig() : config;
            return inner.is(type) ? Optional.of(inner.unpack(type)) : Optional.empty();
        } catch (InvalidProtocolBufferException e) {
            return Optional.empty();
        }
    }
}
