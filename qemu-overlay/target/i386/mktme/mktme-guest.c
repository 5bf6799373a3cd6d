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
 * This file: the object's QOM type, its properties with their checks
 * at creation, and its teardown.  Bringing the encryption up (policy,
 * keys, the emulated platform, migration state): mktme-guest-setup.c.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-mktme.h"
#include "qapi/visitor.h"
#include "qom/object_interfaces.h"
#include "hw/boards.h"
#include "hw/i386/x86.h"
#include "system/reset.h"
#include "system/system.h"
#include "cpu.h"
#include "mktme-compat.h"
#include "migration/blocker.h"
#include "migration/vmstate.h"
#include "mktme.h"

MktmeGuest *mktme_guest_get(void)
{
    MachineState *ms = MACHINE(qdev_get_machine());

    if (!ms || !ms->cgs) {
        return NULL;
    }
    return (MktmeGuest *)object_dynamic_cast(OBJECT(ms->cgs),
                                             TYPE_MKTME_GUEST);
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
