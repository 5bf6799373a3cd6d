/*
 * TME-MK fuzz guest: parameters and results, shared by the freestanding
 * guest (fuzz.c) and the qtest (mktme-fuzz-test.c).
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_FUZZ_RESULTS_H
#define MKTME_FUZZ_RESULTS_H

/* The qtest writes MkfParams here (QEMU started with -S), then "cont". */
#define MKF_PARAMS_PA       0x90000ULL
/* The guest writes MkfResults here through KeyID 0. */
#define MKF_RESULTS_PA      0x100000ULL
#define MKF_MAGIC           0x315a5a5546454d4bULL   /* "KMEFUZZ1" */
#define MKF_DONE_OK         0x600dULL
#define MKF_DONE_CRASH      0xdeadULL

/* The 1 MiB buffer the memory operations use, by physical address */
#define MKF_BUF_PA          0x400000ULL
#define MKF_BUF_LEN         0x100000ULL

/* Operation types */
enum {
    MKF_OP_RDMSR,       /* 0x981-0x984, 0x9ff, nearby indices */
    MKF_OP_WRMSR,
    MKF_OP_PCONFIG,
    MKF_OP_READ,        /* 1/2/4/8 bytes through a KeyID window */
    MKF_OP_WRITE,
    MKF_OP_MOVSB,       /* 64-byte rep movsb, window <-> window or local */
    MKF_OP_CHECK,       /* write then read back through the same KeyID */
    MKF_OP_RECHECK,     /* a CHECK value read again later */
    MKF_OP_EXEC,        /* code written and run through a KeyID */
    MKF_OP_MOVDIR,      /* MOVDIR64B or MOVDIRI through a KeyID, read back */
    MKF_NOPS
};

/* Outcomes */
enum {
    MKF_OUT_OK,         /* no fault (PCONFIG: RAX = 0) */
    MKF_OUT_GP,         /* #GP(0), as predicted */
    MKF_OUT_PF,         /* #PF, as predicted (PCONFIG struct unmapped) */
    MKF_OUT_STATUS,     /* PCONFIG: RAX = 2 or 5 (no key change) */
    MKF_OUT_SKIP,       /* RECHECK: the KeyID was re-programmed */
    MKF_OUT_FAIL,
    MKF_NOUTS
};

typedef struct MkfParams {
    unsigned long long seed;
    unsigned long long iterations;
} MkfParams;

/* The first failure */
typedef struct MkfFailure {
    unsigned long long op, iteration;
    unsigned long long in[4];   /* op-specific inputs (see fuzz.c) */
    unsigned long long vector;  /* 0xff: no fault */
    unsigned long long error;   /* error code of the fault */
    unsigned long long got, expected;   /* value / RAX, or vector */
    unsigned long long flags;   /* PCONFIG: RFLAGS & 0x8d5 afterwards */
} MkfFailure;

typedef struct MkfResults {
    unsigned long long magic;
    unsigned long long done;    /* 0 while running, MKF_DONE_* at the end */
    unsigned long long seed, iterations, iteration;
    unsigned long long self_activated;  /* 1: the guest activated TME-MK */
    unsigned long long capability, activate, excl_mask, excl_base;
    unsigned long long keyid_bits;
    unsigned long long crash_vector, crash_error, crash_rip, crash_cr2;
    unsigned long long failures;
    unsigned long long count[MKF_NOPS][MKF_NOUTS];
    MkfFailure first;
} MkfResults;

#endif
