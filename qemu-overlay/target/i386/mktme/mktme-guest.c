/*
 * The mktme-guest object: a confidential-guest-support backend that
 * gives a guest its own TME-MK memory-encryption key.
 *
 *   -machine q35,memory-encryption=k0 -object mktme-guest,id=k0
 *
 * Under KVM the host CPU encrypts the guest's RAM with a kernel key
 * (mktme-kvm.c); under TCG (and qtest) QEMU's emulated memory
 * controller does (mktme-mc.c).  When the host cannot encrypt, the
 * policy decides: "if-supported" runs the guest unencrypted and says
 * why, "required" refuses to start.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-mktme.h"
#include "qapi/visitor.h"
#include "qemu/error-report.h"
#include "qom/object_interfaces.h"
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

MktmeGuest *mktme_guest_get(void)
{
    MachineState *ms = MACHINE(qdev_get_machine());

    if (!ms || !ms->cgs) {
        return NULL;
    }
    return (MktmeGuest *)object_dynamic_cast(OBJECT(ms->cgs),
                                             TYPE_MKTME_GUEST);
}

size_t mktme_algorithm_key_len(MktmeAlgorithm alg)
{
    return alg == MKTME_ALGORITHM_AES_XTS_256 ? 32 : 16;
}

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
static void mktme_platform_reset_handler(void *opaque)
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

static const VMStateDescription vmstate_mktme = {
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

static int mktme_kvm_init(ConfidentialGuestSupport *cgs, Error **errp)
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
static void mktme_machine_done(Notifier *n, void *unused)
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

static void mktme_guest_complete(UserCreatable *uc, Error **errp)
{
    MktmeGuest *mg = MKTME_GUEST(uc);

    if (mg->keyid_bits < 1 || mg->keyid_bits > 15) {
        error_setg(errp, "mktme-guest: keyid-bits must be 1 to 15, not %u",
                   mg->keyid_bits);
        return;
    }
    if (mg->max_keys >= (1u << mg->keyid_bits)) {
        error_setg(errp, "mktme-guest: max-keys=%u needs more KeyIDs than "
                   "keyid-bits=%u give (at most %u)", mg->max_keys,
                   mg->keyid_bits, (1u << mg->keyid_bits) - 1);
        return;
    }
    if (mg->guest_visible &&
        !(mg->algorithm == MKTME_ALGORITHM_AES_XTS_256 ? mg->cap_aes_xts_256
                                                       : mg->cap_aes_xts_128)) {
        error_setg(errp, "mktme-guest: algorithm=%s needs cap-%s=on: the "
                   "VM key is KeyID 0's key", MktmeAlgorithm_str(mg->algorithm),
                   MktmeAlgorithm_str(mg->algorithm));
        return;
    }
    if (mg->has_handle && mg->key_secret) {
        error_setg(errp, "mktme-guest: handle and key-secret exclude each "
                   "other");
        return;
    }
    if (mg->guest_visible) {
        /* The vCPUs enumerate what the platform offers. */
        object_register_sugar_prop(TYPE_X86_CPU, "tme", "on", false);
        object_register_sugar_prop(TYPE_X86_CPU, "pconfig", "on", false);
    }
    mg->machine_done.notify = mktme_machine_done;
    qemu_add_machine_init_done_notifier(&mg->machine_done);
}

static void mktme_guest_set_policy(Object *obj, int value, Error **errp)
{
    MKTME_GUEST(obj)->policy = value;
}

static void mktme_guest_set_plain_channel(Object *obj, int value,
                                          Error **errp)
{
    MKTME_GUEST(obj)->plain_channel = value;
}

static int mktme_guest_get_plain_channel(Object *obj, Error **errp)
{
    return MKTME_GUEST(obj)->plain_channel;
}

static int mktme_guest_get_policy(Object *obj, Error **errp)
{
    return MKTME_GUEST(obj)->policy;
}

static void mktme_guest_set_algorithm(Object *obj, int value, Error **errp)
{
    MKTME_GUEST(obj)->algorithm = value;
}

static int mktme_guest_get_algorithm(Object *obj, Error **errp)
{
    return MKTME_GUEST(obj)->algorithm;
}

static char *mktme_guest_get_key_secret(Object *obj, Error **errp)
{
    return g_strdup(MKTME_GUEST(obj)->key_secret);
}

static void mktme_guest_set_key_secret(Object *obj, const char *value,
                                       Error **errp)
{
    MktmeGuest *mg = MKTME_GUEST(obj);

    g_free(mg->key_secret);
    mg->key_secret = g_strdup(value);
}

static void mktme_guest_get_handle(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    visit_type_uint32(v, name, &MKTME_GUEST(obj)->handle, errp);
}

static void mktme_guest_set_handle(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    MktmeGuest *mg = MKTME_GUEST(obj);
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    if (value == 0 || value > INT32_MAX) {
        error_setg(errp, "mktme-guest: handle must be a kernel key serial "
                   "number (1 to %d), not %" PRIu32, INT32_MAX, value);
        return;
    }
    mg->handle = value;
    mg->has_handle = true;
}

static bool mktme_guest_get_guest_visible(Object *obj, Error **errp)
{
    return MKTME_GUEST(obj)->guest_visible;
}

static void mktme_guest_set_guest_visible(Object *obj, bool value,
                                          Error **errp)
{
    MKTME_GUEST(obj)->guest_visible = value;
}

#define MKTME_BOOL_PROP(field)                                               \
static bool mktme_guest_get_##field(Object *obj, Error **errp)               \
{                                                                            \
    return MKTME_GUEST(obj)->field;                                          \
}                                                                            \
static void mktme_guest_set_##field(Object *obj, bool value, Error **errp)   \
{                                                                            \
    MKTME_GUEST(obj)->field = value;                                         \
}

MKTME_BOOL_PROP(cap_aes_xts_128)
MKTME_BOOL_PROP(cap_aes_xts_256)
MKTME_BOOL_PROP(cap_bypass)

static bool mktme_guest_get_activate(Object *obj, Error **errp)
{
    return MKTME_GUEST(obj)->activate;
}

static void mktme_guest_set_activate(Object *obj, bool value, Error **errp)
{
    MKTME_GUEST(obj)->activate = value;
}

OBJECT_DEFINE_SIMPLE_TYPE_WITH_INTERFACES(MktmeGuest, mktme_guest,
                                          MKTME_GUEST,
                                   X86_CONFIDENTIAL_GUEST,
                                   { TYPE_USER_CREATABLE },
                                   { NULL })

static bool mktme_guest_get_shadow_write_back(Object *obj, Error **errp)
{
    return MKTME_GUEST(obj)->shadow_write_back;
}

static void mktme_guest_set_shadow_write_back(Object *obj, bool value,
                                              Error **errp)
{
    MKTME_GUEST(obj)->shadow_write_back = value;
}

static void mktme_guest_get_shadow_size(Object *obj, Visitor *v,
                                        const char *name, void *opaque,
                                        Error **errp)
{
    visit_type_size(v, name, &MKTME_GUEST(obj)->shadow_size, errp);
}

static void mktme_guest_set_shadow_size(Object *obj, Visitor *v,
                                        const char *name, void *opaque,
                                        Error **errp)
{
    visit_type_size(v, name, &MKTME_GUEST(obj)->shadow_size, errp);
}

static void mktme_guest_class_init(ObjectClass *oc, MktmeClassData data)
{
    ConfidentialGuestSupportClass *cgsc = CONFIDENTIAL_GUEST_SUPPORT_CLASS(oc);
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);

    cgsc->kvm_init = mktme_kvm_init;
    ucc->complete = mktme_guest_complete;

    object_class_property_add_enum(oc, "policy", "MktmePolicy",
                                   &MktmePolicy_lookup,
                                   mktme_guest_get_policy,
                                   mktme_guest_set_policy);
    object_class_property_set_description(oc, "policy",
        "if-supported: run unencrypted when the host cannot encrypt; "
        "required: refuse to start");
    object_class_property_add_enum(oc, "plain-channel", "MktmePlainChannel",
                                   &MktmePlainChannel_lookup,
                                   mktme_guest_get_plain_channel,
                                   mktme_guest_set_plain_channel);
    object_class_property_set_description(oc, "plain-channel",
        "refuse (default) or allow a migration without TLS or a snapshot, "
        "which carry the VM key (TCG)");
    object_class_property_add_enum(oc, "algorithm", "MktmeAlgorithm",
                                   &MktmeAlgorithm_lookup,
                                   mktme_guest_get_algorithm,
                                   mktme_guest_set_algorithm);
    object_class_property_add_str(oc, "key-secret",
                                  mktme_guest_get_key_secret,
                                  mktme_guest_set_key_secret);
    object_class_property_set_description(oc, "key-secret",
        "ID of a secret object holding the VM key (TCG)");
    object_class_property_add(oc, "handle", "uint32",
                              mktme_guest_get_handle,
                              mktme_guest_set_handle, NULL, NULL);
    object_class_property_set_description(oc, "handle",
        "serial of a kernel key of type mktme (KVM)");
    object_class_property_add_bool(oc, "guest-visible",
                                   mktme_guest_get_guest_visible,
                                   mktme_guest_set_guest_visible);
    object_class_property_add_bool(oc, "activate",
                                   mktme_guest_get_activate,
                                   mktme_guest_set_activate);
    object_class_property_add_bool(oc, "cap-aes-xts-128",
                                   mktme_guest_get_cap_aes_xts_128,
                                   mktme_guest_set_cap_aes_xts_128);
    object_class_property_add_bool(oc, "cap-aes-xts-256",
                                   mktme_guest_get_cap_aes_xts_256,
                                   mktme_guest_set_cap_aes_xts_256);
    object_class_property_add_bool(oc, "cap-bypass",
                                   mktme_guest_get_cap_bypass,
                                   mktme_guest_set_cap_bypass);
    object_class_property_add(oc, "shadow-size", "size",
                              mktme_guest_get_shadow_size,
                              mktme_guest_set_shadow_size, NULL, NULL);
    object_class_property_set_description(oc, "shadow-size",
        "Bytes of plaintext shadows for the TCG fast path (0: none)");
    object_class_property_add_bool(oc, "shadow-write-back",
                                   mktme_guest_get_shadow_write_back,
                                   mktme_guest_set_shadow_write_back);
    object_class_property_set_description(oc, "shadow-write-back",
        "Let pages used through one KeyID take stores directly (TCG fast "
        "path; on by default)");
}

static void mktme_guest_init(Object *obj)
{
    MktmeGuest *mg = MKTME_GUEST(obj);

    mg->policy = MKTME_POLICY_REQUIRED;
    mg->plain_channel = MKTME_PLAIN_CHANNEL_REFUSE;
    mg->algorithm = MKTME_ALGORITHM_AES_XTS_128;
    mg->keyid_bits = 6;
    mg->activate = true;
    mg->cap_aes_xts_128 = true;
    mg->cap_aes_xts_256 = true;
    mg->cap_bypass = true;
    mg->ram_blocks = g_hash_table_new(NULL, NULL);
    qemu_mutex_init(&mg->ram_lock);
    object_property_add_uint8_ptr(obj, "keyid-bits", &mg->keyid_bits,
                                  OBJ_PROP_FLAG_READWRITE);
    /* For tests: PCONFIG statuses that cannot be provoked otherwise */
    object_property_add_uint16_ptr(obj, "x-pconfig-busy-keyid",
                                   &mg->x_busy_keyid,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_add_uint16_ptr(obj, "x-pconfig-no-entropy-keyid",
                                   &mg->x_noentropy_keyid,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_add_uint16_ptr(obj, "max-keys", &mg->max_keys,
                                   OBJ_PROP_FLAG_READWRITE);
    mg->shadow_size = MKTME_SHADOW_SIZE_DEFAULT;
    mg->shadow_write_back = true;
    object_property_add_uint32_ptr(obj, "encrypt-mprotect-nr",
                                   &mg->encrypt_mprotect_nr,
                                   OBJ_PROP_FLAG_READWRITE);
}

static void mktme_guest_finalize(Object *obj)
{
    MktmeGuest *mg = MKTME_GUEST(obj);

    if (mg->ram_notifier.ram_block_added) {
        ram_block_notifier_remove(&mg->ram_notifier);
    }
    if (mg->machine_done.notify) {
        qemu_remove_machine_init_done_notifier(&mg->machine_done);
    }
    migrate_del_blocker(&mg->migration_blocker);
    mktme_wire_cleanup(mg);
    vmstate_unregister(NULL, &vmstate_mktme, mg);
    mktme_mc_cleanup(mg);
    if (mg->platform) {
        qemu_unregister_reset(mktme_platform_reset_handler, mg);
        mktme_platform_free(mg->platform);
    }
    mktme_addrmap_free(mg->addrmap);
    mktme_kvm_put_key(mg);
    mktme_wipe(mg->vm_key, sizeof(mg->vm_key));
    g_hash_table_destroy(mg->ram_blocks);
    qemu_mutex_destroy(&mg->ram_lock);
    g_free(mg->key_secret);
    g_free(mg->reason);
}
