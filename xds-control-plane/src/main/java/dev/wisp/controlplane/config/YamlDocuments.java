package dev.wisp.controlplane.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Splits multi-document YAML into trees that remember lines. Jackson's YAML parser streams tokens
 * with locations; building our own tree (instead of Jackson's {@code JsonNode}) keeps the line of
 * every field, which the validation errors name.
 */
final class YamlDocuments {
    /** Nesting limit: configuration is shallow; anything deeper is hostile or a mistake. */
    private static final int MAX_DEPTH = 64;
    private static final YAMLFactory FACTORY = new YAMLFactory();

    private YamlDocuments() {}

    /** A YAML syntax error at a line. */
    static final class SyntaxException extends Exception {
        private static final long serialVersionUID = 1L;
        final int line;

        SyntaxException(int line, String message) {
            super(message);
            this.line = line;
        }
    }

    /** Every non-empty document of {@code text}, in order. */
    static List<YNode> parse(String text) throws SyntaxException {
        List<YNode> docs = new ArrayList<>();
        try (JsonParser p = FACTORY.createParser(text)) {
            JsonToken t;
            while ((t = p.nextToken()) != null) {
                YNode doc = read(p, t, 0);
                if (!doc.isNull()) {
                    docs.add(doc);
                }
            }
        } catch (JsonProcessingException e) {
            int line = e.getLocation() == null ? 0 : e.getLocation().getLineNr();
            throw new SyntaxException(line, "invalid YAML: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new SyntaxException(0, "invalid YAML: " + e.getMessage());
        }
        return docs;
    }

    /** The tree as plain maps, lists and strings (for writing it back as YAML). */
    static Object plain(YNode n) {
        if (n.isMap()) {
            Map<String, Object> out = new LinkedHashMap<>();
            n.map().forEach((k, v) -> out.put(k, plain(v)));
            return out;
        }
        if (n.isList()) {
            return n.list().stream().map(YamlDocuments::plain).toList();
        }
        return n.value();
    }

    private static YNode read(JsonParser p, JsonToken t, int depth) throws IOException, SyntaxException {
        int line = p.currentTokenLocation().getLineNr();
        if (depth > MAX_DEPTH) {
            throw new SyntaxException(line, "nesting deeper than " + MAX_DEPTH + " levels");
        }
        switch (t) {
            case START_OBJECT -> {
                Map<String, YNode> map = new LinkedHashMap<>();
                JsonToken k;
                while ((k = p.nextToken()) == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    int keyLine = p.currentTokenLocation().getLineNr();
                    YNode v = read(p, p.nextToken(), depth + 1);
                    if (map.containsKey(name)) {
                        throw new SyntaxException(keyLine, "duplicate key '" + name + "'");
                    }
                    // A field's line is where its key is written: that is where the operator looks.
                    map.put(name, new YNode(v.value(), keyLine));
                }
                if (k != JsonToken.END_OBJECT) {
                    throw new SyntaxException(line, "unterminated mapping");
                }
                return new YNode(map, line);
            }
            case START_ARRAY -> {
                List<YNode> list = new ArrayList<>();
                JsonToken e;
                while ((e = p.nextToken()) != JsonToken.END_ARRAY) {
                    if (e == null) {
                        throw new SyntaxException(line, "unterminated list");
                    }
                    list.add(read(p, e, depth + 1));
                }
                return new YNode(list, line);
            }
            case VALUE_NULL -> {
                return new YNode(null, line);
            }
            case VALUE_STRING, VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT, VALUE_TRUE, VALUE_FALSE, VALUE_EMBEDDED_OBJECT -> {
                return new YNode(p.getText(), line);
            }
            default -> throw new SyntaxException(line, "unexpected " + t);
        }
    }
}
