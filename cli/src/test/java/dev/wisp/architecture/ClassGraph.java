package dev.wisp.architecture;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.constantpool.PoolEntry;
import java.lang.classfile.constantpool.ClassEntry;
import java.lang.classfile.constantpool.Utf8Entry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Wisp's compiled main classes, each with the Maven module it was built in and the Wisp classes it refers to.
 *
 * <p>
 * References are read from each class file's constant pool: class entries (every type the code names) and the
 * descriptors and generic signatures of fields, methods and annotations, which is where a type that is only
 * declared, never instantiated, appears. That is what the compiler checked, so it is the module dependency as
 * it really is; a class started by name in a child JVM (a string such as {@code "dev.wisp.cli.Wisp"}) is not a
 * dependency and is not counted.
 */
record ClassGraph(Map<String, WispClass> classes) {

    /** One main class: binary name with dots ({@code dev.wisp.node.state.WorkloadIndex}), module, references. */
    record WispClass(String name, String module, Set<String> references) {
        String packageName() {
            int dot = name.lastIndexOf('.');
            return dot < 0 ? "" : name.substring(0, dot);
        }
    }

    private static final String ROOT = "dev/wisp/";
    private static final Pattern WISP_TYPE = Pattern.compile("dev/wisp/[A-Za-z0-9_/$]+");

    ClassGraph {
        classes = Map.copyOf(classes);
    }

    /** Builds the graph from class files given per module, as a test does with classes it generates. */
    static ClassGraph of(Map<String, List<byte[]>> classFilesByModule) {
        Map<String, WispClass> classes = new LinkedHashMap<>();
        classFilesByModule.forEach((module, files) -> files.forEach(bytes -> add(classes, module, bytes)));
        return new ClassGraph(classes);
    }

    /**
     * Reads every Wisp main class on this JVM's class path. Entries are a module's {@code target/classes}
     * directory or its jar ({@code <module>/target/*.jar}, or {@code wisp-<module>-<version>.jar}); test class
     * directories are skipped: the rules are about main code.
     */
    static ClassGraph fromClassPath() {
        Map<String, List<byte[]>> byModule = new LinkedHashMap<>();
        for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
            Path path = Path.of(entry);
            String module = wispModule(path);
            if (module != null) {
                byModule.computeIfAbsent(module, _ -> new ArrayList<>()).addAll(readClassFiles(path));
            }
        }
        return of(byModule);
    }

    /** The module a class path entry was built in, or null when it is not a Wisp main-code entry. */
    static String wispModule(Path entry) {
        String file = entry.getFileName() == null ? "" : entry.getFileName().toString();
        Path parent = entry.getParent();
        boolean inTarget = parent != null && parent.getFileName() != null
                && parent.getFileName().toString().equals("target") && parent.getParent() != null;
        if (inTarget && (file.equals("classes") || file.startsWith("wisp-") && file.endsWith(".jar"))) {
            return Files.exists(parent.getParent().resolve("pom.xml"))
                    ? parent.getParent().getFileName().toString()
                    : null;
        }
        Matcher jar = Pattern.compile("wisp-(.+)-\\d[^-]*(-SNAPSHOT)?\\.jar").matcher(file);
        return jar.matches() ? jar.group(1) : null;
    }

    WispClass get(String name) {
        return classes.get(name);
    }

    Set<String> modules() {
        Set<String> modules = new TreeSet<>();
        classes.values().forEach(c -> modules.add(c.module()));
        return modules;
    }

    private static void add(Map<String, WispClass> classes, String module, byte[] bytes) {
        ClassModel model = ClassFile.of().parse(bytes);
        String self = model.thisClass().asInternalName();
        if (!self.startsWith(ROOT)) {
            return;
        }
        Set<String> references = new TreeSet<>();
        for (PoolEntry entry : model.constantPool()) {
            String text = switch (entry) {
                case ClassEntry c -> c.asInternalName();
                case Utf8Entry u -> u.stringValue();
                default -> null;
            };
            if (text != null && text.contains(ROOT)) {
                Matcher m = WISP_TYPE.matcher(text);
                while (m.find()) {
                    references.add(binaryName(m.group()));
                }
            }
        }
        references.remove(binaryName(self));
        WispClass previous = classes.put(binaryName(self),
                new WispClass(binaryName(self), module, Set.copyOf(references)));
        if (previous != null && !previous.module().equals(module)) {
            throw new IllegalStateException(binaryName(self) + " is built in both " + previous.module() + " and "
                    + module + ": one class, one module");
        }
    }

    /** {@code dev/wisp/a/B$C} → {@code dev.wisp.a.B}: a nested class belongs to its top-level class's package. */
    private static String binaryName(String internalName) {
        int dollar = internalName.indexOf('$');
        String top = dollar < 0 ? internalName : internalName.substring(0, dollar);
        return top.replace('/', '.');
    }

    private static List<byte[]> readClassFiles(Path entry) {
        try {
            if (Files.isDirectory(entry)) {
                try (Stream<Path> files = Files.walk(entry)) {
                    List<byte[]> out = new ArrayList<>();
                    for (Path p : files.filter(p -> p.toString().endsWith(".class")).toList()) {
                        if (!p.getFileName().toString().equals("module-info.class")) {
                            out.add(Files.readAllBytes(p));
                        }
                    }
                    return out;
                }
            }
            List<byte[]> out = new ArrayList<>();
            try (JarFile jar = new JarFile(entry.toFile())) {
                for (Enumeration<JarEntry> e = jar.entries(); e.hasMoreElements();) {
                    JarEntry je = e.nextElement();
                    if (je.getName().endsWith(".class") && !je.getName().endsWith("module-info.class")) {
                        try (InputStream in = jar.getInputStream(je)) {
                            out.add(in.readAllBytes());
                        }
                    }
                }
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("reading class path entry " + entry, e);
        }
    }
}
