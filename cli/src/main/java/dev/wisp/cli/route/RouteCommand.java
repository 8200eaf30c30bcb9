package dev.wisp.cli.route;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.wisp.cli.InputFile;
import dev.wisp.cli.UsageCommand;
import dev.wisp.cli.UserException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code wisp route}: offline tools for L7 routes (the twin of {@code wisp policy}). */
@Command(name = "route", mixinStandardHelpOptions = true, description = "L7 route tools.", subcommands = {
        RouteCommand.Check.class})
public final class RouteCommand extends UsageCommand {

    /** Exit codes of {@code wisp route check}; input it cannot use exits {@link UserException#INVALID}. */
    public static final int FORWARDED = 0;
    public static final int NOT_FORWARDED = 1;

    /** {@code wisp route check}: what a waypoint does with one request, offline. */
    @Command(name = "check", mixinStandardHelpOptions = true, description = {
            "Decide what a waypoint would do with one request to a service port, with the control plane's",
            "decoder and route engine over FILEs (HTTPRoute, GRPCRoute, Service, Pod … YAML). Prints one",
            "JSON object: status (200 forwarded, else the redirect/404/500/503 code), route, rule, backend,",
            "path and host as sent upstream, requestHeaders after the filters, location, mirrors,",
            "and with --sample N the backends chosen over N draws (draws not forwarded count under their status).",
            "The reason is written to standard error.",
            "", "Exit codes: 0 forwarded, 1 not forwarded, 2 refused input."})
    static final class Check implements Callable<Integer> {
        private static final int MAX_SAMPLE = 10_000_000;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Option(names = {"-f",
                "--file"}, required = true, paramLabel = "FILE", description = "YAML the control plane reads (repeatable).")
        List<Path> files = new ArrayList<>();

        @Option(names = "--to", required = true, paramLabel = "NS/SERVICE:PORT", description = "The service port the request is sent to.")
        String to;

        @Option(names = "--request", required = true, paramLabel = "\"METHOD PATH[?QUERY]\"", description = "The request line, e.g. \"GET /api?page=2\".")
        String request;

        @Option(names = "--header", paramLabel = "\"Name: value\"", description = "A request header (repeatable); Host sets the authority (default SERVICE.NS.svc.DOMAIN[:PORT]).")
        List<String> headers = new ArrayList<>();

        @Option(names = "--sample", paramLabel = "N", description = "Also draw N times and count the backends chosen.")
        int sample;

        @Option(names = "--seed", paramLabel = "S", description = "Seed of the weighted draws (default: random), for repeatable samples.")
        Long seed;

        @Option(names = {"-o",
                "--output"}, paramLabel = "FORMAT", defaultValue = "json", description = "Output format: json (the only one).")
        String output;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            if (!output.equals("json")) {
                throw UserException.invalid("-o: '" + output + "' is not json");
            }
            if (sample < 0 || sample > MAX_SAMPLE) {
                throw UserException.invalid("--sample: " + sample + " is not 0.." + MAX_SAMPLE);
            }
            Map<String, String> texts = new LinkedHashMap<>();
            for (Path f : files) {
                if (texts.put(f.toString(), read(f)) != null) {
                    throw UserException.invalid("-f: " + f + " is given twice");
                }
            }
            RouteCheck.Result result;
            try {
                result = RouteCheck.check(texts, new RouteCheck.Query(to, request, headers, sample),
                        seed == null ? new Random(new SecureRandom().nextLong()) : new Random(seed));
            } catch (RouteCheck.InvalidFilesException e) {
                throw InputFile.refused("the files are", e.errors(), err);
            } catch (IllegalArgumentException e) {
                throw UserException.invalid(e.getMessage());
            }
            try {
                out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                        .writeValueAsString(result.json()));
            } catch (JsonProcessingException e) {
                throw new IllegalStateException("a decision that cannot be written as JSON", e);
            }
            out.flush();
            err.println(result.reason());
            err.flush();
            return (Integer) result.json().get("status") == 200 ? FORWARDED : NOT_FORWARDED;
        }

        private static String read(Path file) {
            return InputFile.read(file);
        }
    }
}
