/*
 * QTest for TME-MK (mktme-guest): the object's errors and policy, QMP
 * and HMP replies, RAM marking (hot-plug included) and the DRAM view,
 * checked byte for byte against OpenSSL's AES-XTS.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qjson.h"
#include "qobject/qstring.h"
#include "mktme-oracle.h"

/* 32-byte AES-XTS-128 test key: data key 00..0f, tweak key 10..1f. */
#define KEY128_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
/* 64-byte AES-XTS-256 test key: bytes 0x40..0x7f. */
#define KEY256_B64 "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9g" \
                   "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+fw=="

#define BASE_ARGS "-machine q35 -nodefaults -m 128M "

static bool have_kvm(void)
{
    return qtest_has_accel("kvm") && access("/dev/kvm", R_OK | W_OK) == 0;
}

/*
 * Run QEMU with @args (split at spaces) and no qtest connection; it must
 * exit non-zero and print @expected on stderr.
 */
static void expect_start_failure(const char *args, const char *expected)
{
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *cmd = g_strdup_printf(
        "timeout 60 %s -display none -S %s", qemu, args);
    g_auto(GStrv) argv = g_strsplit(cmd, " ", -1);
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GError) gerr = NULL;
    int status;

    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                               NULL, &out, &err, &status, &gerr));
    /* Drop sanitizer notes ("==PID==WARNING: ..."): not QEMU's output */
    while (g_str_has_prefix(err, "==") && strchr(err, '\n')) {
        memmove(err, strchr(err, '\n') + 1, strlen(strchr(err, '\n')));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1 &&
        strstr(err, expected)) {
        /* One error, on one line */
        g_assert_cmpint(strchr(err, '\n') - err + 1, ==, strlen(err));
        return;
    }
    g_printerr("args: %s\nexit status %d\nstderr: %s\nexpected: %s\n", args,
               status, err, expected);
    g_assert_not_reached();
}

static void test_errors(void)
{
    static const char *cases[][2] = {
        { BASE_ARGS "-object mktme-guest,id=k0,policy=bogus "
          "-machine memory-encryption=k0",
          "Parameter 'policy' does not accept value 'bogus'" },
        { BASE_ARGS "-object mktme-guest,id=k0,algorithm=aes-xts-512 "
          "-machine memory-encryption=k0",
          "Parameter 'algorithm' does not accept value 'aes-xts-512'" },
        { BASE_ARGS "-object secret,id=s0,data=" KEY128_B64 ",format=base64 "
          "-object mktme-guest,id=k0,key-secret=s0,algorithm=aes-xts-256 "
          "-machine memory-encryption=k0",
          "mktme-guest: key-secret 's0' holds 32 bytes; aes-xts-256 needs "
          "64 (data key then tweak key)" },
        { BASE_ARGS "-object mktme-guest,id=k0,key-secret=nosuch "
          "-machine memory-encryption=k0",
          "No secret with id 'nosuch'" },
        { BASE_ARGS "-object mktme-guest,id=k0,keyid-bits=16 "
          "-machine memory-encryption=k0",
          "mktme-guest: keyid-bits must be 1 to 15, not 16" },
        { BASE_ARGS "-object mktme-guest,id=k0,keyid-bits=2,max-keys=4 "
          "-machine memory-encryption=k0",
          "mktme-guest: max-keys=4 needs more KeyIDs than keyid-bits=2 "
          "give (at most 3)" },
        { BASE_ARGS "-object mktme-guest,id=k0,handle=0 "
          "-machine memory-encryption=k0",
          "mktme-guest: handle must be a kernel key serial number" },
        { BASE_ARGS "-object secret,id=s0,data=x "
          "-object mktme-guest,id=k0,key-secret=s0,handle=5 "
          "-machine memory-encryption=k0",
          "mktme-guest: handle and key-secret exclude each other" },
        { BASE_ARGS "-object secret,id=s0,data=x "
          "-machine memory-encryption=s0",
          "Invalid parameter type for 'confidential-guest-support', "
          "expected: confidential-guest-support" },
        { BASE_ARGS "-object mktme-guest,id=k0 -accel qtest",
          "mktme-guest 'k0' is not used by the machine "
          "(select it with -machine memory-encryption=k0)" },
        { BASE_ARGS "-object mktme-guest,id=k0 -object mktme-guest,id=k1 "
          "-machine memory-encryption=k1 -accel qtest",
          "mktme-guest 'k0' is not used by the machine" },
        { BASE_ARGS "-cpu max,vendor=AuthenticAMD "
          "-object mktme-guest,id=k0,guest-visible=on "
          "-machine memory-encryption=k0 -accel qtest",
          "mktme-guest: guest-visible=on needs an Intel CPU model "
          "(for example -cpu max,vendor=GenuineIntel)" },
        { BASE_ARGS "-cpu max,vendor=GenuineIntel,phys-bits=36 "
          "-object mktme-guest,id=k0,guest-visible=on,keyid-bits=10 "
          "-machine memory-encryption=k0 -accel qtest",
          "mktme-guest: RAM top 0x8000000 does not fit below 2^26 "
          "(36 physical address bits minus 10 KeyID bits)" },
        { BASE_ARGS "-cpu max,vendor=GenuineIntel "
          "-object mktme-guest,id=k0,guest-visible=on,algorithm=aes-xts-256,"
          "cap-aes-xts-256=off -machine memory-encryption=k0 -accel qtest",
          "mktme-guest: algorithm=aes-xts-256 needs cap-aes-xts-256=on: the "
          "VM key is KeyID 0's key" },
        { BASE_ARGS "-cpu max,vendor=GenuineIntel "
          "-object mktme-guest,id=k0,guest-visible=on,cap-aes-xts-128=off,"
          "cap-aes-xts-256=off -machine memory-encryption=k0 -accel qtest",
          "mktme-guest: algorithm=aes-xts-128 needs cap-aes-xts-128=on" },
        /* The address map: what cannot fit below the KeyID bits */
        { BASE_ARGS "-cpu max,vendor=GenuineIntel,phys-bits=36 "
          "-object mktme-guest,id=k0,guest-visible=on,keyid-bits=5 "
          "-machine memory-encryption=k0 -accel qtest",
          "mktme-guest: 5 KeyID bits leave 31 of the 36 physical address "
          "bits: the I/O and firmware region below 4 GiB would carry "
          "KeyIDs (at most 4 KeyID bits here)" },
        { BASE_ARGS "-cpu max,vendor=GenuineIntel,phys-bits=46 "
          "-global q35-pcihost.pci-hole64-size=2T "
          "-object mktme-guest,id=k0,guest-visible=on,keyid-bits=6 "
          "-machine memory-encryption=k0 -accel qtest",
          "mktme-guest: the 64-bit PCI window ends at 0x20100000000, above "
          "2^40 (46 physical address bits minus 6 KeyID bits): lower the "
          "PCI host's pci-hole64-size "
          "(-global q35-pcihost.pci-hole64-size=...) or the KeyID bits" },
        { "-machine none -object mktme-guest,id=k0 "
          "-machine memory-encryption=k0 -accel qtest",
          "mktme-guest: needs an x86 PC machine, not 'none'" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        expect_start_failure(cases[i][0], cases[i][1]);
    }
}

/*
 * Sum of the sizes of the machine's writable RAM blocks (its DRAM; ROM
 * images are not encrypted), from "info ramblock".
 */
static uint64_t dram_total(QTestState *qts)
{
    g_autofree char *out = qtest_hmp(qts, "info ramblock");
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    uint64_t total = 0;

    for (char **l = lines + 1; *l; l++) {
        g_auto(GStrv) f = g_strsplit_set(g_strstrip(*l), " ", -1);
        g_autoptr(GPtrArray) w = g_ptr_array_new();

        /* Block-Name PSize(2 words) Offset Used Total HVA RO */
        for (char **p = f; *p; p++) {
            if (**p) {
                g_ptr_array_add(w, *p);
            }
        }
        if (w->len == 8 && !strcmp(g_ptr_array_index(w, 7), "rw")) {
            total += g_ascii_strtoull(g_ptr_array_index(w, 5), NULL, 16);
        }
    }
    return total;
}

/* The reply of query-mktme must be exactly the JSON @expected. */
static void assert_query_mktme(QTestState *qts, const char *expected)
{
    QDict *ret = qtest_qmp_assert_success_ref(qts,
                                              "{'execute': 'query-mktme'}");
    QObject *want = qobject_from_json(expected, &error_abort);

    if (!qobject_is_equal(QOBJECT(ret), want)) {
        g_autoptr(GString) got = qobject_to_json(QOBJECT(ret));

        g_printerr("got:      %s\nexpected: %s\n", got->str, expected);
        g_assert_not_reached();
    }
    qobject_unref(want);
    qobject_unref(ret);
}

static void test_query_tcg(void)
{
    QTestState *qts = qtest_init(BASE_ARGS
        "-object secret,id=s0,data=" KEY128_B64 ",format=base64 "
        "-object mktme-guest,id=k0,key-secret=s0 "
        "-machine memory-encryption=k0");
    g_autofree char *expected = NULL;
    g_autofree char *hmp = qtest_hmp(qts, "info mktme");

    /* -m 128M: pc.ram is all the DRAM there is */
    g_assert_cmpint(dram_total(qts), ==, 128 * MiB);
    expected = g_strdup_printf(
        "{\"encrypted-memory\": %" PRIu64 ", \"keys\": 0, "
        "\"keyid-bits\": 0, \"guest-visible\": false, "
        "\"key-source\": \"secret\", \"plain-channel\": \"refuse\", "
        "\"algorithm\": \"aes-xts-128\", "
        "\"accel\": \"qtest\", \"policy\": \"required\", "
        "\"enabled\": true}", dram_total(qts));
    assert_query_mktme(qts, expected);
    g_assert_cmpstr(hmp, ==,
                    "MKTME enabled\r\n"
                    "policy: required\r\n"
                    "accelerator: qtest\r\n"
                    "algorithm: aes-xts-128\r\n"
                    "key source: secret\r\n"
                    "plain channel: refuse\r\n"
                    "guest-visible: off\r\n"
                    "KeyID bits: 0\r\n"
                    "keys: 0\r\n"
                    "encrypted memory: 134217728 bytes\r\n");
    qtest_quit(qts);
}

/* guest-visible=on: the platform's KeyIDs are reported. */
static void test_query_guest_visible(void)
{
    QTestState *qts = qtest_init(BASE_ARGS
        "-cpu max,vendor=GenuineIntel,phys-bits=46 "
        "-object mktme-guest,id=k0,guest-visible=on,keyid-bits=5,"
        "max-keys=20,algorithm=aes-xts-256 "
        "-machine memory-encryption=k0");

    assert_query_mktme(qts,
                 "{\"encrypted-memory\": 134217728, \"keys\": 20, "
                 "\"keyid-bits\": 5, \"guest-visible\": true, "
                 "\"key-source\": \"random\", "
                 "\"plain-channel\": \"refuse\", "
                 "\"algorithm\": \"aes-xts-256\", \"accel\": \"qtest\", "
                 "\"policy\": \"required\", \"enabled\": true, "
                 "\"address-map\": {\"usable-phys-bits\": 41, "
                 "\"firmware-phys-bits\": 41, \"misplaced\": []}}");
    qtest_quit(qts);
}

/* PCI configuration space through 0xcf8/0xcfc, bus 0 */
static void pci_cfg_writel(QTestState *qts, int devfn, int reg, uint32_t v)
{
    qtest_outl(qts, 0xcf8, 0x80000000u | devfn << 8 | reg);
    qtest_outl(qts, 0xcfc, v);
}

/* qom-get @prop of @path, an integer */
static uint64_t qom_get_int(QTestState *qts, const char *path,
                            const char *prop)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                           "{'path': %s, 'property': %s}}", path, prop);
    uint64_t r;

    g_assert_true(qdict_haskey(rsp, "return"));
    r = qdict_get_int(rsp, "return");
    qobject_unref(rsp);
    return r;
}

/* qom-get @prop of the first vCPU */
static uint64_t cpu0_prop(QTestState *qts, const char *prop)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'query-cpus-fast'}");
    QDict *cpu = qobject_to(QDict, qlist_peek(qdict_get_qlist(rsp,
                                                               "return")));
    uint64_t r = qom_get_int(qts, qdict_get_str(cpu, "qom-path"), prop);

    qobject_unref(rsp);
    return r;
}

static uint64_t q35_prop(QTestState *qts, const char *prop)
{
    return qom_get_int(qts, "/machine/q35", prop);
}

/*
 * The address map under activated TME-MK: firmware is told the usable
 * width (none when it activates TME-MK itself); a BAR mapped inside the
 * KeyID range is reported, and reads there are RAM through a KeyID, as
 * on hardware, not the device.
 */
static void test_address_map(void)
{
    const int devfn = 5 << 3;   /* 00:05.0 */
    QTestState *qts = qtest_init(BASE_ARGS
        "-cpu max,vendor=GenuineIntel,phys-bits=46 "
        "-object memory-backend-ram,id=hm,size=1M,share=on "
        "-device ivshmem-plain,memdev=hm,addr=5.0 "
        "-object mktme-guest,id=k0,guest-visible=on,keyid-bits=6 "
        "-machine memory-encryption=k0");
    const uint64_t below = 0xe000000000ULL, inside = 0x380000000000ULL;
    g_autofree char *hmp = NULL;
    QDict *ret, *map;
    QList *mis;

    /* Device memory with a marker; BAR 2 (64-bit) below the KeyID bits */
    pci_cfg_writel(qts, devfn, 0x18, (uint32_t)below);
    pci_cfg_writel(qts, devfn, 0x1c, below >> 32);
    pci_cfg_writel(qts, devfn, 0x04, 0x2);             /* memory space */
    qtest_writeq(qts, below, 0x1122334455667788ULL);
    g_assert_cmphex(qtest_readq(qts, below), ==, 0x1122334455667788ULL);
    ret = qtest_qmp_assert_success_ref(qts, "{'execute': 'query-mktme'}");
    map = qdict_get_qdict(ret, "address-map");
    g_assert_cmpint(qdict_get_int(map, "usable-phys-bits"), ==, 40);
    g_assert_cmpint(qdict_get_int(map, "firmware-phys-bits"), ==, 40);
    g_assert_true(qlist_empty(qdict_get_qlist(map, "misplaced")));
    qobject_unref(ret);
    /* ... in CPUID 0x80000008 EAX[23:16] */
    g_assert_cmpint(cpu0_prop(qts, "guest-phys-bits"), ==, 40);
    g_assert_cmpint(cpu0_prop(qts, "phys-bits"), ==, 46);

    /* Moved inside the KeyID range: KeyID 56 of address 0, i.e. RAM */
    qtest_writeq(qts, 0, 0xa5a5a5a5a5a5a5a5ULL);
    pci_cfg_writel(qts, devfn, 0x18, (uint32_t)inside);
    pci_cfg_writel(qts, devfn, 0x1c, inside >> 32);
    /* (KeyID 56 is not programmed: it reads what KeyID 0 reads) */
    g_assert_cmphex(qtest_readq(qts, inside), ==, 0xa5a5a5a5a5a5a5a5ULL);
    g_assert_cmphex(qtest_readq(qts, below), ==, 0);   /* nothing there */
    ret = qtest_qmp_assert_success_ref(qts, "{'execute': 'query-mktme'}");
    mis = qdict_get_qlist(qdict_get_qdict(ret, "address-map"), "misplaced");
    g_assert_cmpint(qlist_size(mis), ==, 1);
    g_assert_cmpstr(qstring_get_str(qobject_to(QString, qlist_peek(mis))),
                    ==, "hm at 0x380000000000");
    qobject_unref(ret);
    hmp = qtest_hmp(qts, "info mktme");
    g_assert_nonnull(strstr(hmp, "address map: 40 usable physical address "
                            "bits, 40 told to firmware\r\n"
                            "address map: misplaced: hm at 0x380000000000"
                            "\r\n"));
    qtest_quit(qts);

    /* activate=off: firmware activates TME-MK, and knows */
    qts = qtest_init(BASE_ARGS "-cpu max,vendor=GenuineIntel,phys-bits=46 "
                     "-object mktme-guest,id=k0,guest-visible=on,"
                     "keyid-bits=6,activate=off "
                     "-machine memory-encryption=k0");
    ret = qtest_qmp_assert_success_ref(qts, "{'execute': 'query-mktme'}");
    map = qdict_get_qdict(ret, "address-map");
    g_assert_cmpint(qdict_get_int(map, "usable-phys-bits"), ==, 40);
    g_assert_cmpint(qdict_get_int(map, "firmware-phys-bits"), ==, 0);
    qobject_unref(ret);
    g_assert_cmpint(cpu0_prop(qts, "guest-phys-bits"), ==, 0);
    qtest_quit(qts);

    /* A lower guest-phys-bits of the user's stays, and is reported */
    qts = qtest_init(BASE_ARGS "-cpu max,vendor=GenuineIntel,phys-bits=46,"
                     "guest-phys-bits=36 "
                     "-object mktme-guest,id=k0,guest-visible=on,keyid-bits=6 "
                     "-machine memory-encryption=k0");
    ret = qtest_qmp_assert_success_ref(qts, "{'execute': 'query-mktme'}");
    map = qdict_get_qdict(ret, "address-map");
    g_assert_cmpint(qdict_get_int(map, "firmware-phys-bits"), ==, 36);
    qobject_unref(ret);
    g_assert_cmpint(cpu0_prop(qts, "guest-phys-bits"), ==, 36);
    qtest_quit(qts);

    /*
     * TCG's default 40 physical address bits leave 34 (16 GiB): q35's
     * 64-bit window of the default size (32 GiB above 4 GiB) is shrunk
     * to end there, with RAM above 4 GiB too.
     */
    qts = qtest_init("-machine q35 -nodefaults -m 8G "
                     "-cpu max,vendor=GenuineIntel "
                     "-object mktme-guest,id=k0,guest-visible=on "
                     "-machine memory-encryption=k0");
    g_assert_cmphex(q35_prop(qts, "pci-hole64-start"), ==, 10 * GiB);
    g_assert_cmphex(q35_prop(qts, "pci-hole64-end"), ==, 16 * GiB);
    g_assert_cmphex(q35_prop(qts, "pci-hole64-size"), ==, 6 * GiB);
    /* (34 is below what firmware copes with: it is not told) */
    g_assert_cmpint(cpu0_prop(qts, "guest-phys-bits"), ==, 0);
    qtest_quit(qts);
}

/*
 * Under TCG the reply has the memory controller's fast path: exact for
 * an idle machine, with one vCPU or several, and the reason when it is
 * off.
 */
static void test_query_fast_path(void)
{
    QTestState *qts = qtest_init(BASE_ARGS
        "-accel tcg -cpu max,vendor=GenuineIntel,phys-bits=46 -S "
        "-object mktme-guest,id=k0,guest-visible=on,shadow-size=1M "
        "-machine memory-encryption=k0");
    g_autofree char *hmp = qtest_hmp(qts, "info mktme");
    g_autofree char *hmp2 = NULL;
    g_autofree char *hmp3 = NULL;

    assert_query_mktme(qts,
                 "{\"encrypted-memory\": 134217728, \"keys\": 63, "
                 "\"fast-path\": {\"fills\": 0, \"in-use\": 0, "
                 "\"slots\": 256, \"writes\": 0, \"refreshes\": 0, "
                 "\"evictions\": 0, \"write-back-slots\": 0, "
                 "\"write-backs\": 0, \"demotions\": 0}, "
                 "\"keyid-bits\": 6, \"guest-visible\": true, "
                 "\"key-source\": \"random\", "
                 "\"plain-channel\": \"refuse\", "
                 "\"algorithm\": \"aes-xts-128\", \"accel\": \"tcg\", "
                 "\"policy\": \"required\", \"enabled\": true, "
                 "\"address-map\": {\"usable-phys-bits\": 40, "
                 "\"firmware-phys-bits\": 40, \"misplaced\": []}}");
    g_assert_nonnull(strstr(hmp, "fast path: 0 of 256 shadow slots in use, "
                                 "0 fills, 0 writes, 0 refreshes, "
                                 "0 evictions\r\n"
                                 "fast path write-back: 0 slots, 0 lines "
                                 "written back, 0 demotions\r\n"));
    qtest_quit(qts);

    qts = qtest_init(BASE_ARGS
        "-accel tcg,thread=multi -cpu max,vendor=GenuineIntel,phys-bits=46 "
        "-S -smp 4 -object mktme-guest,id=k0,guest-visible=on "
        "-machine memory-encryption=k0");
    hmp2 = qtest_hmp(qts, "info mktme");
    assert_query_mktme(qts,
                 "{\"encrypted-memory\": 134217728, \"keys\": 63, "
                 "\"fast-path\": {\"fills\": 0, \"in-use\": 0, "
                 "\"slots\": 24576, \"writes\": 0, \"refreshes\": 0, "
                 "\"evictions\": 0, \"write-back-slots\": 0, "
                 "\"write-backs\": 0, \"demotions\": 0}, "
                 "\"keyid-bits\": 6, \"guest-visible\": true, "
                 "\"key-source\": \"random\", "
                 "\"plain-channel\": \"refuse\", "
                 "\"algorithm\": \"aes-xts-128\", \"accel\": \"tcg\", "
                 "\"policy\": \"required\", \"enabled\": true, "
                 "\"address-map\": {\"usable-phys-bits\": 40, "
                 "\"firmware-phys-bits\": 40, \"misplaced\": []}}");
    g_assert_nonnull(strstr(hmp2, "fast path: 0 of 24576 shadow slots"));
    qtest_quit(qts);

    qts = qtest_init(BASE_ARGS
        "-accel tcg -cpu max,vendor=GenuineIntel,phys-bits=46 -S "
        "-object mktme-guest,id=k0,guest-visible=on,shadow-size=0 "
        "-machine memory-encryption=k0");
    hmp3 = qtest_hmp(qts, "info mktme");
    assert_query_mktme(qts,
                 "{\"encrypted-memory\": 134217728, \"keys\": 63, "
                 "\"fast-path\": {\"fills\": 0, \"in-use\": 0, "
                 "\"slots\": 0, \"writes\": 0, \"refreshes\": 0, "
                 "\"evictions\": 0, \"write-back-slots\": 0, "
                 "\"write-backs\": 0, \"demotions\": 0, "
                 "\"off-reason\": \"shadow-size=0\"}, "
                 "\"keyid-bits\": 6, \"guest-visible\": true, "
                 "\"key-source\": \"random\", "
                 "\"plain-channel\": \"refuse\", "
                 "\"algorithm\": \"aes-xts-128\", \"accel\": \"tcg\", "
                 "\"policy\": \"required\", \"enabled\": true, "
                 "\"address-map\": {\"usable-phys-bits\": 40, "
                 "\"firmware-phys-bits\": 40, \"misplaced\": []}}");
    g_assert_nonnull(strstr(hmp3, "fast path: off (shadow-size=0)\r\n"));
    qtest_quit(qts);
}

static void test_query_absent(void)
{
    QTestState *qts = qtest_init(BASE_ARGS);
    QDict *rsp = qtest_qmp(qts, "{'execute': 'query-mktme'}");
    g_autofree char *hmp = qtest_hmp(qts, "info mktme");

    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "MKTME is not enabled: the machine has no mktme-guest "
                    "object");
    g_assert_cmpstr(hmp, ==, "MKTME is not enabled: the machine has no "
                    "mktme-guest object\r\n");
    qobject_unref(rsp);

    rsp = qtest_qmp_assert_success_ref(qts,
                                       "{'execute': "
                                       "'query-mktme-capabilities'}");
    g_assert_true(qdict_get_bool(rsp, "emulation"));
    g_assert_cmpint(qdict_get_int(rsp, "max-keyid-bits"), ==, 15);
    g_assert_cmpint(qlist_size(qdict_get_qlist(rsp, "algorithms")), ==, 2);
    /* No TME-MK host exists to run this on: the host reports none. */
    g_assert_false(qdict_get_bool(rsp, "kvm"));
    qobject_unref(rsp);
    qtest_quit(qts);
}

/* A hot-plugged DIMM is marked too, and its size counts. */
static void test_hotplug_marking(void)
{
    QTestState *qts = qtest_init("-machine q35 -nodefaults "
                                 "-m 128M,slots=2,maxmem=512M "
                                 "-object mktme-guest,id=k0 "
                                 "-machine memory-encryption=k0");
    QDict *ret = qtest_qmp_assert_success_ref(qts,
                                              "{'execute': 'query-mktme'}");
    int64_t before = qdict_get_int(ret, "encrypted-memory");

    qobject_unref(ret);
    qtest_qmp_assert_success(qts, "{'execute': 'object-add', 'arguments': "
                             "{'qom-type': 'memory-backend-ram', "
                             "'id': 'mem1', 'size': 134217728}}");
    qtest_qmp_assert_success(qts, "{'execute': 'device_add', 'arguments': "
                             "{'driver': 'pc-dimm', 'id': 'dimm1', "
                             "'memdev': 'mem1'}}");
    ret = qtest_qmp_assert_success_ref(qts, "{'execute': 'query-mktme'}");
    g_assert_cmpint(qdict_get_int(ret, "encrypted-memory"), ==,
                    before + 134217728);
    g_assert_cmpstr(qdict_get_str(ret, "key-source"), ==, "random");
    qobject_unref(ret);
    qtest_quit(qts);
}

typedef struct DramCase {
    const char *secret_b64;
    const char *algorithm;
    uint8_t key0;       /* first key byte; the key is key0, key0+1, ... */
    size_t keylen;
} DramCase;

/* The DRAM view of [@pa, @pa + @len), through x-mktme-dram-save */
static uint8_t *dram_save(QTestState *qts, uint64_t pa, uint64_t len)
{
    g_autofree char *path = NULL;
    uint8_t *dram;
    size_t dlen;
    int fd;

    fd = g_file_open_tmp("mktme-dram-XXXXXX", &path, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    qtest_qmp_assert_success(qts, "{'execute': 'x-mktme-dram-save', "
                             "'arguments': {'val': %" PRIu64 ", 'size': %"
                             PRIu64 ", 'filename': %s}}", pa, len, path);
    g_assert_true(g_file_get_contents(path, (char **)&dram, &dlen, NULL));
    unlink(path);
    g_assert_cmpint(dlen, ==, len);
    return dram;
}

/*
 * A secret written to guest RAM is absent from the DRAM view, and
 * decrypting the DRAM view with the key gives it back.
 */
static void test_dram_view(const void *opaque)
{
    const DramCase *dc = opaque;
    const uint64_t pa = 0x100000, len = 8192;
    QTestState *qts = qtest_initf(BASE_ARGS
        "-object secret,id=s0,data=%s,format=base64 "
        "-object mktme-guest,id=k0,key-secret=s0,algorithm=%s "
        "-machine memory-encryption=k0", dc->secret_b64, dc->algorithm);
    g_autofree uint8_t *plain = g_malloc(len), *dram = NULL;
    g_autofree uint8_t *expect = g_malloc(len), *back = g_malloc(len);
    uint8_t key[64];

    for (size_t i = 0; i < dc->keylen; i++) {
        key[i] = dc->key0 + i;
    }
    for (size_t i = 0; i < len; i++) {
        plain[i] = "The secret lives here. "[i % 23];
    }
    qtest_memwrite(qts, pa, plain, len);

    dram = dram_save(qts, pa, len);
    g_assert_null(memmem(dram, len, "secret", 6));
    xts_oracle(key, dc->keylen, pa, expect, plain, len, true);
    g_assert_cmpmem(dram, len, expect, len);
    xts_oracle(key, dc->keylen, pa, back, dram, len, false);
    g_assert_cmpmem(back, len, plain, len);

    /* KeyID 0 (pmemsave, DMA, qtest reads) still sees the plaintext. */
    qtest_memread(qts, pa, back, len);
    g_assert_cmpmem(back, len, plain, len);
    qtest_quit(qts);
}

/*
 * QMP sweep: malformed and out-of-range arguments to every new command
 * get an error reply, and QEMU goes on answering.
 */
static void test_qmp_sweep(void)
{
    static const char *bad[] = {
        "{'execute': 'query-mktme', 'arguments': {'x': 1}}",
        "{'execute': 'query-mktme', 'arguments': 1}",
        "{'execute': 'query-mktme-capabilities', 'arguments': {'a': 'b'}}",
        "{'execute': 'x-mktme-dram-save'}",
        "{'execute': 'x-mktme-dram-save', 'arguments': {'val': 0}}",
        "{'execute': 'x-mktme-dram-save', 'arguments': "
        "{'val': -1, 'size': 64, 'filename': '/dev/null'}}",
        "{'execute': 'x-mktme-dram-save', 'arguments': "
        "{'val': 'zero', 'size': 64, 'filename': '/dev/null'}}",
        "{'execute': 'x-mktme-dram-save', 'arguments': "
        "{'val': 0, 'size': 64.5, 'filename': '/dev/null'}}",
        "{'execute': 'x-mktme-dram-save', 'arguments': "
        "{'val': 0, 'size': 64, 'filename': 7}}",
        "{'execute': 'x-mktme-dram-save', 'arguments': "
        "{'val': 0, 'size': 64, 'filename': '/dev/null', 'extra': 1}}",
        "{'execute': 'x-mktme-dram-save', 'arguments': "
        "{'val': 0, 'size': 63, 'filename': '/dev/null'}}",
        "{'execute': 'x-mktme-dram-save', 'arguments': "
        "{'val': 18446744073709551552, 'size': 64, 'filename': '/dev/null'}}",
        "{'execute': 'x-mktme-dram-save', 'arguments': "
        "{'val': 0, 'size': 18446744073709551552, 'filename': '/dev/null'}}",
        "{'execute': 'object-add', 'arguments': "
        "{'qom-type': 'mktme-guest', 'id': 'k9', 'keyid-bits': 99}}",
        "{'execute': 'object-add', 'arguments': "
        "{'qom-type': 'mktme-guest', 'id': 'k9', 'policy': 3}}",
        "{'execute': 'object-add', 'arguments': "
        "{'qom-type': 'mktme-guest', 'id': 'k9', 'max-keys': 70000}}",
        "{'execute': 'object-del', 'arguments': {'id': 'k0'}}",
        "{'execute': 'qom-set', 'arguments': {'path': '/objects/k0', "
        "'property': 'policy', 'value': 'bogus'}}",
    };
    QTestState *qts = qtest_init(BASE_ARGS "-object mktme-guest,id=k0 "
                                 "-machine memory-encryption=k0");
    g_autofree char *expected = g_strdup_printf(
        "{\"encrypted-memory\": %d, \"keys\": 0, \"keyid-bits\": 0, "
        "\"guest-visible\": false, \"key-source\": \"random\", "
        "\"plain-channel\": \"refuse\", "
        "\"algorithm\": \"aes-xts-128\", \"accel\": \"qtest\", "
        "\"policy\": \"required\", \"enabled\": true}", (int)(128 * MiB));

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        QDict *rsp = qtest_qmp(qts, "%s", bad[i]);

        if (!qdict_haskey(rsp, "error")) {
            g_printerr("no error for %s\n", bad[i]);
            g_assert_not_reached();
        }
        qobject_unref(rsp);
    }
    /* Still there, still the same */
    assert_query_mktme(qts, expected);
    qtest_quit(qts);
}

static void test_dram_save_errors(void)
{
    QTestState *qts = qtest_init(BASE_ARGS "-object mktme-guest,id=k0 "
                                 "-machine memory-encryption=k0");
    QDict *rsp;

    rsp = qtest_qmp(qts, "{'execute': 'x-mktme-dram-save', 'arguments': "
                    "{'val': 65, 'size': 64, 'filename': '/dev/null'}}");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "val and size must be multiples of 64");
    qobject_unref(rsp);
    rsp = qtest_qmp(qts, "{'execute': 'x-mktme-dram-save', 'arguments': "
                    "{'val': 0, 'size': 64, 'filename': "
                    "'/nonexistent/dir/f'}}");
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"), "/nonexistent/dir/f"));
    qobject_unref(rsp);
    rsp = qtest_qmp(qts, "{'execute': 'x-mktme-dram-save', 'arguments': "
                    "{'val': 18446744073709551552, 'size': 128, "
                    "'filename': '/dev/null'}}");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "val + size wraps around");
    qobject_unref(rsp);
    qtest_quit(qts);
}

static void migrate_and_wait(QTestState *src, const char *uri)
{
    qtest_qmp_assert_success(src, "{'execute': 'migrate', "
                             "'arguments': {'uri': %s}}", uri);
    for (;;) {
        QDict *rsp = qtest_qmp_assert_success_ref(src,
                                                  "{'execute': "
                                                  "'query-migrate'}");
        const char *status = qdict_get_str(rsp, "status");
        bool done = !strcmp(status, "completed");

        g_assert_cmpstr(status, !=, "failed");
        qobject_unref(rsp);
        if (done) {
            return;
        }
        g_usleep(10000);
    }
}

/*
 * TCG migration: the destination, which drew its own random key at
 * start, reads the same through KeyID 0 and holds the same DRAM image:
 * the VM's key and the platform state came with the stream (a plain
 * one: plain-channel=allow; mktme-migration-test has TLS).
 */
static void test_migration(void)
{
    const uint64_t pa = 0x200000, len = 16384;
    g_autofree char *tmp = g_dir_make_tmp("mktme-mig-XXXXXX", NULL);
    g_autofree char *uri = g_strdup_printf("unix:%s/sock", tmp);
    g_autofree char *sock = g_strdup_printf("%s/sock", tmp);
    const char *args = BASE_ARGS "-cpu max,vendor=GenuineIntel,phys-bits=46 "
        "-object mktme-guest,id=k0,guest-visible=on,keyid-bits=4,"
        "plain-channel=allow "
        "-machine memory-encryption=k0";
    QTestState *src = qtest_init(args);
    QTestState *dst = qtest_initf("%s -incoming %s", args, uri);
    g_autofree uint8_t *plain = g_malloc(len), *back = g_malloc(len);
    g_autofree uint8_t *dram_src = NULL, *dram_dst = NULL;
    g_autofree uint8_t *dram_dst_before = NULL;

    for (size_t i = 0; i < len; i++) {
        plain[i] = i * 13 + (i >> 8);
    }
    qtest_memwrite(src, pa, plain, len);
    dram_src = dram_save(src, pa, len);
    dram_dst_before = dram_save(dst, pa, len);
    /* Two random keys: the two DRAM images differ before migration. */
    g_assert_true(memcmp(dram_src, dram_dst_before, len) != 0);

    migrate_and_wait(src, uri);
    qtest_qmp_eventwait(dst, "RESUME");

    qtest_memread(dst, pa, back, len);
    g_assert_cmpmem(back, len, plain, len);
    /* KeyID 7 was never programmed: it reads what KeyID 0 reads. */
    qtest_memread(dst, (7ULL << 42) | pa, back, len);
    g_assert_cmpmem(back, len, plain, len);
    dram_dst = dram_save(dst, pa, len);
    g_assert_cmpmem(dram_dst, len, dram_src, len);
    assert_query_mktme(dst,
                 "{\"encrypted-memory\": 134217728, \"keys\": 15, "
                 "\"keyid-bits\": 4, \"guest-visible\": true, "
                 "\"key-source\": \"random\", "
                 "\"plain-channel\": \"allow\", "
                 "\"algorithm\": \"aes-xts-128\", \"accel\": \"qtest\", "
                 "\"policy\": \"required\", \"enabled\": true, "
                 "\"address-map\": {\"usable-phys-bits\": 42, "
                 "\"firmware-phys-bits\": 42, \"misplaced\": []}}");
    qtest_quit(src);
    qtest_quit(dst);
    unlink(sock);
    rmdir(tmp);
}

/*
 * KVM on a host without TME-MK (every host today): if-supported runs the
 * guest unencrypted and says why; required refuses to start.
 */
static void test_kvm_policy(void)
{
    QTestState *qts;

    if (!have_kvm()) {
        g_test_skip("/dev/kvm is not usable");
        return;
    }
    expect_start_failure(BASE_ARGS "-object mktme-guest,id=k0 "
                         "-machine memory-encryption=k0 -accel kvm",
                         "mktme-guest: cannot encrypt guest memory: the host "
                         "CPU does not enumerate TME (CPUID.7.0:ECX[13], "
                         "/proc/cpuinfo flag tme) (policy=required)");
    expect_start_failure(BASE_ARGS "-object mktme-guest,id=k0,"
                         "guest-visible=on -machine memory-encryption=k0 "
                         "-accel kvm",
                         "mktme-guest: guest-visible=on needs TCG");

    qts = qtest_init(BASE_ARGS "-object mktme-guest,id=k0,"
                     "policy=if-supported,handle=42 "
                     "-machine memory-encryption=k0 -accel kvm");
    assert_query_mktme(qts,
        "{\"encrypted-memory\": 0, \"keys\": 0, \"keyid-bits\": 0, "
        "\"guest-visible\": false, \"key-source\": \"handle\", "
        "\"plain-channel\": \"refuse\", "
        "\"algorithm\": \"aes-xts-128\", \"accel\": \"kvm\", "
        "\"policy\": \"if-supported\", \"reason\": \"the host CPU does "
        "not enumerate TME (CPUID.7.0:ECX[13], /proc/cpuinfo flag "
        "tme)\", \"enabled\": false}");
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    static const DramCase dram128 = { KEY128_B64, "aes-xts-128", 0x00, 32 };
    static const DramCase dram256 = { KEY256_B64, "aes-xts-256", 0x40, 64 };

    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/mktme/errors", test_errors);
    qtest_add_func("/mktme/query/qtest", test_query_tcg);
    qtest_add_func("/mktme/query/guest-visible", test_query_guest_visible);
    qtest_add_func("/mktme/query/absent", test_query_absent);
    qtest_add_func("/mktme/address-map", test_address_map);
    if (qtest_has_accel("tcg")) {
        qtest_add_func("/mktme/query/fast-path", test_query_fast_path);
    }
    qtest_add_func("/mktme/ram/hotplug", test_hotplug_marking);
    qtest_add_data_func("/mktme/dram/aes-xts-128", &dram128, test_dram_view);
    qtest_add_data_func("/mktme/dram/aes-xts-256", &dram256, test_dram_view);
    qtest_add_func("/mktme/dram/errors", test_dram_save_errors);
    qtest_add_func("/mktme/qmp/sweep", test_qmp_sweep);
    qtest_add_func("/mktme/migration/tcg", test_migration);
    qtest_add_func("/mktme/kvm/policy", test_kvm_policy);
    return g_test_run();
}
