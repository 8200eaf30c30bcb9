package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.ObjectRef;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;

/**
 * Typed reads from one YAML document that record an error (file, line, object, field) instead of
 * throwing, so that one pass reports every mistake of a document.
 */
final class Fields {
    private final String file;
    private final List<ConfigError> errors;
    private ObjectRef object;

    Fields(String file, List<ConfigError> errors) {
        this.file = file;
        this.errors = errors;
    }

    void object(ObjectRef ref) {
        this.object = ref;
    }

    ObjectRef object() {
        return object;
    }

    void error(YNode at, String field, String message) {
        errors.add(new ConfigError(file, at == null ? 0 : at.line(), object, field, message));
    }

    /** The mapping at {@code key}, or null when absent or null; an error when it is not a mapping. */
    Map<String, YNode> map(YNode parent, String key, String path) {
        YNode n = present(parent, key, path, YNode::isMap, "a mapping");
        return n == null ? null : n.map();
    }

    /**
     * The node at {@code key} when it is there and of the kind {@code is} accepts; null when absent or
     * null, and null with an error ("expected {@code kind}, found …") when it is of another kind.
     */
    private YNode present(YNode parent, String key, String path, Predicate<YNode> is, String kind) {
        YNode n = child(parent, key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!is.test(n)) {
            error(n, path, "expected " + kind + ", found " + n.describe());
            return null;
        }
        return n;
    }

    YNode child(YNode parent, String key) {
        if (parent == null || !parent.isMap()) {
            return null;
        }
        return parent.map().get(key);
    }

    /** The scalar at {@code key}, or null when absent; an error when it is not a scalar. */
    String string(YNode parent, String key, String path) {
        YNode n = present(parent, key, path, YNode::isScalar, "a string");
        return n == null ? null : n.scalar();
    }

    /** The list at {@code key}; empty when absent; an error when it is not a list. */
    List<YNode> list(YNode parent, String key, String path) {
        YNode n = present(parent, key, path, YNode::isList, "a list");
        return n == null ? List.of() : n.list();
    }

    /**
     * Decodes each entry of the list at {@code key} (see {@link #list}), handing {@code entry} the
     * item and its own field path {@code path[i]}, the path its errors name.
     */
    void each(YNode parent, String key, String path, BiConsumer<YNode, String> entry) {
        List<YNode> items = list(parent, key, path);
        for (int i = 0; i < items.size(); i++) {
            entry.accept(items.get(i), path + "[" + i + "]");
        }
    }

    /** The list of scalars at {@code key}; each non-scalar entry is an error. */
    List<String> strings(YNode parent, String key, String path) {
        List<String> out = new ArrayList<>();
        List<YNode> items = list(parent, key, path);
        for (int i = 0; i < items.size(); i++) {
            String s = scalar(items.get(i), path + "[" + i + "]");
            if (s != null) {
                out.add(s);
            }
        }
        return out;
    }

    /** A string-to-string mapping (labels, selectors); null when absent. */
    Map<String, String> stringMap(YNode parent, String key, String path) {
        Map<String, YNode> m = map(parent, key, path);
        if (m == null) {
            return null;
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (var e : m.entrySet()) {
            String s = scalar(e.getValue(), path + "." + e.getKey());
            if (s != null) {
                out.put(e.getKey(), s);
            }
        }
        return out;
    }

    /** An entry of a list or mapping that must be a scalar: its text, or null with an error. */
    private String scalar(YNode item, String path) {
        if (!item.isScalar()) {
            error(item, path, "expected a string, found " + item.describe());
            return null;
        }
        return item.scalar();
    }

    /** Refuses fields the schema does not know: a typo must not silently widen a policy. */
    void allowOnly(YNode node, String path, String... known) {
        if (node == null || !node.isMap()) {
            return;
        }
        Set<String> allowed = Set.of(known);
        for (var e : node.map().entrySet()) {
            if (!allowed.contains(e.getKey())) {
                String field = path.isEmpty() ? e.getKey() : path + "." + e.getKey();
                error(e.getValue(), field,
                        "unknown field; expected one of " + String.join(", ", new TreeSet<>(allowed)));
            }
        }
    }

    /** A required enum value (upper-case names); {@code fallback} when absent. */
    <E extends Enum<E>> E enumValue(YNode parent, String key, String path, Class<E> type, E fallback) {
        String s = string(parent, key, path);
        if (s == null) {
            return fallback;
        }
        for (E e : type.getEnumConstants()) {
            if (e.name().equals(s)) {
                return e;
            }
        }
        error(child(parent, key), path, "'" + s + "' is not one of "
                + String.join(", ", Arrays.stream(type.getEnumConstants()).map(Enum::name).toList()));
        return fallback;
    }

    /** A TCP port number 1..65535 written as a number or a string; -1 (and an error) otherwise. */
    int port(YNode at, String value, String path) {
        try {
            int p = Integer.parseInt(value.trim());
            if (p >= 1 && p <= 65535) {
                return p;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        error(at, path, "'" + value + "' is not a port number (1-65535)");
        return -1;
    }
}
