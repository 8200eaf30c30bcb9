package dev.wisp.controlplane.model;

/** Where an object was declared: the file (relative to the config directory) and its line. */
public record Origin(String file, int line) {
    @Override
    public String toString() {
        return file + ":" + line;
    }
}
