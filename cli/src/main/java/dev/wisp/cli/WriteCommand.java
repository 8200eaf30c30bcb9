package dev.wisp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** What apply and delete share: the file, the server, and the kubectl-style report. */
abstract class WriteCommand implements Callable<Integer> {
    @Option(names = {"-f",
            "--filename"}, required = true, paramLabel = "FILE", description = "YAML file ('-' for stdin).")
    String file;

    @Mixin
    AdminServerOption server;

    @Spec
    CommandSpec spec;

    /** The admin API endpoint. */
    abstract String path();

    @Override
    public Integer call() {
        return run(spec, server.server, file, path());
    }

    /** Sends the file and prints one kubectl-style line per object. */
    static int run(CommandSpec spec, String server, String file, String path) {
        String yaml = read(file);
        String name = file.equals("-") ? "<stdin>" : Path.of(file).getFileName().toString();
        AdminClient.Reply r = new AdminClient(server).post(path, Map.of("file", name), yaml);
        if (r.status() != 200) {
            for (JsonNode e : r.body().path("errors")) {
                spec.commandLine().getErr().println("error: " + e.asText());
            }
            spec.commandLine().getErr().flush();
            return 1;
        }
        int exit = 0;
        for (JsonNode c : r.body().path("changes")) {
            String outcome = c.path("outcome").asText();
            if (outcome.equals("not found")) {
                spec.commandLine().getErr().println("Error from server (NotFound): "
                        + AdminClient.resourceName(c).replace("/", " \"") + "\" not found");
                exit = 1;
            } else {
                spec.commandLine().getOut().println(AdminClient.resourceName(c) + " " + outcome);
            }
        }
        spec.commandLine().getOut().flush();
        spec.commandLine().getErr().flush();
        return exit;
    }

    private static String read(String file) {
        try {
            if (file.equals("-")) {
                return limited(System.in);
            }
            try (InputStream in = Files.newInputStream(Path.of(file))) {
                return limited(in);
            }
        } catch (IOException e) {
            throw new UserException("cannot read " + file + ": " + e.getMessage());
        }
    }

    private static String limited(InputStream in) throws IOException {
        int max = 8 << 20;
        byte[] bytes = in.readNBytes(max + 1);
        if (bytes.length > max) {
            throw new UserException("the file is larger than " + max + " bytes");
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
