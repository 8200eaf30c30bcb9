package dev.wisp.controlplane.config;

import java.util.List;
import java.util.Map;

/**
 * A parsed YAML value with the line it starts on, so that errors can name the line of the field.
 * {@code value} is a {@code Map<String, YNode>} (insertion-ordered), a {@code List<YNode>}, a
 * {@code String} (every scalar, as written) or null.
 */
record YNode(Object value, int line) {
    boolean isMap() {
        return value instanceof Map;
    }

    boolean isList() {
        return value instanceof List;
    }

    boolean isScalar() {
        return value instanceof String;
    }

    boolean isNull() {
        return value == null;
    }

    @SuppressWarnings("unchecked")
    Map<String, YNode> map() {
        return (Map<String, YNode>) value;
    }

    @SuppressWarnings("unchecked")
    List<YNode> list() {
        return (List<YNode>) value;
    }

    String scalar() {
        return (String) value;
    }

    /** How the value reads in an error message. */
    String describe() {
        if (value == null) {
            return "null";
        }
        if (isMap()) {
            return "a mapping";
        }
        if (isList()) {
            return "a list";
        }
        return "'" + value + "'";
    }
}
