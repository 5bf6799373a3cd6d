/*
 * TME-MK test guest: the results area and the test data, shared by the
 * freestanding guest (guest.c) and the qtest (mktme-pconfig-test.c).
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_GUEST_RESULTS_H
#define MKTME_GUEST_RESULTS_H

/* The guest writes MkgResults here through KeyID 0. */
#define MKG_RESULTS_PA      0x100000ULL
#define MKG_MAGIC           0x3154534554474b4dULL   /* "MKGTEST1" */
#define MKG_DONE_OK         0x600dULL
#define MKG_DONE_CRASH      0xdeadULL

#define MKG_NO_FAULT        0xffULL     /* MkgOp.vector: no exception */
#define MKG_NOT_RUN         0x1ffULL    /* MkgOp.vector: step skipped */
#define MKG_FLAGS_MASK      0x8d5ULL    /* CF PF AF ZF SF OF */

/* MkgResults.path */
#define MKG_PATH_NO_TME     1   /* CPUID.7.0:ECX[13] = 0 */
#define MKG_PATH_ACTIVE     2   /* IA32_TME_ACTIVATE was already locked */
#define MKG_PATH_SELF       3   /* the guest activated TME-MK itself */
#define MKG_PATH_INACTIVE   4   /* TME but no usable TME-MK: tests skipped */

/* The values the guest writes to the MSRs */
#define MKG_ACTIVATE        0x0005000600000003ULL
#define MKG_EXCL_MASK       0x00003ffff8000800ULL   /* enable, 128 MiB */
#define MKG_EXCL_BASE       0x0000000008000000ULL   /* 128 MiB..256 MiB */

/* Buffers, by physical address (KeyID bits clear) */
#define MKG_PA_A    0x2fff80ULL /* P_A via KeyID 1, read via every KeyID */
#define MKG_LEN_A   256         /* 4 lines across a 4 KiB and 2 MiB edge */
#define MKG_PA_B    0x3fffc0ULL /* Q via KeyID 0, read via KeyIDs 1, 3 */
#define MKG_LEN_B   128
#define MKG_PA_C    0x201000ULL /* S via KeyID 3 (no-encrypt) */
#define MKG_PA_C2   0x202000ULL /* T via KeyID 2 (AES-XTS-256) */
#define MKG_LEN_C   128
#define MKG_PA_D    0x203000ULL /* P_D via KeyID 1, then partial writes */
#define MKG_LEN_D   192
#define MKG_PA_F    0x204000ULL /* F via KeyID 0, read via KeyID 1: the */
#define MKG_LEN_F   128         /* first fill; then F' via KeyID 0 */
#define MKG_PA_E    0x8001000ULL /* U via KeyID 0 inside the exclusion range */
#define MKG_LEN_E   128
#define MKG_PA_X    0x500000ULL /* code, written via KeyID 1 */
#define MKG_PA_PD_F 0x681000ULL /* PD of the fetch window, behind KeyID 1 */
#define MKG_PA_PT_F 0x682000ULL /* PT of the fetch window, behind KeyID 3 */

#define MKG_NKID    12          /* KeyIDs 0..11 get a window */

/* Pattern byte @i of buffer @which */
static inline unsigned char mkg_pattern(unsigned which, unsigned i)
{
    return (unsigned char)(i * 7 + which * 0x31 + (i >> 3) + 1);
}

/* Keys given to PCONFIG: data key d0, d0+1, ...; tweak key t0, t0+1, ... */
typedef struct MkgKey {
    unsigned char d0, t0, len;  /* len: 16 (AES-XTS-128) or 32 bytes */
} MkgKey;

static const MkgKey mkg_key1 = { 0xa0, 0xb0, 16 };    /* KeyIDs 1, 11 */
static const MkgKey mkg_key2 = { 0xc0, 0xe0, 32 };    /* KeyID 2 */
static const MkgKey mkg_key5 = { 0x50, 0x60, 16 };    /* KeyID 5, cleared */
static const MkgKey mkg_key9 = { 0x90, 0x70, 32 };    /* KeyID 9, cleared */
static const MkgKey mkg_key1b = { 0x10, 0x30, 32 };   /* KeyID 1 re-keyed */
static const MkgKey mkg_junk = { 0xee, 0xef, 16 };    /* failing PCONFIGs */

/* Writes through KeyID 1 into P_D: little-endian, any alignment */
typedef struct MkgPoke {
    unsigned short off;
    unsigned char size;
    unsigned long long val;
} MkgPoke;

static const MkgPoke mkg_pokes[] = {
    { 0x05, 1, 0x11 },
    { 0x3f, 1, 0x22 },                      /* last byte of line 0 */
    { 0x40, 1, 0x33 },                      /* first byte of line 1 */
    { 0x18, 8, 0x0102030405060708ULL },
    { 0x7f, 2, 0x4455 },                    /* straddles lines 1/2 */
    { 0x9e, 4, 0xdeadbeef },
    { 0x7c, 8, 0x8877665544332211ULL },     /* straddles lines 1/2 */
};
/* Then one byte written through KeyID 0 into line 2 */
#define MKG_D_KID0_OFF  0xa1
#define MKG_D_KID0_VAL  0x5a

/* Code: mov $imm32, %eax; ret.  The rest of the line is int3. */
#define MKG_CODE_IMM1   0x1234
#define MKG_CODE_IMM2   0x5678  /* patched in through KeyID 1 at offset 1 */

/* Flag producers before PCONFIG (g_pconfig_flags), MkgResults.fp_*[] */
enum {
    MKG_FP_BRANCH,          /* xor, then a taken jz */
    MKG_FP_ADD, MKG_FP_SUB, MKG_FP_CMP, MKG_FP_TEST, MKG_FP_AND,
    MKG_FP_OR, MKG_FP_XOR, MKG_FP_INC, MKG_FP_DEC, MKG_FP_SHL,
    MKG_FP_SHR, MKG_FP_MUL, MKG_FP_POPF_SET, MKG_FP_POPF_CLEAR,
    MKG_NFP
};
#define MKG_FP_ALONE        0x100       /* the producer without PCONFIG */
#define MKG_DS_SEL          0x40        /* data, base MKG_DS_BASE */
#define MKG_DS_BASE         0x10000ULL
#define MKG_PA_PCS_DS       0x700000ULL /* PCONFIG struct read with DS */
#define MKG_FP_KEYID        12          /* NO_ENCRYPT, for the flag cases */
/* x-pconfig-busy-keyid / x-pconfig-no-entropy-keyid of the test */
#define MKG_FP_BUSY_KEYID   13          /* PCONFIG returns DEVICE_BUSY */
#define MKG_FP_NOENT_KEYID  14          /* random key: ENTROPY_ERROR */

/*
 * MOVDIR64B and MOVDIRI (mv_tests() in guest.c).  Case i writes the
 * line at mkg_mv_dest(i) through KeyID .keyid: MOVDIR64B copies the 64
 * bytes P = mkg_pattern(MKG_MV_PATTERN + i) that the guest wrote at
 * mkg_mv_src(i) (unaligned) through KeyID .srckid; MOVDIRI stores
 * MKG_MV_VAL32/64 at offset MKG_MV_DIRI_OFF of a line the guest wrote
 * with P through the same KeyID.  The destination line holds
 * MKG_MV_FILL (written through KeyID 0) before, or .prekid's P'.
 */
#define MKG_PA_MV       0x720000ULL
#define MKG_PA_MVSRC    0x730000ULL
#define MKG_PA_MVCODE   0x740000ULL     /* code stubs */
#define MKG_PA_MVF      0x750000ULL     /* fault cases' lines, 256 apart */
#define MKG_MV_PA16     0x9000ULL       /* 16-bit address size: below 64K */
#define MKG_MV_SRC16    0xa003ULL
#define MKG_MV_PATTERN  40
#define MKG_MV_FILL     0x77
#define MKG_MV_DIRI_OFF 16
#define MKG_MV_VAL32    0x11223344ULL
#define MKG_MV_VAL64    0x8877665544332211ULL

enum {
    MKG_MV_K0, MKG_MV_K1, MKG_MV_K2, MKG_MV_K3, MKG_MV_K5, MKG_MV_K9,
    MKG_MV_CROSS,       /* the source across a 4 KiB page boundary */
    MKG_MV_SRC_K2,      /* the source read through KeyID 2 */
    MKG_MV_OVER_K2,     /* over a line written through KeyID 2 */
    MKG_MV_A32,         /* 67: 32-bit addresses, high register bits set */
    MKG_MV_COMPAT32,    /* compatibility mode, ES base MKG_DS_BASE */
    MKG_MV_COMPAT16,    /* compatibility mode, 67: 16-bit addresses */
    MKG_MV_DIRI32,      /* MOVDIRI m32 */
    MKG_MV_DIRI64,      /* MOVDIRI m64 (REX.W) */
    MKG_MV_RDX,         /* the destination in RDX (RAX: MKG_MV_DECOY) */
    MKG_MV_R9,          /* the destination in R9 (REX.R) */
    MKG_NMV
};
#define MKG_MV_DECOY    (MKG_PA_MVF + 0xc00)    /* must stay MKG_MV_FILL */

typedef struct MkgMv {
    unsigned char keyid, srckid, prekid;    /* prekid 0xff: MKG_MV_FILL */
} MkgMv;

static const MkgMv mkg_mv[MKG_NMV] = {
    [MKG_MV_K0] = { 0, 0, 0xff },
    [MKG_MV_K1] = { 1, 0, 0xff },
    [MKG_MV_K2] = { 2, 0, 0xff },       /* AES-XTS-256 */
    [MKG_MV_K3] = { 3, 0, 0xff },       /* no-encrypt */
    [MKG_MV_K5] = { 5, 0, 0xff },       /* cleared */
    [MKG_MV_K9] = { 9, 0, 0xff },       /* cleared, AES-XTS-256 */
    [MKG_MV_CROSS] = { 1, 0, 0xff },
    [MKG_MV_SRC_K2] = { 1, 2, 0xff },
    [MKG_MV_OVER_K2] = { 1, 0, 2 },
    [MKG_MV_A32] = { 0, 0, 0xff },
    [MKG_MV_COMPAT32] = { 0, 0, 0xff },
    [MKG_MV_COMPAT16] = { 0, 0, 0xff },
    [MKG_MV_DIRI32] = { 1, 0, 1 },
    [MKG_MV_DIRI64] = { 2, 0, 2 },
    [MKG_MV_RDX] = { 1, 0, 0xff },
    [MKG_MV_R9] = { 2, 0, 0xff },
};

static inline unsigned long long mkg_mv_dest(unsigned i)
{
    return i == MKG_MV_COMPAT16 ? MKG_MV_PA16 : MKG_PA_MV + i * 0x1000 + 64;
}

static inline unsigned long long mkg_mv_src(unsigned i)
{
    return i == MKG_MV_COMPAT16 ? MKG_MV_SRC16 :
           i == MKG_MV_CROSS ? MKG_PA_MVSRC + 0x1000 - 24 :
           MKG_PA_MVSRC + i * 0x100 + 3;
}

/* Faulting MOVDIR64B/MOVDIRI, MkgResults.mvf[] and mvf_line[] */
enum {
    MKG_MVF_MISALIGNED,     /* destination + 8: #GP(0) */
    MKG_MVF_DEST_UNMAPPED,  /* #PF, error code W */
    MKG_MVF_SRC_UNMAPPED,   /* #PF, error code 0 */
    MKG_MVF_SRC_CROSS,      /* the source's second page unmapped: #PF */
    MKG_MVF_DEST_RO,        /* a read-only mapping: #PF, error code P|W */
    MKG_MVF_REG,            /* a register source: #UD */
    MKG_MVF_LOCK,           /* F0: #UD */
    MKG_MVF_DIRI_REG,       /* MOVDIRI to a register: #UD */
    MKG_NMVF
};
#define MKG_MVF_SRC_CROSS_AT 0x40000000ULL  /* the end of the identity map */

/* One g_pconfig_flags() run */
typedef struct MkgFlags {
    unsigned long long vector;  /* MKG_NO_FAULT or a vector */
    unsigned long long rax;     /* RAX afterwards */
    unsigned long long rflags;  /* RFLAGS & MKG_FLAGS_MASK afterwards */
    unsigned long long setcc;   /* ZF CF SF OF PF by setcc, jz by jcc */
} MkgFlags;

/* PCONFIG cases, MkgResults.pc[] */
enum {
    MKG_PC_NO_TME,          /* no CPUID bit: #UD */
    MKG_PC_BEFORE_ACT,      /* not activated yet: #GP */
    MKG_PC_K1,              /* KeyID 1 SET_KEY_DIRECT AES-XTS-128 */
    MKG_PC_K2,              /* KeyID 2 SET_KEY_DIRECT AES-XTS-256 */
    MKG_PC_K3,              /* KeyID 3 NO_ENCRYPT */
    MKG_PC_K5_SET,          /* KeyID 5 SET_KEY_DIRECT AES-XTS-128 */
    MKG_PC_K5_CLEAR,        /* KeyID 5 CLEAR_KEY */
    MKG_PC_K6_RANDOM,       /* KeyID 6 SET_KEY_RANDOM AES-XTS-128 */
    MKG_PC_K7_RANDOM,       /* KeyID 7 SET_KEY_RANDOM AES-XTS-256 */
    MKG_PC_K8_NOENC,        /* KeyID 8 NO_ENCRYPT, ENC_ALG AES-XTS-256 */
    MKG_PC_K9_SET,          /* KeyID 9 SET_KEY_DIRECT AES-XTS-256 */
    MKG_PC_K9_CLEAR,        /* KeyID 9 CLEAR_KEY, ENC_ALG AES-XTS-256 */
    MKG_PC_K10_REXW,        /* REX.W prefix (ignored): KeyID 10 NO_ENCRYPT */
    MKG_PC_K11_RAXHI,       /* RAX = 0xffffffff00000000: leaf 0, KeyID 11 */
    MKG_PC_LEAF1,           /* EAX = 1: #GP */
    MKG_PC_LEAF2,           /* EAX = 2: #GP */
    MKG_PC_MISALIGNED,      /* RBX + 16: #GP */
    MKG_PC_MISALIGNED_UNMAPPED, /* unmapped + 16: #GP (before the load) */
    MKG_PC_UNMAPPED,        /* unmapped, aligned: #PF */
    MKG_PC_CTRL_RESERVED,   /* KEYID_CTRL bit 24: #GP */
    MKG_PC_CMD4,            /* command 4: #GP */
    MKG_PC_KEYID0,          /* #GP */
    MKG_PC_KEYID64,         /* #GP */
    MKG_PC_KEYID_8001,      /* #GP */
    MKG_PC_ALG0,            /* ENC_ALG 0: #GP */
    MKG_PC_ALG_TWO,         /* bits 8 and 10: #GP */
    MKG_PC_ALG_BIT9,        /* not activated: #GP */
    MKG_PC_CLEAR_ALG0,      /* CLEAR_KEY needs an ENC_ALG too: #GP */
    MKG_PC_NOENC_ALG0,      /* NO_ENCRYPT too: #GP */
    MKG_PC_LOCK,            /* F0 prefix: #UD */
    MKG_PC_REP,             /* F3: #UD */
    MKG_PC_REPNE,           /* F2: #UD */
    MKG_PC_OPSIZE,          /* 66: #UD */
    MKG_PC_CPL3,            /* #UD; value = CS; aux = 1 if it returned */
    MKG_PC_K1_REKEY,        /* KeyID 1 SET_KEY_DIRECT AES-XTS-256 again */
    MKG_NPC
};

/* WRMSR cases, MkgResults.wr[] */
enum {
    MKG_WR_ACT_RESERVED,    /* ACTIVATE | bit 20: #GP */
    MKG_WR_ACT_KEYID7,      /* KEYID_BITS 7 > MAX 6: #GP */
    MKG_WR_ACT_POLICY1,     /* policy 1 not enumerated: #GP */
    MKG_WR_ACT_NOENABLE,    /* KEYID_BITS without enable: #GP */
    MKG_WR_EMASK_HOLE,      /* non-contiguous mask: #GP */
    MKG_WR_EMASK_ABOVE,     /* bit 46: #GP */
    MKG_WR_EBASE_ABOVE,     /* bit 46: #GP */
    MKG_WR_EMASK,           /* MKG_EXCL_MASK: ok */
    MKG_WR_EBASE,           /* MKG_EXCL_BASE: ok */
    MKG_WR_ACT,             /* MKG_ACTIVATE: ok (or #GP with no TME) */
    MKG_WR_ACT_AGAIN,       /* locked: #GP */
    MKG_WR_EMASK_LOCKED,    /* #GP */
    MKG_WR_EBASE_LOCKED,    /* #GP */
    MKG_WR_CAP,             /* read-only: #GP */
    MKG_NWR
};

typedef struct MkgOp {
    unsigned long long vector;  /* MKG_NO_FAULT, MKG_NOT_RUN or a vector */
    unsigned long long value;   /* RDMSR value; PCONFIG RAX afterwards */
    unsigned long long rflags;  /* PCONFIG: RFLAGS & MKG_FLAGS_MASK after */
    unsigned long long aux;
} MkgOp;

typedef struct MkgResults {
    unsigned long long magic;
    unsigned long long done;    /* 0 while running, MKG_DONE_* at the end */
    unsigned long long path;    /* MKG_PATH_* */
    unsigned long long stage;   /* last stage started (for diagnostics) */
    unsigned long long crash_vector, crash_error, crash_rip, crash_cr2;

    unsigned int cpuid7_ecx, cpuid7_edx;
    unsigned int cpuid1b[2][4];         /* sub-leaves 0, 1: EAX EBX ECX EDX */
    unsigned int cpuid80000008_eax, pad0;

    MkgOp msr[4];           /* RDMSR 0x981..0x984 at start */
    MkgOp msr_after[4];     /* ... and after the WRMSR cases */
    MkgOp wr[MKG_NWR];
    MkgOp pc[MKG_NPC];

    /* Exec: W1 window, after the patch, via KeyID'd paging structures */
    MkgOp exec[3];          /* value = %rax returned */
    unsigned long long pd_f_before, pd_f_after;   /* read via KeyID 1 */
    unsigned long long pt_f_before, pt_f_after;   /* read via KeyID 3 */

    unsigned char a_read[MKG_NKID][MKG_LEN_A];  /* PA_A through KeyID k */
    unsigned char a_read5_set[MKG_LEN_A];       /* KeyID 5 before CLEAR */
    unsigned char a_read6_again[MKG_LEN_A];
    unsigned char a_read1_rekey[MKG_LEN_A];
    unsigned char b_read1[MKG_LEN_B], b_read3[MKG_LEN_B];
    unsigned char c_read0[MKG_LEN_C], c_read1[MKG_LEN_C];
    unsigned char c_read3[MKG_LEN_C];
    unsigned char c2_read0[MKG_LEN_C], c2_read2[MKG_LEN_C];
    unsigned char d_read1[MKG_LEN_D];
    unsigned char e_read1[MKG_LEN_E], e_read3[MKG_LEN_E];
    unsigned char f_read1[2][MKG_LEN_F];        /* after F, after F' */
    unsigned char x_read0[64];

    /* PCONFIG's RFLAGS after each flag producer, and alone */
    MkgFlags fp_alone[MKG_NFP], fp_ok[MKG_NFP], fp_gp[MKG_NFP];
    /* ... and with a PCONFIG that fails with status 5 and 2 */
    MkgFlags fp_busy[MKG_NFP], fp_noent[MKG_NFP];
    /* PCONFIG in 64-bit mode with a DS base: RBX, not DS.base + RBX */
    MkgOp pc_ds;
    /* ... in compatibility mode: DS.base + EBX */
    MkgOp pc_ds32;
    /* MOVDIR64B/MOVDIRI: vector; the line through its KeyID, KeyID 0 */
    unsigned long long mv_vector[MKG_NMV];
    unsigned char mv_readk[MKG_NMV][64], mv_read0[MKG_NMV][64];
    MkgOp mvf[MKG_NMVF];    /* value = CR2, aux = error code */
    unsigned char mvf_line[MKG_NMVF][64];   /* after, through KeyID 0 */
    unsigned char mv_decoy[64];             /* MKG_MV_DECOY at the end */
    /* Without CPUID.7.0:ECX[27], [28] (and TME): MOVDIR64B, MOVDIRI */
    MkgOp mv_noenum[2];
} MkgResults;

#endif
