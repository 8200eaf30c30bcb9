package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.bpf.capture.PodRef;
import java.io.ByteArrayInputStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CNI plugin driven as a runtime drives it (environment and stdin, result on stdout), against a
 * pods directory, a netns directory and a cgroup root laid out as the kubelet does, in temporary
 * directories; the agent's confirmation is played by the test. {@code CniEnrollmentE2eTest} runs it
 * with a real agent and real namespaces.
 */
class CniPluginTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String UID = "7f3c1a2e-5b9d-4c8e-a1f0-123456789abc";

    @TempDir
    Path dir;
    CniHost host;
    Path netns;
    Path podCgroup;

    @BeforeEach
    void layout() throws Exception {
        host = CniHost.in(dir);
        netns = Files.createFile(host.netnsDir().resolve("cni-1234"));
        // The systemd driver's layout of a Burstable pod.
        podCgroup = Files.createDirectories(host.cgroupRoot().resolve("kubepods.slice/kubepods-burstable.slice/"
                + "kubepods-burstable-pod" + UID.replace('-', '_') + ".slice"));
    }

    String config(String extra) {
        return """
                {"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "wisp-cni",
                 "podsDir": "%s", "cgroupRoot": "%s", "netnsDirs": ["%s"], "enrollTimeoutSeconds": 1%s,
                 "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "%s"}],
                   "ips": [{"address": "10.244.1.7/24", "gateway": "10.244.1.1", "interface": 0}]}}
                """.formatted(host.pods(), host.cgroupRoot(), host.netnsDir(), extra, netns);
    }

    Map<String, String> env(String command) {
        Map<String, String> env = new HashMap<>(Map.of("CNI_COMMAND", command, "CNI_CONTAINERID", "abc123",
                "CNI_NETNS", netns.toString(), "CNI_IFNAME", "eth0", "CNI_PATH", "/opt/cni/bin", "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc123;"
                        + "K8S_POD_UID=" + UID));
        return env;
    }

    static CniPlugin.Outcome run(Map<String, String> env, String stdin) {
        return CniPlugin.run(env, new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
    }

    /** The spec's error JSON with {@code code}, and the exit status non-zero. */
    static JsonNode error(CniPlugin.Outcome o, int code) throws Exception {
        assertThat(o.exit()).as(o.stdout()).isEqualTo(code);
        JsonNode err = JSON.readTree(o.stdout());
        assertThat(err.path("code").asInt()).isEqualTo(code);
        assertThat(err.path("msg").asText()).isNotEmpty();
        return err;
    }

    /** Plays the agent: once the pod file appears, reads it as the agent does and confirms it. */
    CompletableFuture<PodRef> agentConfirms() {
        return CompletableFuture.supplyAsync(() -> {
            Path file = host.pods().resolve(UID + ".json");
            try {
                await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(10)).until(() -> Files.exists(
                        file));
                PodRef pod = PodFile.read(file);
                Files.writeString(PodFile.confirmation(host.pods(), UID), pod.netns().toString());
                return pod;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    @Test
    void addWritesThePodFileAndAnswersThePreviousResultOnceTheAgentConfirms() throws Exception {
        CompletableFuture<PodRef> agent = agentConfirms();
        CniPlugin.Outcome o = run(env("ADD"), config(""));
        assertThat(o.exit()).as(o.stdout()).isZero();
        JsonNode result = JSON.readTree(o.stdout());
        assertThat(result.at("/ips/0/address").asText()).isEqualTo("10.244.1.7/24");
        assertThat(result.path("cniVersion").asText()).isEqualTo("1.0.0");
        PodRef pod = agent.get(10, TimeUnit.SECONDS);
        assertThat(pod).isEqualTo(new PodRef(UID, podCgroup, netns, List.of(InetAddress.ofLiteral("10.244.1.7"))));
        try (var files = Files.list(host.pods())) {
            assertThat(files.map(p -> p.getFileName().toString())).as("no dot-file left").containsExactlyInAnyOrder(
                    UID + ".json", UID + ".enrolled");
        }
    }

    /** Wisp alone in its own conflist ({@code "chained": false}), as Multus calls it: no prevResult. */
    String ownConfig() {
        return """
                {"cniVersion": "1.0.0", "name": "wisp-cni", "type": "wisp-cni", "chained": false,
                 "podsDir": "%s", "cgroupRoot": "%s", "netnsDirs": ["%s"], "enrollTimeoutSeconds": 1}
                """.formatted(host.pods(), host.cgroupRoot(), host.netnsDir());
    }

    @Test
    void inItsOwnConflistAddEnrollsThePodWithTheAddressesOfItsNamespaceAndAnswersAnEmptyResult() throws Exception {
        List<Path> asked = new java.util.ArrayList<>();
        List<InetAddress> inNamespace = List.of(InetAddress.ofLiteral("10.244.1.9"), InetAddress.ofLiteral(
                "fd00:10:244:1::9"));
        CompletableFuture<PodRef> agent = agentConfirms();
        CniPlugin.Outcome o = CniPlugin.run(env("ADD"), new ByteArrayInputStream(ownConfig().getBytes(
                StandardCharsets.UTF_8)), ns -> {
                    asked.add(ns);
                    return inNamespace;
                });
        assertThat(o.exit()).as(o.stdout()).isZero();
        // No interface or address of its own: the minimal result of its version, nothing else.
        assertThat(JSON.readTree(o.stdout())).isEqualTo(JSON.readTree("{\"cniVersion\": \"1.0.0\"}"));
        assertThat(asked).containsExactly(netns);
        assertThat(agent.get(10, TimeUnit.SECONDS)).isEqualTo(new PodRef(UID, podCgroup, netns, inNamespace));
    }

    @Test
    void inItsOwnConflistANamespaceWithoutAddressesFailsClosedAndWithoutChainedFalseNoPrevResultIsAnError()
            throws Exception {
        JsonNode empty = error(CniPlugin.run(env("ADD"), new ByteArrayInputStream(ownConfig().getBytes(
                StandardCharsets.UTF_8)), ns -> List.of()), CniPlugin.TRY_AGAIN_LATER);
        assertThat(empty.path("msg").asText()).contains("has no address in " + netns).contains(
                "after the pod's primary network");
        JsonNode unreadable = error(CniPlugin.run(env("ADD"), new ByteArrayInputStream(ownConfig().getBytes(
                StandardCharsets.UTF_8)), ns -> {
                    throw new java.io.IOException("setns: EPERM");
                }), CniPlugin.IO_FAILURE);
        assertThat(unreadable.path("msg").asText()).contains("cannot read pod shop/web-0").contains("EPERM");
        JsonNode chained = error(run(env("ADD"), ownConfig().replace("\"chained\": false,", "")),
                CniPlugin.INVALID_CONFIG);
        assertThat(chained.path("msg").asText()).contains("no prevResult").contains("\"chained\": false");
        try (var files = Files.list(host.pods())) {
            assertThat(files).as("nothing written for the agent").isEmpty();
        }
    }

    @Test
    void addFailsAndRemovesThePodFileWhenNoAgentConfirms() throws Exception {
        Files.writeString(PodFile.confirmation(host.pods(), UID), "/var/run/netns/an-earlier-sandbox");
        JsonNode err = error(run(env("ADD"), config("")), CniPlugin.TRY_AGAIN_LATER);
        assertThat(err.path("msg").asText()).contains("did not confirm enrolling pod shop/web-0").contains(
                "within 1 s");
        assertThat(host.pods().resolve(UID + ".json")).doesNotExist();
    }

    @Test
    void theCgroupfsDriversLayoutIsFoundAndAMissingCgroupIsAnError() throws Exception {
        Files.delete(podCgroup);
        Path cgroupfs = Files.createDirectories(host.cgroupRoot().resolve("kubepods/besteffort/pod" + UID));
        CompletableFuture<PodRef> agent = agentConfirms();
        assertThat(run(env("ADD"), config("")).exit()).isZero();
        assertThat(agent.get(10, TimeUnit.SECONDS).cgroup()).isEqualTo(cgroupfs);
        Files.delete(cgroupfs);
        assertThat(error(run(env("ADD"), config("")), CniPlugin.UNKNOWN_CONTAINER).path("msg").asText()).contains(
                "no cgroup of pod shop/web-0");
    }

    @Test
    void delRemovesThePodFileAndTwiceIsFine() throws Exception {
        Files.writeString(host.pods().resolve(UID + ".json"), "{}");
        assertThat(run(env("DEL"), config(""))).isEqualTo(new CniPlugin.Outcome(0, ""));
        assertThat(host.pods().resolve(UID + ".json")).doesNotExist();
        assertThat(run(env("DEL"), config(""))).isEqualTo(new CniPlugin.Outcome(0, ""));
    }

    @Test
    void checkAsksForThePodFileAndTheConfirmation() throws Exception {
        error(run(env("CHECK"), config("")), CniPlugin.UNKNOWN_CONTAINER);
        agentConfirms();
        assertThat(run(env("ADD"), config("")).exit()).isZero();
        assertThat(run(env("CHECK"), config("")).exit()).isZero();
    }

    @Test
    void versionAnswersTheSupportedVersions() throws Exception {
        CniPlugin.Outcome o = run(Map.of("CNI_COMMAND", "VERSION"), "{\"cniVersion\": \"1.0.0\"}");
        assertThat(o.exit()).isZero();
        assertThat(JSON.readTree(o.stdout()).path("supportedVersions").toString()).contains("\"0.4.0\"", "\"1.0.0\"");
    }

    @Test
    void anOptedOutNamespacePassesThroughUnchanged() throws Exception {
        CniPlugin.Outcome o = run(env("ADD"), config(", \"excludeNamespaces\": [\"shop\"]"));
        assertThat(o.exit()).isZero();
        assertThat(JSON.readTree(o.stdout()).at("/ips/0/address").asText()).isEqualTo("10.244.1.7/24");
        assertThat(host.pods().resolve(UID + ".json")).doesNotExist();
    }

    @Test
    void malformedConfigurationOrArgumentsGetTheSpecsErrorCodes() throws Exception {
        error(run(env("ADD"), "{not json"), CniPlugin.DECODE_FAILURE);
        error(run(env("ADD"), "[1, 2]"), CniPlugin.DECODE_FAILURE);
        error(run(env("ADD"), config("").replace("\"1.0.0\", \"name\"", "\"9.9.9\", \"name\"")),
                CniPlugin.INCOMPATIBLE_VERSION);
        error(run(env("ADD"), "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"wisp-cni\"}"),
                CniPlugin.INVALID_CONFIG);
        error(run(env("ADD"), config(", \"enrollTimeoutSeconds\": 0").replace("\"enrollTimeoutSeconds\": 1,", "")),
                CniPlugin.INVALID_CONFIG);
        Map<String, String> noCommand = env("ADD");
        noCommand.remove("CNI_COMMAND");
        error(run(noCommand, config("")), CniPlugin.INVALID_ENVIRONMENT);
        error(run(env("UPDATE"), config("")), CniPlugin.INVALID_ENVIRONMENT);
        Map<String, String> noUid = env("ADD");
        noUid.put("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0");
        assertThat(error(run(noUid, config("")), CniPlugin.INVALID_ENVIRONMENT).path("msg").asText()).contains(
                "K8S_POD_UID");
        Map<String, String> noNetns = env("ADD");
        noNetns.remove("CNI_NETNS");
        error(run(noNetns, config("")), CniPlugin.INVALID_ENVIRONMENT);
        assertThat(host.pods().toFile().list()).isEmpty();
    }

    @Test
    void hostileInputIsRefusedBeforeAnythingIsWritten() throws Exception {
        Map<String, String> outside = env("ADD");
        outside.put("CNI_NETNS", "/etc/passwd");
        assertThat(error(run(outside, config("")), CniPlugin.INVALID_ENVIRONMENT).path("msg").asText()).contains(
                "is not in");
        Map<String, String> dotdot = env("ADD");
        dotdot.put("CNI_NETNS", host.netnsDir() + "/../netns/cni-1234");
        error(run(dotdot, config("")), CniPlugin.INVALID_ENVIRONMENT);
        Path link = Files.createSymbolicLink(host.netnsDir().resolve("cni-link"),
                Files.createFile(dir.resolve("elsewhere")));
        Map<String, String> linked = env("ADD");
        linked.put("CNI_NETNS", link.toString());
        error(run(linked, config("")), CniPlugin.INVALID_ENVIRONMENT);
        Map<String, String> pathUid = env("ADD");
        pathUid.put("CNI_ARGS", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=../../etc/x");
        error(run(pathUid, config("")), CniPlugin.INVALID_ENVIRONMENT);
        Map<String, String> badId = env("ADD");
        badId.put("CNI_CONTAINERID", "a/b");
        error(run(badId, config("")), CniPlugin.INVALID_ENVIRONMENT);
        byte[] huge = new byte[CniPlugin.MAX_STDIN + 10];
        java.util.Arrays.fill(huge, (byte) ' ');
        CniPlugin.Outcome big = CniPlugin.run(env("ADD"), new ByteArrayInputStream(huge));
        assertThat(error(big, CniPlugin.DECODE_FAILURE).path("msg").asText()).contains("larger than");
        assertThat(host.pods().toFile().list()).isEmpty();
    }

    /**
     * Opt-out by label through the plugin: with a {@code kubernetes} object in its configuration the
     * plugin reads the pod and its namespace from an API server (an HTTPS stand-in with its own CA,
     * serving the two GETs the plugin makes) and lets a pod the mesh does not enroll start with no agent
     * at all, while an enrolled pod, or one whose labels cannot be read, still fails closed.
     */
    @Nested
    class OptOutByLabel {
        final String TOKEN = KubeApiStandIn.TOKEN;

        KubeApiStandIn api;
        Map<String, String> objects;
        List<String> requests;
        Path caFile;
        Path tokenFile;

        @BeforeEach
        void apiServer() throws Exception {
            api = new KubeApiStandIn(dir);
            objects = api.objects;
            requests = api.requests;
            caFile = api.caFile;
            tokenFile = api.tokenFile;
        }

        X509Certificate selfSigned(KeyPair keys) throws Exception {
            return KubeApiStandIn.selfSigned(keys);
        }

        String pem(X509Certificate cert) throws Exception {
            return KubeApiStandIn.pem(cert);
        }

        @AfterEach
        void stopApi() {
            api.close();
        }

        String kubernetes(boolean honourIstio) {
            return ", \"kubernetes\": {\"server\": \"%s\", \"tokenFile\": \"%s\", \"caFile\": \"%s\", "
                    .formatted(api.url(), tokenFile, caFile)
                    + "\"enrollLabel\": \"wisp.dev/mesh\", \"honorIstioLabels\": " + honourIstio + "}";
        }

        void pod(String labels) {
            objects.put("/api/v1/namespaces/shop/pods/web-0", """
                    {"kind": "Pod", "metadata": {"name": "web-0", "namespace": "shop", "uid": "%s", "labels": {%s}}}
                    """.formatted(UID, labels));
        }

        void namespace(String labels) {
            objects.put("/api/v1/namespaces/shop", """
                    {"kind": "Namespace", "metadata": {"name": "shop", "labels": {%s}}}
                    """.formatted(labels));
        }

        /** ADD with no agent: the pod starts (prevResult answered), nothing is written for the agent. */
        void startsWithoutTheAgent(boolean honourIstio) throws Exception {
            CniPlugin.Outcome o = run(env("ADD"), config(kubernetes(honourIstio)));
            assertThat(o.exit()).as(o.stdout()).isZero();
            assertThat(JSON.readTree(o.stdout()).at("/ips/0/address").asText()).isEqualTo("10.244.1.7/24");
            assertThat(host.pods().toFile().list()).isEmpty();
            assertThat(run(env("CHECK"), config(kubernetes(honourIstio))).exit()).isZero();
        }

        @Test
        void aPodLabelledNoneInAnEnrolledNamespaceStartsWithoutWaitingForTheAgent() throws Exception {
            namespace("\"wisp.dev/mesh\": \"enabled\"");
            pod("\"app\": \"web\", \"wisp.dev/mesh\": \"none\"");
            startsWithoutTheAgent(false);
            String pod = "GET /api/v1/namespaces/shop/pods/web-0 Bearer " + TOKEN;
            String namespace = "GET /api/v1/namespaces/shop Bearer " + TOKEN;
            assertThat(requests).as("ADD, then CHECK").containsExactly(pod, namespace, pod, namespace);
        }

        @Test
        void aNamespaceLabelledNoneAndAnUnlabelledNamespaceLetTheirPodsStart() throws Exception {
            pod("\"app\": \"web\"");
            namespace("\"wisp.dev/mesh\": \"none\"");
            startsWithoutTheAgent(false);
            namespace("");
            startsWithoutTheAgent(false);
        }

        @Test
        void istiosNoneOptsOutOnlyWhenIstiosNamesAreHonoured() throws Exception {
            namespace("\"istio.io/dataplane-mode\": \"ambient\", \"wisp.dev/mesh\": \"enabled\"");
            pod("\"istio.io/dataplane-mode\": \"none\"");
            startsWithoutTheAgent(true);
            // Not honoured: the namespace's wisp.dev/mesh=enabled enrolls it, and with no agent it fails closed.
            JsonNode err = error(run(env("ADD"), config(kubernetes(false))), CniPlugin.TRY_AGAIN_LATER);
            assertThat(err.path("msg").asText()).contains("did not confirm enrolling pod shop/web-0");
            assertThat(host.pods().toFile().list()).isEmpty();
        }

        @Test
        void anEnrolledPodStillWaitsForTheAgentAndFailsClosedWithoutIt() throws Exception {
            namespace("\"wisp.dev/mesh\": \"enabled\"");
            pod("\"app\": \"web\"");
            error(run(env("ADD"), config(kubernetes(false))), CniPlugin.TRY_AGAIN_LATER);
            assertThat(host.pods().resolve(UID + ".json")).doesNotExist();
            CompletableFuture<PodRef> agent = agentConfirms();
            CniPlugin.Outcome o = run(env("ADD"), config(kubernetes(false)));
            assertThat(o.exit()).as(o.stdout()).isZero();
            assertThat(agent.get(10, TimeUnit.SECONDS).cgroup()).isEqualTo(podCgroup);
        }

        @Test
        void whenTheLabelsCannotBeReadThePodDoesNotStart() throws Exception {
            namespace("\"wisp.dev/mesh\": \"none\"");
            // The pod is not in the API (404).
            assertThat(
                    error(run(env("ADD"), config(kubernetes(false))), CniPlugin.TRY_AGAIN_LATER).path("msg").asText())
                    .contains("cannot tell whether pod shop/web-0 is in the mesh").contains("404");
            // The API's pod of that name is another incarnation (another UID).
            pod("\"wisp.dev/mesh\": \"none\"");
            objects.computeIfPresent("/api/v1/namespaces/shop/pods/web-0", (k, v) -> v.replace(UID,
                    "00000000-0000-0000-0000-000000000000"));
            assertThat(
                    error(run(env("ADD"), config(kubernetes(false))), CniPlugin.TRY_AGAIN_LATER).path("msg").asText())
                    .contains("has uid '00000000-0000-0000-0000-000000000000'");
            // A server whose certificate the CA file does not vouch for.
            pod("\"wisp.dev/mesh\": \"none\"");
            String trusted = Files.readString(caFile);
            Files.writeString(caFile, pem(selfSigned(KeyPairGenerator.getInstance("EC").generateKeyPair())));
            assertThat(
                    error(run(env("ADD"), config(kubernetes(false))), CniPlugin.TRY_AGAIN_LATER).path("msg").asText())
                    .contains("SSLHandshakeException");
            // An empty CA file, then the API server gone.
            Files.writeString(caFile, "");
            assertThat(
                    error(run(env("ADD"), config(kubernetes(false))), CniPlugin.TRY_AGAIN_LATER).path("msg").asText())
                    .contains("cannot read the plugin's API credentials");
            Files.writeString(caFile, trusted);
            api.close();
            assertThat(
                    error(run(env("ADD"), config(kubernetes(false))), CniPlugin.TRY_AGAIN_LATER).path("msg").asText())
                    .contains("failed");
            assertThat(host.pods().toFile().list()).isEmpty();
        }

        @Test
        void theApiSettingsAreChecked() throws Exception {
            error(run(env("ADD"), config(kubernetes(false).replace("https://", "http://"))), CniPlugin.INVALID_CONFIG);
            error(run(env("ADD"), config(kubernetes(false).replace(tokenFile.toString(), "token"))),
                    CniPlugin.INVALID_CONFIG);
            assertThat(requests).isEmpty();
        }
    }
}
