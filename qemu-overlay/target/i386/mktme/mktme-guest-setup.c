/*
 * The mktme-guest object: bringing the guest's encryption up.
 *
 * Under KVM, from kvm_arch_init() before any RAM exists: the host
 * probed, a kernel key, the policy applied when the host cannot
 * encrypt.  Under TCG and qtest, once the machine is created: the
 * emulated TME-MK platform (guest-visible=on) and its reset, the VM
 * key, the emulated memory controller, and the migration state.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "crypto/secret_common.h"
#include "crypto/random.h"
#include "hw/boards.h"
#include "hw/i386/x86.h"
#include "system/reset.h"
#include "system/system.h"
#include "cpu.h"
#include "system/kvm.h"
#include "system/qtest.h"
#include "system/tcg.h"
#include "mktme-compat.h"
#include "migration/blocker.h"
#include "migration/vmstate.h"
#include "mktme.h"
#include "trace.h"

static void mktme_set_reason(MktmeGuest *mg, char *reason)
{
    g_free(mg->reason);
    mg->reason = reason;
}

/*
 * The host cannot encrypt: apply the policy.  Returns -1 with @errp set
 * under "required", 0 (guest runs unencrypted) under "if-supported".
 */
static int mktme_fall_back(MktmeGuest *mg, char *reason, Error **errp)
{
    trace_mktme_policy(MktmePolicy_str(mg->policy), reason);
    if (mg->policy == MKTME_POLICY_REQUIRED) {
        error_setg(errp, "mktme-guest: cannot encrypt guest memory: %s "
                   "(policy=required)", reason);
        g_free(reason);
        return -1;
    }
    warn_report("mktme-guest: guest memory is NOT encrypted: %s", reason);
    mktme_set_reason(mg, reason);
    mg->enabled = false;
    return 0;
}

/* Load the VM's key for the emulated memory controller. */
static bool mktme_load_vm_key(MktmeGuest *mg, Error **errp)
{
    size_t len = 2 * mktme_algorithm_key_len(mg->algorithm);
    g_autofree uint8_t *data = NULL;
    size_t datalen;

    mg->key_len = len;
    if (!mg->key_secret) {
        mg->key_source = MKTME_KEY_SOURCE_RANDOM;
        return qcrypto_random_bytes(mg->vm_key, len, errp) == 0;
    }
    mg->key_source = MKTME_KEY_SOURCE_SECRET;
    if (qcrypto_secret_lookup(mg->key_secret, &data, &datalen, errp) < 0) {
        return false;
    }
    if (datalen != len) {
        error_setg(errp, "mktme-guest: key-secret '%s' holds %zu bytes; "
                   "%s needs %zu (data key then tweak key)", mg->key_secret,
                   datalen, MktmeAlgorithm_str(mg->algorithm), len);
        mktme_wipe(data, datalen);
        return false;
    }
    memcpy(mg->vm_key, data, len);
    mktme_wipe(data, datalen);
    return true;
}

/* KVM: called from kvm_arch_init(), before any RAM exists. */
static int mktme_kvm_setup(ConfidentialGuestSupport *cgs, Error **errp)
{
    MktmeGuest *mg = MKTME_GUEST(cgs);
    MktmeHostCaps caps;
    char *reason = NULL;

    mg->accel = MKTME_ACCEL_KVM;
    mg->key_source = mg->has_handle ? MKTME_KEY_SOURCE_HANDLE
                                    : MKTME_KEY_SOURCE_RANDOM;
    if (mg->guest_visible) {
        error_setg(errp, "mktme-guest: guest-visible=on needs TCG; "
                   "KVM has no interface to show TME-MK to a guest");
        return -1;
    }
    if (mg->key_secret) {
        error_setg(errp, "mktme-guest: key-secret works only under TCG; "
                   "under KVM the key stays in the CPU (use handle=)");
        return -1;
    }
    mktme_host_probe(&caps);
    if (!mktme_host_can_encrypt(&caps, mg->encrypt_mprotect_nr, &reason)) {
        cgs->ready = true;
        return mktme_fall_back(mg, reason, errp);
    }
    if (mktme_kvm_get_key(mg, errp) < 0) {
        return -1;
    }
    mg->enabled = true;
    mktme_start_marking(mg);
    error_setg(&mg->migration_blocker, "mktme-guest: the guest's memory "
               "is encrypted with a host CPU key that cannot migrate");
    if (migrate_add_blocker(&mg->migration_blocker, errp) < 0) {
        return -1;
    }
    cgs->ready = true;
    return 0;
}

/* Hardware reset: keys are lost; "firmware" activates TME-MK again. */
void mktme_platform_reset_handler(void *opaque)
{
    MktmeGuest *mg = opaque;

    MktmePlatform *p = mg->platform;

    if (mg->mc) {
        /* Write-back slots hold data for the keys about to go */
        mktme_shadow_sync_all(mg->mc->shadow);
    }
    /* Ciphers are built from the key table in any thread (DMA hooks) */
    mktme_mc_lock(mg);
    mktme_platform_reset(p);
    if (mg->activate) {
        /*
         * Lock, enable, every KeyID bit, every algorithm the platform
         * has, and the VM key's algorithm as the TME policy.
         */
        bool xts256 = mg->algorithm == MKTME_ALGORITHM_AES_XTS_256;
        uint64_t v = MKTME_ACT_ENABLE |
                     (uint64_t)(xts256 ? MKTME_POLICY_AES_XTS_256 :
                                MKTME_POLICY_AES_XTS_128)
                         << MKTME_ACT_POLICY_SHIFT |
                     (uint64_t)mg->keyid_bits << MKTME_ACT_KEYID_BITS_SHIFT |
                     (p->cfg.aes_xts_128 ? MKTME_ACT_ALG_AES_XTS_128 : 0) |
                     (p->cfg.aes_xts_256 ? MKTME_ACT_ALG_AES_XTS_256 : 0);
        int r = mktme_msr_write(p, MSR_IA32_TME_ACTIVATE, v);

        assert(r == 0);
    }
    mktme_mc_unlock(mg);
    mktme_mc_update(mg);
}

/* guest-visible=on: the emulated TME-MK platform the guest programs. */
static bool mktme_platform_init(MktmeGuest *mg, Error **errp)
{
    MachineState *ms = MACHINE(qdev_get_machine());
    X86MachineState *x86ms = X86_MACHINE(ms);
    X86CPU *cpu = X86_CPU(first_cpu);
    MktmeConfig cfg = {
        .phys_bits = cpu->phys_bits,
        .max_keyid_bits = mg->keyid_bits,
        .max_keys = mg->max_keys ?: (1u << mg->keyid_bits) - 1,
        .aes_xts_128 = mg->cap_aes_xts_128,
        .aes_xts_256 = mg->cap_aes_xts_256,
        .bypass = mg->cap_bypass,
    };
    uint64_t ram_top = x86ms->above_4g_mem_size ?
                       x86ms->above_4g_mem_start + x86ms->above_4g_mem_size :
                       x86ms->below_4g_mem_size;
    g_autofree char *msg = NULL;

    if (!IS_INTEL_CPU(&cpu->env)) {
        error_setg(errp, "mktme-guest: guest-visible=on needs an Intel CPU "
                   "model (for example -cpu max,vendor=GenuineIntel)");
        return false;
    }
    if (ms->device_memory) {
        ram_top = MAX(ram_top, ms->device_memory->base +
                      memory_region_size(&ms->device_memory->mr));
    }
    if (!mktme_config_check(&cfg, ram_top, &msg)) {
        error_setg(errp, "mktme-guest: %s", msg);
        return false;
    }
    mg->platform = mktme_platform_new(&cfg);
    mg->platform->test_busy_keyid = mg->x_busy_keyid;
    mg->addrmap = mktme_addrmap_new(mg->platform, cfg.phys_bits,
                                    mg->keyid_bits, mg->activate, errp);
    if (!mg->addrmap) {
        mktme_platform_free(mg->platform);
        mg->platform = NULL;
        return false;
    }
    qemu_register_reset(mktme_platform_reset_handler, mg);
    return true;
}

/*
 * Migration (TCG and qtest).  RAM migrates as R, the KeyID-0 view; for
 * every other KeyID (and the DRAM view) to read the same on the
 * destination, the VM's key and the key table migrate too.  The stream
 * therefore carries keys: protect it (TLS migration).
 */
static const VMStateDescription vmstate_mktme_key_entry = {
    .name = "mktme/key-entry",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(mode, MktmeKeyEntry),
        VMSTATE_UINT8(alg, MktmeKeyEntry),
        VMSTATE_UINT8_ARRAY(data_key, MktmeKeyEntry, 32),
        VMSTATE_UINT8_ARRAY(tweak_key, MktmeKeyEntry, 32),
        VMSTATE_END_OF_LIST()
    }
};

static const VMStateDescription vmstate_mktme_platform = {
    .name = "mktme/platform",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32_EQUAL(cfg.phys_bits, MktmePlatform, NULL),
        VMSTATE_UINT32_EQUAL(cfg.max_keyid_bits, MktmePlatform, NULL),
        VMSTATE_UINT32_EQUAL(nr_entries, MktmePlatform, NULL),
        VMSTATE_UINT64(activate, MktmePlatform),
        VMSTATE_UINT64(exclude_mask, MktmePlatform),
        VMSTATE_UINT64(exclude_base, MktmePlatform),
        VMSTATE_STRUCT_VARRAY_POINTER_UINT32(keys, MktmePlatform, nr_entries,
                                             vmstate_mktme_key_entry,
                                             MktmeKeyEntry),
        VMSTATE_END_OF_LIST()
    }
};

static bool mktme_platform_needed(void *opaque)
{
    return MKTME_GUEST(opaque)->platform;
}

static int mktme_post_load(void *opaque, int version_id)
{
    MktmeGuest *mg = opaque;
    g_autofree char *err = NULL;
    Error *local_err = NULL;

    if (mg->platform &&
        !mktme_platform_post_load_check(mg->platform, &err)) {
        error_report("mktme-guest: invalid TME-MK state in the migration "
                     "stream: %s", err);
        return -EINVAL;
    }
    /* Rebuild every cipher from the loaded keys. */
    if (!mktme_mc_rekey(mg, &local_err)) {
        error_report_err(local_err);
        return -EINVAL;
    }
    mktme_mc_update(mg);
    return 0;
}

static const VMStateDescription vmstate_mktme_platform_sub = {
    .name = "mktme-guest/platform",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = mktme_platform_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_POINTER(platform, MktmeGuest, vmstate_mktme_platform,
                               MktmePlatform),
        VMSTATE_END_OF_LIST()
    }
};

static int mktme_pre_save(void *opaque)
{
    return mktme_wire_pre_save(opaque);
}

const VMStateDescription vmstate_mktme = {
    .name = "mktme-guest",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = mktme_pre_save,
    .post_load = mktme_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32_EQUAL(key_len, MktmeGuest, NULL),
        VMSTATE_UINT8_ARRAY(vm_key, MktmeGuest, MKTME_VM_KEY_MAX),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_mktme_platform_sub,
        NULL
    }
};

int mktme_kvm_init(ConfidentialGuestSupport *cgs, Error **errp)
{
    Error *err = NULL;

    if (mktme_kvm_setup(cgs, &err) < 0) {
        /*
         * Exit here: returning would add "failed to initialize kvm" with
         * an unrelated errno to the one line that says what is wrong.
         */
        error_report_err(err);
        exit(1);
    }
    return 0;
}

/* TCG and qtest: the emulated memory controller encrypts. */
void mktme_machine_done(Notifier *n, void *unused)
{
    MktmeGuest *mg = container_of(n, MktmeGuest, machine_done);
    ConfidentialGuestSupport *cgs = CONFIDENTIAL_GUEST_SUPPORT(mg);
    Error *err = NULL;

    if (mktme_guest_get() != mg) {
        error_report("mktme-guest '%s' is not used by the machine "
                     "(select it with -machine memory-encryption=%s)",
                     object_get_canonical_path_component(OBJECT(mg)),
                     object_get_canonical_path_component(OBJECT(mg)));
        exit(1);
    }
    if (!object_dynamic_cast(qdev_get_machine(), TYPE_X86_MACHINE)) {
        error_report("mktme-guest: needs an x86 PC machine, not '%s'",
                     MACHINE_GET_CLASS(qdev_get_machine())->name);
        exit(1);
    }
    if (kvm_enabled()) {
        return;     /* mktme_kvm_init() did the work */
    }
    if (tcg_enabled()) {
        mg->accel = MKTME_ACCEL_TCG;
    } else if (qtest_enabled()) {
        mg->accel = MKTME_ACCEL_QTEST;
    } else {
        error_report("mktme-guest: needs the kvm, tcg or qtest accelerator");
        exit(1);
    }
    if (mg->guest_visible && !mktme_platform_init(mg, &err)) {
        error_report_err(err);
        exit(1);
    }
    if (!mktme_load_vm_key(mg, &err) || !mktme_mc_init(mg, &err)) {
        error_report_err(err);
        exit(1);
    }
    mg->enabled = true;
    mktme_start_marking(mg);
    vmstate_register_any(NULL, &vmstate_mktme, mg);
    mktme_wire_init(mg);
    trace_mktme_emulation_ready(MktmeAccel_str(mg->accel),
                                MktmeAlgorithm_str(mg->algorithm),
                                MktmeKeySource_str(mg->key_source));
    cgs->ready = true;
}

