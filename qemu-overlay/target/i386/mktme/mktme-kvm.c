/*
 * TME-MK under KVM: the host kernel interface, all of it.
 *
 * Upstream Linux has no KVM interface for TME-MK.  The 2019 MKTME kernel
 * series (never merged) defined one, which this file follows:
 *   - a key of type "mktme" from the kernel key service, either created
 *     here ("type=cpu algorithm=aes-xts-128") or passed in by the
 *     management layer as a serial number (handle=);
 *   - encrypt_mprotect(addr, len, prot, serial) on every guest RAM
 *     mapping; KVM copies the pages' KeyID into the EPT.
 * The system call number of encrypt_mprotect was never fixed, and the
 * numbers that series proposed now belong to other x86_64 calls
 * (428 is open_tree, 436 close_range), so the number must come from
 * configuration (encrypt-mprotect-nr=) and the call is made only after
 * the "mktme" key type has proved present.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include <sys/syscall.h>
#include <sys/mman.h>
#include "mktme.h"
#include "trace.h"

#ifdef __x86_64__
#include <cpuid.h>
#endif

/* From <linux/keyctl.h>; not every libc has it. */
#define MKTME_KEY_SPEC_PROCESS_KEYRING  (-2)
#define MKTME_KEYCTL_UNLINK             9
#define MKTME_KEYCTL_INVALIDATE         21

static bool mktme_read_msr(uint32_t msr, uint64_t *val)
{
    int fd = open("/dev/cpu/0/msr", O_RDONLY);
    bool ok;

    if (fd < 0) {
        return false;
    }
    ok = pread(fd, val, sizeof(*val), msr) == sizeof(*val);
    close(fd);
    return ok;
}

static bool mktme_cpuinfo_has_tme(void)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;

    if (!g_file_get_contents("/proc/cpuinfo", &text, NULL, NULL)) {
        return false;
    }
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        if (g_str_has_prefix(*l, "flags")) {
            g_auto(GStrv) words = g_strsplit(*l, " ", -1);
            return g_strv_contains((const char * const *)words, "tme");
        }
    }
    return false;
}

/*
 * add_key() with an empty payload: an unknown key type fails with
 * ENODEV before anything else; a known one fails to parse the payload
 * (EINVAL or EBADMSG), and no key is created.  Any other error (no key
 * service, a seccomp filter, quota) proves nothing: count it as absent.
 */
static bool mktme_kernel_has_key_type(void)
{
    long serial = syscall(SYS_add_key, "mktme", "qemu-mktme-probe", "", 0,
                          MKTME_KEY_SPEC_PROCESS_KEYRING);

    if (serial >= 0) {
        syscall(SYS_keyctl, MKTME_KEYCTL_INVALIDATE, serial);
        return true;
    }
    return errno == EINVAL || errno == EBADMSG;
}

void mktme_host_probe(MktmeHostCaps *caps)
{
    memset(caps, 0, sizeof(*caps));
#ifdef __x86_64__
    {
        unsigned int a, b, c, d;

        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            caps->cpu_tme = c & (1u << 13);
        }
    }
#endif
    /* The kernel may hide TME (it clears the flag when BIOS left it off). */
    caps->cpu_tme = caps->cpu_tme && mktme_cpuinfo_has_tme();
    if (caps->cpu_tme) {
        caps->msr_readable =
            mktme_read_msr(MSR_IA32_TME_CAPABILITY, &caps->capability) &&
            mktme_read_msr(MSR_IA32_TME_ACTIVATE, &caps->activate);
    }
    caps->kernel_key_type = mktme_kernel_has_key_type();
    trace_mktme_host_probe(caps->cpu_tme, caps->msr_readable,
                           caps->activate, caps->kernel_key_type);
}

bool mktme_host_can_encrypt(const MktmeHostCaps *caps,
                            uint32_t encrypt_mprotect_nr, char **reason)
{
    if (!caps->cpu_tme) {
        *reason = g_strdup("the host CPU does not enumerate TME "
                           "(CPUID.7.0:ECX[13], /proc/cpuinfo flag tme)");
        return false;
    }
    if (caps->msr_readable &&
        (!(caps->activate & 1) || !(caps->activate & 2))) {
        *reason = g_strdup("host firmware did not activate TME "
                           "(IA32_TME_ACTIVATE lock/enable clear)");
        return false;
    }
    if (caps->msr_readable && !((caps->activate >> 32) & 0xf)) {
        *reason = g_strdup("host firmware activated TME without KeyIDs "
                           "(IA32_TME_ACTIVATE[35:32] = 0)");
        return false;
    }
    if (!caps->kernel_key_type) {
        *reason = g_strdup("the host kernel has no MKTME support "
                           "(key type \"mktme\" not registered)");
        return false;
    }
    if (!encrypt_mprotect_nr) {
        *reason = g_strdup("the host kernel's encrypt_mprotect system call "
                           "number is not configured (encrypt-mprotect-nr)");
        return false;
    }
    return true;
}

int mktme_kvm_get_key(MktmeGuest *mg, Error **errp)
{
    g_autofree char *payload = NULL;
    long serial;

    if (mg->has_handle) {
        mg->kernel_key = mg->handle;
        trace_mktme_kvm_key(mg->kernel_key, "handle");
        return 0;
    }
    payload = g_strdup_printf("type=cpu algorithm=%s",
                              MktmeAlgorithm_str(mg->algorithm));
    serial = syscall(SYS_add_key, "mktme", "qemu-mktme-vm", payload,
                     strlen(payload), MKTME_KEY_SPEC_PROCESS_KEYRING);
    if (serial < 0) {
        error_setg_errno(errp, errno, "mktme-guest: the kernel refused an "
                         "mktme key (%s)", payload);
        return -1;
    }
    mg->kernel_key = serial;
    trace_mktme_kvm_key(mg->kernel_key, "cpu");
    return 0;
}

int mktme_kvm_mark_ram(MktmeGuest *mg, void *host, size_t size, Error **errp)
{
    long r = syscall(mg->encrypt_mprotect_nr, host, size,
                     PROT_READ | PROT_WRITE, mg->kernel_key);

    if (r < 0) {
        error_setg_errno(errp, errno, "mktme-guest: encrypt_mprotect of "
                         "%zu bytes of guest RAM failed", size);
        return -1;
    }
    return 0;
}

void mktme_kvm_put_key(MktmeGuest *mg)
{
    /* A management-supplied key belongs to management. */
    if (mg->kernel_key && !mg->has_handle) {
        syscall(SYS_keyctl, MKTME_KEYCTL_UNLINK, mg->kernel_key,
                MKTME_KEY_SPEC_PROCESS_KEYRING);
    }
    mg->kernel_key = 0;
}
