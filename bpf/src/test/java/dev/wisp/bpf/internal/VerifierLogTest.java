package dev.wisp.bpf.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class VerifierLogTest {
    private static final String LIBBPF_OUTPUT = """
            libbpf: prog 'unchecked_lookup': BPF program load failed: Permission denied
            libbpf: prog 'unchecked_lookup': -- BEGIN PROG LOAD LOG --
            0: R1=ctx() R10=fp0
            ; __u32 zero = 0; @ rejected.bpf.c:20
            0: (b4) w1 = 0                        ; R1_w=0
            3: (85) call bpf_map_lookup_elem#1    ; R0_w=map_value_or_null(id=1,off=0,ks=4,vs=8,imm=0)
            ; *count += 1; @ rejected.bpf.c:23
            4: (79) r1 = *(u64 *)(r0 +0)
            R0 invalid mem access 'map_value_or_null'
            verification time 32 usec
            stack depth 4
            processed 5 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
            -- END PROG LOAD LOG --
            libbpf: prog 'unchecked_lookup': failed to load: -13
            """;

    @Test
    void findsTheRefusedProgramAndTheVerifiersReason() {
        assertThat(VerifierLog.rejection(LIBBPF_OUTPUT)).contains(
                new VerifierLog.Rejection("unchecked_lookup", "R0 invalid mem access 'map_value_or_null'"));
    }

    @Test
    void noLogNoRejection() {
        assertThat(VerifierLog.rejection("libbpf: failed to create map: -1\n")).isEmpty();
    }

    @Test
    void anEmptyLogStillNamesTheProgram() {
        assertThat(VerifierLog.rejection("prog 'p': -- BEGIN PROG LOAD LOG --\n-- END PROG LOAD LOG --\n"))
                .contains(new VerifierLog.Rejection("p", "no reason in the verifier log"));
    }
}
