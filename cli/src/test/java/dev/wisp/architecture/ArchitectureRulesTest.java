package dev.wisp.architecture;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.classfile.ClassFile;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDescs;
import java.lang.constant.MethodTypeDesc;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The rules themselves, over classes this test generates with the JDK's class-file API: each planted violation is
 * found and named, and the allowed shapes pass. The class files go through the same reader as the real ones, so
 * this also shows that a type used only in a field, a method signature or a generic signature counts.
 */
class ArchitectureRulesTest {

    /** A class {@code name} whose only tie to {@code uses} is a field of that type. */
    private static byte[] fieldOf(String name, String uses) {
        return ClassFile.of().build(ClassDesc.of(name),
                cb -> cb.withField("f", ClassDesc.of(uses), ClassFile.ACC_PRIVATE));
    }

    /** A class {@code name} with a method {@code void m(uses)}: the tie is a method descriptor. */
    private static byte[] parameterOf(String name, String uses) {
        return ClassFile.of().build(ClassDesc.of(name), cb -> cb.withMethod("m",
                MethodTypeDesc.of(ConstantDescs.CD_void, ClassDesc.of(uses)), ClassFile.ACC_STATIC,
                mb -> mb.withCode(code -> code.return_())));
    }

    private static List<String> violations(Map<String, List<byte[]>> classFilesByModule) {
        return ArchitectureRules.violations(ClassGraph.of(classFilesByModule));
    }

    private static byte[] empty(String name) {
        return ClassFile.of().build(ClassDesc.of(name), _ -> {});
    }

    @Test
    void aLibraryUsingAnAgentIsRefused() {
        List<String> violations = violations(Map.of(
                "spiffe", List.of(fieldOf("dev.wisp.spiffe.Planted", "dev.wisp.node.NodeAgent")),
                "ztunnel-node", List.of(empty("dev.wisp.node.NodeAgent"))));

        assertThat(violations).containsExactly(
                "spiffe -> ztunnel-node: dev.wisp.spiffe.Planted uses dev.wisp.node.NodeAgent;"
                        + " the module map allows spiffe -> [base]");
    }

    @Test
    void agentsDoNotUseEachOther() {
        List<String> violations = violations(Map.of(
                "xds-control-plane",
                List.of(parameterOf("dev.wisp.controlplane.xds.Planted", "dev.wisp.node.state.WorkloadIndex")),
                "ztunnel-node", List.of(empty("dev.wisp.node.state.WorkloadIndex"))));

        assertThat(violations).singleElement().asString()
                .startsWith("xds-control-plane -> ztunnel-node: dev.wisp.controlplane.xds.Planted uses"
                        + " dev.wisp.node.state.WorkloadIndex");
    }

    @Test
    void anInternalPackageIsUsedOnlyInItsModule() {
        List<String> violations = violations(Map.of(
                "spiffe", List.of(empty("dev.wisp.spiffe.internal.Pem"),
                        fieldOf("dev.wisp.spiffe.ca.Inside", "dev.wisp.spiffe.internal.Pem")),
                "ztunnel-node", List.of(fieldOf("dev.wisp.node.identity.Planted", "dev.wisp.spiffe.internal.Pem"))));

        // ztunnel-node -> spiffe is an allowed arrow, the internal package is not; inside spiffe it is fine.
        assertThat(violations).containsExactly(
                "dev.wisp.node.identity.Planted (ztunnel-node) uses dev.wisp.spiffe.internal.Pem, internal to spiffe");
    }

    @Test
    void aPureCoreDoesNotReachItsShell() {
        List<String> violations = violations(Map.of("wireguard", List.of(
                fieldOf("dev.wisp.wireguard.device.Planted", "dev.wisp.wireguard.io.RunningDevice"),
                empty("dev.wisp.wireguard.io.RunningDevice"),
                // the shell using the core is the intended direction
                fieldOf("dev.wisp.wireguard.io.Shell", "dev.wisp.wireguard.device.Planted"))));

        assertThat(violations).containsExactly(
                "dev.wisp.wireguard.device.Planted uses dev.wisp.wireguard.io.RunningDevice:"
                        + " WireGuard's protocol core has no I/O: sockets, TUN and threads live in wireguard.io,"
                        + " the kernel driver's netlink sockets in wireguard.netlink");
    }

    @Test
    void aSplitPackageAndAnUnknownModuleAreRefused() {
        List<String> violations = violations(Map.of(
                "bpf", List.of(empty("dev.wisp.linux.Planted")),
                "linux-native", List.of(empty("dev.wisp.linux.Libc")),
                "new-module", List.of(empty("dev.wisp.fresh.Thing"))));

        assertThat(violations).hasSize(2)
                .anyMatch(v -> v.startsWith("package dev.wisp.linux is split over modules"))
                .anyMatch(v -> v.startsWith("module new-module (dev.wisp.fresh.Thing) is not in the module map"));
    }

    @Test
    void allowedArrowsPass() {
        List<String> violations = violations(Map.of(
                "cli", List.of(fieldOf("dev.wisp.cli.Uses", "dev.wisp.node.NodeAgent")),
                "ztunnel-node", List.of(empty("dev.wisp.node.NodeAgent"),
                        parameterOf("dev.wisp.node.proxy.Uses", "dev.wisp.node.state.WorkloadIndex"),
                        empty("dev.wisp.node.state.WorkloadIndex"))));

        assertThat(violations).isEmpty();
    }

    @Test
    void classPathEntriesAreNamedByTheirModule() {
        assertThat(ClassGraph.wispModule(java.nio.file.Path.of("/x/wisp-spiffe-0.1.0-SNAPSHOT.jar")))
                .isEqualTo("spiffe");
        assertThat(ClassGraph.wispModule(java.nio.file.Path.of("/x/netty-common-4.2.20.Final.jar"))).isNull();
    }
}
