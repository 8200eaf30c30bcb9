package dev.wisp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code wisp apply -f FILE}: creates or updates objects in a running control plane. */
@Command(name = "apply", mixinStandardHelpOptions = true, description = {
        "Create or update the objects of a YAML file in the running control plane (validated first;",
        "nothing changes if any document is invalid). Exit 0 on success, 1 when refused."})
public final class ApplyCommand implements Callable<Integer> {
    @Option(names = {"-f",
            "--filename"}, required = true, paramLabel = "FILE", description = "YAML file ('-' for stdin).")
    String file;

    @Option(names = "--server", paramLabel = "URL", defaultValue = AdminClient.DEFAULT, description = "Control plane admin API (default: ${DEFAULT-VALUE}).")
    String server;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        return Writes.run(spec, server, file, "/api/v1/apply");
    }

    /** Shared by apply and delete: send the file, print one kubectl-style line per object. */
    static final class Writes {
        private Writes() {}

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
}
