/*
 * TME-MK under TCG: the TME MSRs and the PCONFIG instruction, glue
 * between the x86 TCG helpers and the platform model (mktme-model.c).
 *
 * The platform (IA32_TME_* and the key table) is package-scoped, so it
 * lives in the mktme-guest object and every vCPU reaches the same one;
 * the BQL serialises changes, and the memory controller's lock keeps
 * its ciphers, built from the key table in any thread, consistent.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "cpu.h"
#include "exec/helper-proto.h"
#include "mktme-compat.h"
#include "qemu/main-loop.h"
#include "crypto/random.h"
#include "tcg/helper-tcg.h"
#include "mktme.h"
#include "mktme-tcg.h"
#include "trace.h"

MemoryRegion *mktme_tcg_cpu_memory(MemoryRegion *mr)
{
    MemoryRegion *cpu_mem;

    if (mr != get_system_memory() || !mktme_guest_get()) {
        return mr;
    }
    /* The CPU holds a reference to its memory */
    cpu_mem = mktme_cpu_memory();
    object_ref(OBJECT(cpu_mem));
    object_unref(OBJECT(mr));
    return cpu_mem;
}

static bool mktme_is_tme_msr(uint32_t msr)
{
    return (msr >= MSR_IA32_TME_CAPABILITY && msr <= MSR_IA32_TME_EXCLUDE_BASE)
           || msr == MSR_IA32_MKTME_CORE_ACTIVATE;
}

/* The platform model, if this CPU enumerates TME and the machine has one. */
static MktmePlatform *mktme_tcg_platform(CPUX86State *env)
{
    MktmeGuest *mg;

    if (!(env->features[FEAT_7_0_ECX] & CPUID_7_0_ECX_TME)) {
        return NULL;
    }
    mg = mktme_guest_get();
    return mg ? mg->platform : NULL;
}

bool mktme_tcg_rdmsr(CPUX86State *env, uint32_t msr, uint64_t *val,
                     uintptr_t ra)
{
    MktmePlatform *p;

    if (!mktme_is_tme_msr(msr)) {
        return false;
    }
    p = mktme_tcg_platform(env);
    if (!p || mktme_msr_read(p, msr, val) != 0) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    return true;
}

bool mktme_tcg_wrmsr(CPUX86State *env, uint32_t msr, uint64_t val,
                     uintptr_t ra)
{
    MktmePlatform *p;
    int r;

    if (!mktme_is_tme_msr(msr)) {
        return false;
    }
    p = mktme_tcg_platform(env);
    if (!p) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    bql_lock();
    r = mktme_msr_write(p, msr, val);
    trace_mktme_wrmsr(msr, val, r ? mktme_fault_name(p->last_fault) : "ok");
    if (r == 0 && msr == MSR_IA32_TME_ACTIVATE) {
        mktme_mc_update(mktme_guest_get());
    }
    bql_unlock();
    if (r != 0) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    return true;
}

bool mktme_tcg_write_line(CPUX86State *env, target_ulong dest,
                          const uint64_t *line, uintptr_t ra)
{
    MktmeGuest *mg = mktme_tcg_platform(env) ? mktme_guest_get() : NULL;
    CPUTLBEntryFull *full = NULL;
    void *host;

    if (!mg || !mg->mc) {
        return false;
    }
    /* The entry the caller's probe_write() installed: no fault */
    if (probe_access_full(env, dest, 0, MMU_DATA_STORE,
                          cpu_mmu_index(env_cpu(env), false), true, &host,
                          &full, ra) & TLB_INVALID_MASK || !full) {
        return false;
    }
    return mktme_mc_write_line(mg, full->phys_addr |
                               (dest & ~TARGET_PAGE_MASK), line);
}

/*
 * The linear address of byte @i of the struct at DS:RBX: in 64-bit mode
 * the DS base is not added; outside it, 32-bit address size, and linear
 * addresses wrap at 4 GiB.
 */
static target_ulong pconfig_la(CPUX86State *env, target_ulong rbx,
                               unsigned i)
{
    if (env->hflags & HF_CS64_MASK) {
        return rbx + i;
    }
    return (uint32_t)(env->segs[R_DS].base + (uint32_t)(rbx + i));
}

void helper_pconfig(CPUX86State *env)
{
    uintptr_t ra = GETPC();
    MktmePlatform *p;
    uint64_t leaf = (uint32_t)env->regs[R_EAX];
    target_ulong rbx = env->regs[R_EBX];
    uint8_t st[MKTME_KEY_PROGRAM_STRUCT_SIZE];
    uint8_t entropy[64];
    bool entropy_ok;
    uint64_t status = 0;
    int mmu_idx = cpu_mmu_index(env_cpu(env), false);
    MktmeGuest *mg = mktme_guest_get();
    int r;

    if (!(env->features[FEAT_7_0_EDX] & CPUID_7_0_EDX_PCONFIG)) {
        raise_exception_ra(env, EXCP06_ILLOP, ra);
    }
    if (!(env->hflags & HF_CS64_MASK)) {
        rbx = (uint32_t)rbx;    /* 32-bit address size outside 64-bit mode */
    }
    p = mktme_tcg_platform(env);
    if (!p || mktme_pconfig_precheck(p, leaf, rbx) != 0) {
        trace_mktme_pconfig_fault(p ? mktme_fault_name(
            mktme_pconfig_precheck_fault(p, leaf, rbx)) : "no TME");
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    /*
     * DS:RBX, overrides ignored.  Fault (#PF) before a byte of the key is
     * read, so that no key material stays behind on the way out.
     */
    probe_access(env, pconfig_la(env, rbx, 0), 1, MMU_DATA_LOAD, mmu_idx,
                 ra);
    probe_access(env, pconfig_la(env, rbx, sizeof(st) - 1), 1,
                 MMU_DATA_LOAD, mmu_idx, ra);
    for (int i = 0; i < sizeof(st); i += 8) {
        uint64_t q = cpu_ldq_data_ra(env, pconfig_la(env, rbx, i), ra);

        stq_le_p(st + i, q);
    }
    entropy_ok = qcrypto_random_bytes(entropy, sizeof(entropy), NULL) == 0 &&
                 (!mg->x_noentropy_keyid ||
                  lduw_le_p(st) != mg->x_noentropy_keyid);

    bql_lock();
    mktme_mc_lock(mg);          /* ciphers are built concurrently */
    r = mktme_pconfig_key_program(p, st, entropy, entropy_ok, &status);
    mktme_mc_unlock(mg);
    if (r == 0 && status == MKTME_PCONFIG_SUCCESS) {
        mktme_mc_update(mg);
        mktme_mc_key_programmed(mg);
    }
    trace_mktme_pconfig(lduw_le_p(st), ldl_le_p(st + 2) & 0xff,
                        r ? mktme_fault_name(p->last_fault) : "ok", status);
    bql_unlock();
    mktme_wipe(st, sizeof(st));
    mktme_wipe(entropy, sizeof(entropy));
    if (r != 0) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }

    env->regs[R_EAX] = status;
    /* ZF reports failure; CF, PF, AF, OF and SF are cleared. */
    CC_SRC = status ? CC_Z : 0;
}
