/*
 * QTest: the VM key on the wire.  An mktme-guest's migration state
 * carries the VM key and the key table; the object's plain-channel
 * property decides whether they may leave QEMU without TLS.  Here:
 * migrations over TLS (PSK, and x509 where GnuTLS's certtool is
 * installed) through a relay that keeps every byte the source sent, the
 * destination reading what the source read; the same over a plain
 * socket, to a file and into a qcow2 snapshot (savevm), refused by
 * default and allowed with plain-channel=allow.  The relay's capture
 * shows what the property protects: the key's bytes are in a plain
 * stream and in no TLS stream.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qstring.h"
#include "mktme-tls.h"

/* The VM key: data key 00..0f, tweak key 10..1f */
#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define ARGS \
    "-machine q35 -nodefaults -m 128M " \
    "-cpu max,vendor=GenuineIntel,phys-bits=46 " \
    "-object secret,id=s0,data=" KEY_B64 ",format=base64 " \
    "-object mktme-guest,id=k0,guest-visible=on,keyid-bits=4,key-secret=s0" \
    "%s -machine memory-encryption=k0 "
/* The same without key-secret: a random VM key */
#define ARGS_RANDOM \
    "-machine q35 -nodefaults -m 128M " \
    "-cpu max,vendor=GenuineIntel,phys-bits=46 " \
    "-object mktme-guest,id=k0,guest-visible=on,keyid-bits=4" \
    "%s -machine memory-encryption=k0 "
#define ALLOW       ",plain-channel=allow"
#define KEYID(k)    ((uint64_t)(k) << 42)   /* 46 bits, 4 KeyID bits */
#define PA          0x200000ULL
#define LEN         16384
#define REFUSED_MIGRATION "mktme-guest 'k0': a migration without TLS " \
    "would carry the VM key in the clear; migrate with TLS (the tls-creds " \
    "migration parameter) or set plain-channel=allow on the object"
#define REFUSED_SNAPSHOT "mktme-guest 'k0': a snapshot would carry the VM " \
    "key in the clear; migrate with TLS (the tls-creds migration " \
    "parameter) or set plain-channel=allow on the object"

static uint8_t vm_key[32];

/* Does @hay hold the VM key? */
static bool holds_key(const uint8_t *hay, size_t len)
{
    return memmem(hay, len, vm_key, sizeof(vm_key)) != NULL;
}

/* Guest RAM the test writes, through KeyID 0 and KeyID 7 (TME mode) */
static void fill(QTestState *qts, uint8_t *p)
{
    for (size_t i = 0; i < LEN; i++) {
        p[i] = i * 13 + (i >> 8) + 1;
    }
    qtest_memwrite(qts, PA, p, LEN / 2);
    qtest_memwrite(qts, KEYID(7) | (PA + LEN / 2), p + LEN / 2, LEN / 2);
}

/* The DRAM image E_0(R) of the test's range (x-mktme-dram-save) */
static uint8_t *dram_save(QTestState *qts)
{
    g_autofree char *path = NULL;
    uint8_t *dram;
    size_t len;
    int fd = g_file_open_tmp("mktme-mig-dram-XXXXXX", &path, NULL);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    qtest_qmp_assert_success(qts, "{'execute': 'x-mktme-dram-save', "
                             "'arguments': {'val': %" PRIu64 ", 'size': %d, "
                             "'filename': %s}}", PA, LEN, path);
    g_assert_true(g_file_get_contents(path, (char **)&dram, &len, NULL));
    unlink(path);
    g_assert_cmpint(len, ==, LEN);
    return dram;
}

/*
 * What the destination must read back, and its DRAM image: @dram, the
 * source's, which only the source's VM key gives (KeyIDs 0 and 7, in TME
 * mode, read R whatever the key)
 */
static void check_same(const uint8_t *dram, QTestState *dst,
                       const uint8_t *p)
{
    g_autofree uint8_t *back = g_malloc(LEN);
    g_autofree uint8_t *d = dram_save(dst);

    qtest_memread(dst, PA, back, LEN);
    g_assert_cmpmem(back, LEN, p, LEN);
    qtest_memread(dst, KEYID(7) | PA, back, LEN);
    g_assert_cmpmem(back, LEN, p, LEN);
    g_assert_cmpmem(d, LEN, dram, LEN);
}

static QDict *migrate_wait_end(QTestState *qts)
{
    for (;;) {
        QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                                  "{'execute': "
                                                  "'query-migrate'}");
        const char *status = qdict_get_try_str(rsp, "status");

        if (status && (!strcmp(status, "completed") ||
                       !strcmp(status, "failed"))) {
            return rsp;
        }
        qobject_unref(rsp);
        g_usleep(10000);
    }
}

static void assert_migration(QDict *rsp, const char *status,
                             const char *error)
{
    g_assert_cmpstr(qdict_get_str(rsp, "status"), ==, status);
    g_assert_cmpstr(qdict_get_try_str(rsp, "error-desc"), ==, error);
    qobject_unref(rsp);
}

static void assert_running(QTestState *qts, const char *plain)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                              "{'execute': 'query-status'}");

    g_assert_cmpstr(qdict_get_str(rsp, "status"), ==, "running");
    qobject_unref(rsp);
    rsp = qtest_qmp_assert_success_ref(qts, "{'execute': 'query-mktme'}");
    g_assert_true(qdict_get_bool(rsp, "enabled"));
    g_assert_cmpstr(qdict_get_str(rsp, "plain-channel"), ==, plain);
    qobject_unref(rsp);
}

/*
 * A relay on a Unix socket: it connects what comes in to @to and keeps
 * every byte that goes that way.
 */
typedef struct Relay {
    int lfd;
    char *to;
    GByteArray *bytes;
    GThread *thread;
} Relay;

static int unix_listen_at(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(a.sun_path, path, sizeof(a.sun_path));
    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    g_assert_cmpint(listen(fd, 1), ==, 0);
    return fd;
}

static int unix_connect_to(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };

    g_strlcpy(a.sun_path, path, sizeof(a.sun_path));
    for (int i = 0; i < 1000; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
            return fd;
        }
        close(fd);
        g_usleep(10000);
    }
    g_error("cannot connect to %s", path);
}

static bool write_all(int fd, const uint8_t *b, ssize_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, b, n);

        if (w <= 0) {
            return false;
        }
        b += w;
        n -= w;
    }
    return true;
}

static gpointer relay_run(gpointer opaque)
{
    Relay *r = opaque;
    int in = accept(r->lfd, NULL, NULL);
    int out = unix_connect_to(r->to);
    bool open_in = true, open_out = true;
    uint8_t buf[65536];

    g_assert_cmpint(in, >=, 0);
    while (open_in || open_out) {
        struct pollfd p[2] = {
            { .fd = open_in ? in : -1, .events = POLLIN },
            { .fd = open_out ? out : -1, .events = POLLIN },
        };
        ssize_t n;

        if (poll(p, 2, 120 * 1000) <= 0) {
            break;
        }
        if (p[0].revents) {
            n = read(in, buf, sizeof(buf));
            if (n <= 0 || !write_all(out, buf, n)) {
                shutdown(out, SHUT_WR);
                open_in = false;
            } else {
                g_byte_array_append(r->bytes, buf, n);
            }
        }
        if (p[1].revents) {
            n = read(out, buf, sizeof(buf));
            if (n <= 0 || !write_all(in, buf, n)) {
                shutdown(in, SHUT_WR);
                open_out = false;
            }
        }
    }
    close(in);
    close(out);
    return NULL;
}

static Relay *relay_start(const char *at, const char *to)
{
    Relay *r = g_new0(Relay, 1);

    r->lfd = unix_listen_at(at);
    r->to = g_strdup(to);
    r->bytes = g_byte_array_new();
    r->thread = g_thread_new("relay", relay_run, r);
    return r;
}

/* Wait for the relay to see both ends close; the bytes sent */
static GByteArray *relay_finish(Relay *r)
{
    GByteArray *b = r->bytes;

    g_thread_join(r->thread);
    close(r->lfd);
    g_free(r->to);
    g_free(r);
    return b;
}

/*
 * Migrate through a relay, with TLS of @kind or none (plain-channel=allow
 * then): the destination reads what the source read; returns the bytes
 * the source sent.
 */
static GByteArray *migrate_relayed(MktmeTls kind)
{
    g_autofree char *tmp = g_dir_make_tmp("mktme-mig-XXXXXX", NULL);
    g_autofree char *at = g_strdup_printf("%s/relay", tmp);
    g_autofree char *to = g_strdup_printf("%s/dst", tmp);
    g_autofree char *uri_at = g_strdup_printf("unix:%s", at);
    g_autofree char *uri_to = g_strdup_printf("unix:%s", to);
    g_autofree uint8_t *p = g_malloc(LEN);
    const char *plain = kind == MKTME_TLS_NONE ? ALLOW : "";
    char *dir = kind == MKTME_TLS_NONE ? NULL : mktme_tls_make(kind);
    QTestState *src = qtest_initf(ARGS, plain);
    /* A random key of its own: the stream's must replace it */
    QTestState *dst = qtest_initf(ARGS_RANDOM "-incoming defer", plain);
    g_autofree uint8_t *dram = NULL;
    GByteArray *sent;
    Relay *r;

    fill(src, p);
    dram = dram_save(src);
    if (dir) {
        mktme_tls_use(src, kind, dir, false);
        mktme_tls_use(dst, kind, dir, true);
    }
    qtest_qmp_assert_success(dst, "{'execute': 'migrate-incoming', "
                             "'arguments': {'uri': %s}}", uri_to);
    r = relay_start(at, to);
    qtest_qmp_assert_success(src, "{'execute': 'migrate', 'arguments': "
                             "{'uri': %s}}", uri_at);
    assert_migration(migrate_wait_end(src), "completed", NULL);
    qtest_qmp_eventwait(dst, "RESUME");
    check_same(dram, dst, p);
    assert_running(dst, kind == MKTME_TLS_NONE ? "allow" : "refuse");
    qtest_quit(src);
    qtest_quit(dst);
    sent = relay_finish(r);
    unlink(at);
    unlink(to);
    rmdir(tmp);
    mktme_tls_free(dir);
    /* All of the state went through: more than the RAM written */
    g_assert_cmpuint(sent->len, >, LEN);
    return sent;
}

static void test_tls(const void *opaque)
{
    MktmeTls kind = GPOINTER_TO_INT(opaque);
    GByteArray *sent;
    g_autofree char *certtool = g_find_program_in_path("certtool");

    if (kind == MKTME_TLS_X509 && !certtool) {
        g_test_skip("certtool (gnutls-bin) is not installed");
        return;
    }
    sent = migrate_relayed(kind);
    g_assert_false(holds_key(sent->data, sent->len));
    g_byte_array_unref(sent);
}

/* plain-channel=allow: the key goes, and the relay saw it */
static void test_plain_allowed(void)
{
    GByteArray *sent = migrate_relayed(MKTME_TLS_NONE);

    g_assert_true(holds_key(sent->data, sent->len));
    g_byte_array_unref(sent);
}

/* The default: a migration without TLS fails at once; the VM runs on */
static void test_plain_refused(void)
{
    g_autofree char *tmp = g_dir_make_tmp("mktme-mig-XXXXXX", NULL);
    g_autofree char *sock = g_strdup_printf("%s/dst", tmp);
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    g_autofree uint8_t *p = g_malloc(LEN);
    QTestState *src = qtest_initf(ARGS, "");
    QTestState *dst = qtest_initf(ARGS "-incoming %s", "", uri);

    g_autofree uint8_t *dram = NULL;

    fill(src, p);
    dram = dram_save(src);
    qtest_qmp_assert_success(src, "{'execute': 'migrate', 'arguments': "
                             "{'uri': %s}}", uri);
    assert_migration(migrate_wait_end(src), "failed", REFUSED_MIGRATION);
    assert_running(src, "refuse");
    check_same(dram, src, p);
    qtest_quit(src);
    /* The source hung up before its first byte: not a migration stream */
    qtest_set_expected_status(dst, 1);
    qtest_wait_qemu(dst);
    qtest_quit(dst);
    unlink(sock);
    rmdir(tmp);
}

/*
 * To a file (as virsh save does through a pipe): refused by default;
 * with plain-channel=allow the file holds the key, and a QEMU started
 * from it reads what the source read.
 */
static void test_file(void)
{
    g_autofree char *path = NULL;
    g_autofree char *uri = NULL;
    g_autofree uint8_t *p = g_malloc(LEN);
    g_autofree char *stream = NULL;
    g_autofree uint8_t *dram = NULL;
    size_t len;
    QTestState *src, *dst;
    int fd = g_file_open_tmp("mktme-mig-XXXXXX.state", &path, NULL);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    uri = g_strdup_printf("file:%s", path);

    src = qtest_initf(ARGS, "");
    fill(src, p);
    qtest_qmp_assert_success(src, "{'execute': 'migrate', 'arguments': "
                             "{'uri': %s}}", uri);
    assert_migration(migrate_wait_end(src), "failed", REFUSED_MIGRATION);
    g_assert_true(g_file_get_contents(path, &stream, &len, NULL));
    g_assert_false(holds_key((uint8_t *)stream, len));
    g_free(stream);
    qtest_quit(src);

    src = qtest_initf(ARGS, ALLOW);
    fill(src, p);
    dram = dram_save(src);
    qtest_qmp_assert_success(src, "{'execute': 'migrate', 'arguments': "
                             "{'uri': %s}}", uri);
    assert_migration(migrate_wait_end(src), "completed", NULL);
    g_assert_true(g_file_get_contents(path, &stream, &len, NULL));
    g_assert_true(holds_key((uint8_t *)stream, len));
    qtest_quit(src);

    /* A restore: its own key was random, the file's takes over */
    dst = qtest_initf(ARGS_RANDOM "-incoming %s", "", uri);
    qtest_qmp_eventwait(dst, "RESUME");
    check_same(dram, dst, p);
    qtest_quit(dst);
    unlink(path);
}

static void job_wait_concluded(QTestState *qts, const char *id)
{
    for (;;) {
        QDict *rsp = qtest_qmp(qts, "{'execute': 'query-jobs'}");
        QList *jobs = qdict_get_qlist(rsp, "return");
        bool done = false;

        for (QListEntry *e = qlist_first(jobs); e; e = qlist_next(e)) {
            QDict *j = qobject_to(QDict, qlist_entry_obj(e));

            if (!strcmp(qdict_get_str(j, "id"), id)) {
                g_assert_null(qdict_get_try_str(j, "error"));
                done = !strcmp(qdict_get_str(j, "status"), "concluded");
            }
        }
        qobject_unref(rsp);
        if (done) {
            break;
        }
        g_usleep(10000);
    }
    qtest_qmp_assert_success(qts, "{'execute': 'job-dismiss', "
                             "'arguments': {'id': %s}}", id);
}

/* QEMU with a fresh qcow2 image to take internal snapshots */
static QTestState *start_with_qcow2(const char *plain, const char *img)
{
    QTestState *qts = qtest_initf(ARGS "-blockdev driver=file,"
                                  "node-name=f0,filename=%s", plain, img);

    qtest_qmp_assert_success(qts, "{'execute': 'blockdev-create', "
                             "'arguments': {'job-id': 'c0', 'options': "
                             "{'driver': 'qcow2', 'file': 'f0', "
                             "'size': 1048576}}}");
    job_wait_concluded(qts, "c0");
    qtest_qmp_assert_success(qts, "{'execute': 'blockdev-add', "
                             "'arguments': {'driver': 'qcow2', "
                             "'node-name': 'd0', 'file': 'f0'}}");
    return qts;
}

/* savevm: refused by default; with plain-channel=allow, loadvm restores */
static void test_savevm(void)
{
    g_autofree char *img = NULL;
    g_autofree char *out = NULL;
    g_autofree uint8_t *p = g_malloc(LEN), *other = g_malloc0(LEN);
    g_autofree uint8_t *dram = NULL;
    QTestState *qts;
    int fd = g_file_open_tmp("mktme-snap-XXXXXX.qcow2", &img, NULL);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    qts = start_with_qcow2("", img);
    fill(qts, p);
    out = qtest_hmp(qts, "savevm s1");
    g_assert_nonnull(strstr(out, REFUSED_SNAPSHOT));
    g_free(out);
    out = qtest_hmp(qts, "info snapshots");
    g_assert_null(strstr(out, "s1"));
    g_free(out);
    assert_running(qts, "refuse");
    qtest_quit(qts);

    qts = start_with_qcow2(ALLOW, img);
    fill(qts, p);
    dram = dram_save(qts);
    out = qtest_hmp(qts, "savevm s1");
    /* The warning, once, where the command came from */
    g_assert_cmpstr(out, ==, "warning: mktme-guest 'k0': a snapshot carries "
                    "the VM key in the clear (plain-channel=allow)\r\n");
    g_free(out);
    out = qtest_hmp(qts, "savevm s2");
    g_assert_cmpstr(out, ==, "");
    g_free(out);
    qtest_memwrite(qts, PA, other, LEN);
    out = qtest_hmp(qts, "loadvm s1");
    g_assert_cmpstr(out, ==, "");
    check_same(dram, qts, p);
    assert_running(qts, "allow");
    qtest_quit(qts);
    unlink(img);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (int i = 0; i < 32; i++) {
        vm_key[i] = i;
    }
    qtest_add_data_func("/mktme-migration/tls/psk",
                        GINT_TO_POINTER(MKTME_TLS_PSK), test_tls);
    qtest_add_data_func("/mktme-migration/tls/x509",
                        GINT_TO_POINTER(MKTME_TLS_X509), test_tls);
    qtest_add_func("/mktme-migration/plain/refused", test_plain_refused);
    qtest_add_func("/mktme-migration/plain/allowed", test_plain_allowed);
    qtest_add_func("/mktme-migration/file", test_file);
    qtest_add_func("/mktme-migration/savevm", test_savevm);
    return g_test_run();
}
