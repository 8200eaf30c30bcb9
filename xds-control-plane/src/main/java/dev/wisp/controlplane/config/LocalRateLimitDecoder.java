package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.LocalRateLimit;
import dev.wisp.controlplane.model.ObjectRef;
import java.time.Duration;

/**
 * Decodes {@code wisp.dev/v1alpha1 LocalRateLimit} strictly: {@code spec.tokens} (the bucket's size,
 * 1 to 1,000,000, required), {@code spec.tokensPerFill} (1 to 1,000,000, 1 when absent as in Envoy)
 * and {@code spec.fillInterval} (a Gateway API duration from 50 ms to 24 h, required). Errors name
 * the field.
 */
final class LocalRateLimitDecoder {
    static final int MAX_TOKENS = 1_000_000;
    static final Duration MIN_FILL = Duration.ofMillis(50);
    static final Duration MAX_FILL = Duration.ofHours(24);

    private LocalRateLimitDecoder() {}

    static LocalRateLimit localRateLimit(Fields f, YNode doc, ObjectRef ref) {
        YNode spec = HttpFaultDecoder.spec(f, doc, "required: tokens, fillInterval and optionally tokensPerFill",
                "tokens", "tokensPerFill", "fillInterval");
        if (spec == null) {
            return null;
        }
        int tokens = count(f, spec, "tokens", true);
        int perFill = count(f, spec, "tokensPerFill", false);
        Duration fill = RouteFilterDecoder.duration(f, spec, "fillInterval", "spec.fillInterval");
        if (f.child(spec, "fillInterval") == null) {
            f.error(spec, "spec.fillInterval", "required, such as 1s");
        } else if (fill != null && (fill.compareTo(MIN_FILL) < 0 || fill.compareTo(MAX_FILL) > 0)) {
            f.error(f.child(spec, "fillInterval"), "spec.fillInterval", "'" + f.string(spec, "fillInterval",
                    "spec.fillInterval") + "' is not from 50ms to 24h");
        }
        return new LocalRateLimit(ref, tokens, perFill, fill == null ? MIN_FILL : fill);
    }

    /** A whole number from 1 to {@link #MAX_TOKENS} at {@code spec.key}; 1 when absent and optional. */
    private static int count(Fields f, YNode spec, String key, boolean required) {
        String text = f.string(spec, key, "spec." + key);
        if (text == null) {
            if (required) {
                f.error(spec, "spec." + key, "required, 1 to " + MAX_TOKENS);
            }
            return 1;
        }
        return RouteFilterDecoder.integer(f, f.child(spec, key), text, "spec." + key, 1, MAX_TOKENS);
    }
}
