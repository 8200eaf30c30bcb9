package dev.wisp.controlplane.xds;

import dev.wisp.controlplane.translate.Translation;

/**
 * One published configuration: the translation every stream converges to, its generation
 * (increasing), and when it was published (monotonic nanos, for push latency).
 */
public record Snapshot(long generation, Translation translation, long publishedNanos) {}
