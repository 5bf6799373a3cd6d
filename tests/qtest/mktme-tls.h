/*
 * TLS credentials for the TME-MK migration qtests: a PSK key file the
 * test draws, or an x509 CA with a server and a client certificate made
 * with GnuTLS's certtool (where it is installed).  Both sit in a fresh
 * directory, in the file names QEMU's tls-creds-psk and tls-creds-x509
 * objects look for.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_TLS_H
#define MKTME_TLS_H

typedef enum MktmeTls { MKTME_TLS_NONE, MKTME_TLS_PSK, MKTME_TLS_X509 }
    MktmeTls;

static const char *const mktme_tls_files[] = {
    "keys.psk", "ca-key.pem", "ca-cert.pem", "server-key.pem",
    "server-cert.pem", "client-key.pem", "client-cert.pem", "ca.info",
    "server.info", "client.info",
};

static void mktme_tls_put(const char *dir, const char *name, const char *s)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, s, -1, NULL));
}

static bool mktme_tls_certtool(const char *dir, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *err = NULL;
    int status;

    g_ptr_array_add(argv, (gpointer)"certtool");
    for (; *args; args++) {
        g_ptr_array_add(argv, (gpointer)*args);
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(dir, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH |
                      G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err,
                      &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        g_printerr("certtool failed: %s\n", err ? err : "");
        return false;
    }
    return true;
}

/* A directory of credentials, or NULL (x509 without certtool) */
static char *mktme_tls_make(MktmeTls kind)
{
    char *dir;
    g_autofree char *tool = NULL;

    if (kind == MKTME_TLS_X509) {
        tool = g_find_program_in_path("certtool");
        if (!tool) {
            return NULL;
        }
    }
    dir = g_dir_make_tmp("mktme-tls-XXXXXX", NULL);
    g_assert_nonnull(dir);
    if (kind == MKTME_TLS_PSK) {
        GString *k = g_string_new("qemu:");

        for (int i = 0; i < 32; i++) {
            g_string_append_printf(k, "%02x", g_test_rand_int_range(0, 256));
        }
        g_string_append_c(k, '\n');
        mktme_tls_put(dir, "keys.psk", k->str);
        g_string_free(k, true);
        return dir;
    }
    mktme_tls_put(dir, "ca.info", "cn = qemu-mktme test CA\nca\n"
                  "cert_signing_key\nexpiration_days = 2\n");
    mktme_tls_put(dir, "server.info", "organization = qemu-mktme\n"
                  "cn = localhost\ndns_name = localhost\ntls_www_server\n"
                  "encryption_key\nsigning_key\nexpiration_days = 2\n");
    mktme_tls_put(dir, "client.info", "organization = qemu-mktme\n"
                  "cn = qemu-mktme client\ntls_www_client\n"
                  "encryption_key\nsigning_key\nexpiration_days = 2\n");
    {
        const char *const steps[][12] = {
            { "--generate-privkey", "--key-type", "ecdsa", "--outfile",
              "ca-key.pem", NULL },
            { "--generate-self-signed", "--load-privkey", "ca-key.pem",
              "--template", "ca.info", "--outfile", "ca-cert.pem", NULL },
            { "--generate-privkey", "--key-type", "ecdsa", "--outfile",
              "server-key.pem", NULL },
            { "--generate-certificate", "--load-privkey", "server-key.pem",
              "--load-ca-certificate", "ca-cert.pem", "--load-ca-privkey",
              "ca-key.pem", "--template", "server.info", "--outfile",
              "server-cert.pem", NULL },
            { "--generate-privkey", "--key-type", "ecdsa", "--outfile",
              "client-key.pem", NULL },
            { "--generate-certificate", "--load-privkey", "client-key.pem",
              "--load-ca-certificate", "ca-cert.pem", "--load-ca-privkey",
              "ca-key.pem", "--template", "client.info", "--outfile",
              "client-cert.pem", NULL },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
            g_assert_true(mktme_tls_certtool(dir, steps[i]));
        }
    }
    return dir;
}

static void mktme_tls_free(char *dir)
{
    if (!dir) {
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(mktme_tls_files); i++) {
        g_autofree char *path = g_build_filename(dir, mktme_tls_files[i],
                                                 NULL);

        unlink(path);
    }
    rmdir(dir);
    g_free(dir);
}

/*
 * Give @qts credentials "tls0" from @dir, as the migration's @server or
 * client, and make its migrations use them.
 */
static void mktme_tls_use(QTestState *qts, MktmeTls kind, const char *dir,
                          bool server)
{
    const char *endpoint = server ? "server" : "client";

    if (kind == MKTME_TLS_PSK && server) {
        qtest_qmp_assert_success(qts, "{'execute': 'object-add', "
                                 "'arguments': {'qom-type': 'tls-creds-psk', "
                                 "'id': 'tls0', 'endpoint': 'server', "
                                 "'dir': %s}}", dir);
    } else if (kind == MKTME_TLS_PSK) {
        qtest_qmp_assert_success(qts, "{'execute': 'object-add', "
                                 "'arguments': {'qom-type': 'tls-creds-psk', "
                                 "'id': 'tls0', 'endpoint': 'client', "
                                 "'dir': %s, 'username': 'qemu'}}", dir);
    } else {
        qtest_qmp_assert_success(qts, "{'execute': 'object-add', "
                                 "'arguments': {'qom-type': "
                                 "'tls-creds-x509', 'id': 'tls0', "
                                 "'endpoint': %s, 'dir': %s, "
                                 "'verify-peer': true}}", endpoint, dir);
    }
    qtest_qmp_assert_success(qts, "{'execute': 'migrate-set-parameters', "
                             "'arguments': {'tls-creds': 'tls0', "
                             "'tls-hostname': 'localhost'}}");
}

#endif
