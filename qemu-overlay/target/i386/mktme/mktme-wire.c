/*
 * TME-MK under TCG: the VM key on the wire.
 *
 * The migration state of an mktme-guest carries the VM key and the key
 * table (vmstate_mktme, mktme-guest-setup.c): without them the destination
 * could not read what the guest wrote through KeyIDs.  The object's
 * plain-channel property decides whether they may leave QEMU without
 * TLS.  A migration is judged when it starts, by a migration notifier
 * (TLS when the tls-creds parameter names PSK credentials or x509 ones
 * that verify the peer: QEMU then runs every channel of a socket, fd or
 * exec migration through TLS, or fails it; an rdma: migration would not
 * use TLS, and this build has no RDMA); anything else
 * that saves the state (savevm, snapshot-save, a migration mode without
 * notifiers) when it saves it.  dump-guest-memory writes RAM only, the
 * KeyID 0 view: no key.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-migration.h"
#include "qemu/error-report.h"
#include "qom/object_interfaces.h"
#include "migration/misc.h"
#include "mktme.h"
#include "trace.h"

/*
 * The migration's tls-creds name credentials that authenticate the
 * peer: PSK, or x509 verifying the peer's certificate.  Anonymous
 * credentials encrypt but let anyone in the middle read the stream.
 */
static bool migration_has_tls(void)
{
    MigrationParameters *p = qmp_query_migrate_parameters(&error_abort);
    Object *creds = NULL;
    bool tls = false;

    if (p->tls_creds && *p->tls_creds) {
        creds = object_resolve_path_component(object_get_objects_root(),
                                              p->tls_creds);
    }
    if (creds && object_dynamic_cast(creds, "tls-creds-psk")) {
        tls = true;
    } else if (creds && object_dynamic_cast(creds, "tls-creds-x509")) {
        tls = object_property_get_bool(creds, "verify-peer", NULL);
    }
    qapi_free_MigrationParameters(p);
    return tls;
}

/* The key would go out in the clear in @what: refuse, or warn (once) */
static int mktme_wire_plain(MktmeGuest *mg, const char *what, Error **errp)
{
    const char *id = object_get_canonical_path_component(OBJECT(mg));

    trace_mktme_wire_plain(what, MktmePlainChannel_str(mg->plain_channel));
    if (mg->plain_channel == MKTME_PLAIN_CHANNEL_REFUSE) {
        error_setg(errp, "mktme-guest '%s': %s would carry the VM key in "
                   "the clear; migrate with TLS (the tls-creds migration "
                   "parameter) or set plain-channel=allow on the object",
                   id, what);
        return -EPERM;
    }
    if (!mg->plain_warned) {
        mg->plain_warned = true;
        warn_report("mktme-guest '%s': %s carries the VM key in the clear "
                    "(plain-channel=allow)", id, what);
    }
    return 0;
}

static int mktme_wire_notify(NotifierWithReturn *n, MigrationEvent *e,
                             Error **errp)
{
    MktmeGuest *mg = mktme_guest_get();

    if (e->type != MIG_EVENT_PRECOPY_SETUP) {
        mg->migrating = false;      /* done or failed */
        return 0;
    }
    if (!migration_has_tls() &&
        mktme_wire_plain(mg, "a migration without TLS", errp) < 0) {
        return -EPERM;
    }
    mg->migrating = true;
    return 0;
}

int mktme_wire_pre_save(MktmeGuest *mg)
{
    Error *err = NULL;

    /*
     * Judged when it started, if this is that migration saving its
     * state (precopy and postcopy completion, background snapshots and
     * COLO save from the migration thread); anything else saving now
     * (xen-save-devices-state during a migration, savevm) is judged here.
     */
    if (mg->migrating && migration_thread_is_self()) {
        return 0;
    }
    if (mktme_wire_plain(mg, "a snapshot", &err) < 0) {
        error_report_err(err);
        return -EPERM;
    }
    return 0;
}

/* Every migration mode: cpr-reboot and cpr-transfer save the state too */
void mktme_wire_init(MktmeGuest *mg)
{
    for (int m = 0; m < MIG_MODE__MAX; m++) {
        migration_add_notifier_mode(&mg->wire_notifier[m],
                                    mktme_wire_notify, m);
    }
}

void mktme_wire_cleanup(MktmeGuest *mg)
{
    for (int m = 0; m < MIG_MODE__MAX; m++) {
        migration_remove_notifier(&mg->wire_notifier[m]);
    }
}
