/*
 * TME-MK test guest: reset vector, real -> protected -> long mode,
 * exception stubs and the fault-catching helpers guest.c uses.
 *
 * The 64 KiB image is linked at 0x10000.  QEMU maps it at 4G - 64K and
 * (its last 64 KiB) at 0xf0000; the reset vector jumps to F000:0000,
 * which copies the image to 0x10000 and continues there.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define SEL_CODE32  0x08
#define SEL_DATA    0x10
#define SEL_CODE64  0x18
#define SEL_UDATA   0x23
#define SEL_UCODE   0x2b
#define SEL_TSS     0x30

        .section .boot16, "ax"
        .code16
        .globl _image_start
_image_start:
        cli
        cld
        mov     $0xf000, %ax
        mov     %ax, %ds
        xor     %si, %si
        mov     $0x1000, %ax
        mov     %ax, %es
        xor     %di, %di
        mov     $0x8000, %cx
        rep movsw
        mov     %ax, %ds
        lgdtl   (gdt_desc - _image_start)
        mov     %cr0, %eax
        or      $1, %eax
        mov     %eax, %cr0
        ljmpl   $SEL_CODE32, $start32

        .balign 16
        .globl gdt
gdt:
        .quad   0
        .quad   0x00cf9a000000ffff      /* 0x08 code32 */
        .quad   0x00cf92000000ffff      /* 0x10 data */
        .quad   0x00af9a000000ffff      /* 0x18 code64 */
        .quad   0x00cff2000000ffff      /* 0x20 user data, DPL 3 */
        .quad   0x00affa000000ffff      /* 0x28 user code64, DPL 3 */
        .quad   0, 0                    /* 0x30 TSS, filled by guest.c */
        .quad   0x00cf92010000ffff      /* 0x40 data, base 0x10000 */
gdt_end:
gdt_desc:
        .word   gdt_end - gdt - 1
        .long   gdt

        .section .reset, "ax"
        .code16
        ljmp    $0xf000, $0
        .balign 16, 0xf4

        .text
        .code32
start32:
        mov     $SEL_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     %ax, %fs
        mov     %ax, %gs
        mov     $stack_top, %esp
        mov     $__bss_start, %edi
        mov     $__bss_end, %ecx
        sub     %edi, %ecx
        xor     %eax, %eax
        rep stosb
        /* Identity map 0..1 GiB with 2 MiB pages, user-accessible */
        mov     $boot_pdpt + 7, %eax
        mov     %eax, boot_pml4
        mov     $boot_pd + 7, %eax
        mov     %eax, boot_pdpt
        xor     %ecx, %ecx
1:      mov     %ecx, %eax
        shl     $21, %eax
        or      $0x87, %eax
        mov     %eax, boot_pd(, %ecx, 8)
        inc     %ecx
        cmp     $512, %ecx
        jb      1b
        mov     %cr4, %eax
        or      $0x20, %eax             /* PAE */
        mov     %eax, %cr4
        mov     $boot_pml4, %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx       /* EFER.LME */
        rdmsr
        or      $0x100, %eax
        wrmsr
        mov     %cr0, %eax
        or      $0x80000001, %eax
        mov     %eax, %cr0
        ljmp    $SEL_CODE64, $start64

        .code64
start64:
        mov     $SEL_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     %ax, %fs
        mov     %ax, %gs
        mov     $stack_top, %rsp
        call    guest_main
2:      cli
        hlt
        jmp     2b

/* Exception stubs: push a dummy error code where the CPU pushes none */
        .macro ISR n
isr\n:
        .set has_err, (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17)
        .set has_err, has_err || (\n == 21) || (\n == 29) || (\n == 30)
        .if has_err
        .else
        pushq   $0
        .endif
        pushq   $\n
        jmp     isr_common
        .endm

        .altmacro
        .macro ISRS from, to
        ISR \from
        .if \to - \from
        ISRS %(\from + 1), \to
        .endif
        .endm
        .macro ISRADDR n
        .quad   isr\n
        .endm
        .macro ISRADDRS from, to
        ISRADDR \from
        .if \to - \from
        ISRADDRS %(\from + 1), \to
        .endif
        .endm

        ISRS    0, 31

        .section .rodata
        .balign 8
        .globl isr_table
isr_table:
        ISRADDRS 0, 31
        .noaltmacro

        .text
/*
 * Frame: rax, vector, error, rip, cs, rflags, rsp, ss.
 * If fixup_rip is set, resume there (in ring 0 on saved_ksp if the
 * fault came from ring 3) with fault_vec/fault_err set.
 */
isr_common:
        push    %rax
        mov     fixup_rip(%rip), %rax
        test    %rax, %rax
        jz      3f
        mov     %rax, 24(%rsp)
        movq    $0, fixup_rip(%rip)
        mov     8(%rsp), %rax
        mov     %rax, fault_vec(%rip)
        mov     16(%rsp), %rax
        mov     %rax, fault_err(%rip)
        mov     32(%rsp), %rax
        mov     %rax, fault_cs(%rip)
        testb   $3, 32(%rsp)
        jz      4f
        movq    $SEL_CODE64, 32(%rsp)
        movq    $SEL_DATA, 56(%rsp)
        mov     saved_ksp(%rip), %rax
        mov     %rax, 48(%rsp)
4:      pop     %rax
        add     $16, %rsp
        iretq
3:      mov     %rsp, %rdi
        and     $-16, %rsp
        call    fatal_fault
5:      cli
        hlt
        jmp     5b

        .macro  ARM_FIXUP label
        lea     \label(%rip), %rax
        mov     %rax, fixup_rip(%rip)
        movq    $0xff, fault_vec(%rip)
        .endm

/* uint64_t g_rdmsr(uint32_t msr, uint64_t *val): vector or 0xff */
        .globl g_rdmsr
g_rdmsr:
        ARM_FIXUP 1f
        mov     %edi, %ecx
        rdmsr
        shl     $32, %rdx
        or      %rdx, %rax
        mov     %rax, (%rsi)
        movq    $0, fixup_rip(%rip)
1:      mov     fault_vec(%rip), %rax
        ret

/* uint64_t g_wrmsr(uint32_t msr, uint64_t val) */
        .globl g_wrmsr
g_wrmsr:
        ARM_FIXUP 1f
        mov     %edi, %ecx
        mov     %esi, %eax
        mov     %rsi, %rdx
        shr     $32, %rdx
        wrmsr
        movq    $0, fixup_rip(%rip)
1:      mov     fault_vec(%rip), %rax
        ret

/*
 * uint64_t g_pconfig(uint64_t rax, uint64_t rbx, uint64_t form,
 *                    uint64_t out[2])
 * Runs PCONFIG (form: 0 plain, 1 F0, 2 F3, 3 F2, 4 66, 5 REX.W) with
 * CF PF AF ZF SF OF set; out = { RAX, RFLAGS & 0x8d5 } afterwards.
 */
        .globl g_pconfig
g_pconfig:
        push    %rbx
        push    %r12
        mov     %rcx, %r12
        mov     %rsi, %rbx
        lea     pconfig_forms(%rip), %r9
        mov     (%r9, %rdx, 8), %r9
        ARM_FIXUP 8f
        pushq   $0x8d7
        popfq
        mov     %rdi, %rax
        jmp     *%r9
pc_plain:
        .byte   0x0f, 0x01, 0xc5
        jmp     8f
pc_lock:
        .byte   0xf0, 0x0f, 0x01, 0xc5
        jmp     8f
pc_rep:
        .byte   0xf3, 0x0f, 0x01, 0xc5
        jmp     8f
pc_repne:
        .byte   0xf2, 0x0f, 0x01, 0xc5
        jmp     8f
pc_opsize:
        .byte   0x66, 0x0f, 0x01, 0xc5
        jmp     8f
pc_rexw:
        .byte   0x48, 0x0f, 0x01, 0xc5
8:      pushfq
        pop     %r9
        movq    $0, fixup_rip(%rip)
        and     $0x8d5, %r9
        mov     %rax, (%r12)
        mov     %r9, 8(%r12)
        pop     %r12
        pop     %rbx
        mov     fault_vec(%rip), %rax
        ret

        .section .rodata
        .balign 8
pconfig_forms:
        .quad   pc_plain, pc_lock, pc_rep, pc_repne, pc_opsize, pc_rexw
        .text

/*
 * uint64_t g_pconfig_flags(uint64_t rax, uint64_t rbx, uint64_t producer,
 *                          uint64_t out[3])
 * Runs flag producer @producer & 0xff (MKG_FP_*) and right after it
 * PCONFIG (not with MKG_FP_ALONE), with no popfq between; out = { RAX,
 * RFLAGS & 0x8d5, what setcc and jcc read: ZF CF SF OF PF (bits 0-4),
 * jz taken (bit 5) } afterwards.
 */
        .globl g_pconfig_flags
g_pconfig_flags:
        push    %rbx
        push    %r12
        mov     %rcx, %r12
        mov     %rsi, %rbx
        lea     fp_pconfig(%rip), %r11
        lea     fp_after(%rip), %rcx
        bt      $8, %rdx
        cmovc   %rcx, %r11
        and     $0xff, %edx
        lea     flag_producers(%rip), %r9
        mov     (%r9, %rdx, 8), %r9
        ARM_FIXUP fp_after
        mov     %rdi, %rax
        jmp     *%r9
fp_branch:                              /* a taken branch: ZF PF */
        xor     %r8d, %r8d
        jz      1f
        ud2
1:      jmp     *%r11
fp_add:                                 /* ZF CF PF AF */
        mov     $-1, %r8
        add     $1, %r8
        jmp     *%r11
fp_sub:                                 /* CF SF PF AF */
        xor     %r8d, %r8d
        sub     $1, %r8
        jmp     *%r11
fp_cmp:                                 /* CF SF PF AF */
        xor     %r8d, %r8d
        cmp     $1, %r8
        jmp     *%r11
fp_test:                                /* SF PF */
        movabs  $0x8000000000000000, %r8
        test    %r8, %r8
        jmp     *%r11
fp_and:                                 /* SF PF */
        movabs  $0x8000000000000000, %r8
        and     %r8, %r8
        jmp     *%r11
fp_or:                                  /* ZF PF */
        xor     %r8d, %r8d
        or      %r8, %r8
        jmp     *%r11
fp_xor:                                 /* ZF PF */
        xor     %r8, %r8
        jmp     *%r11
fp_inc:                                 /* OF SF AF PF, CF kept */
        movabs  $0x7fffffffffffffff, %r8
        stc
        inc     %r8
        jmp     *%r11
fp_dec:                                 /* ZF PF, CF kept */
        mov     $1, %r8d
        stc
        dec     %r8
        jmp     *%r11
fp_shl:                                 /* CF ZF PF OF */
        movabs  $0x8000000000000000, %r8
        shl     $1, %r8
        jmp     *%r11
fp_shr:                                 /* CF ZF PF */
        mov     $1, %r8d
        shr     $1, %r8
        jmp     *%r11
fp_mul:                                 /* CF OF */
        movabs  $0x8000000000000000, %r8
        mov     $2, %r9d
        imul    %r9, %r8
        jmp     *%r11
fp_popf_set:                            /* all six */
        pushq   $0x8d7
        popfq
        jmp     *%r11
fp_popf_clear:                          /* none */
        pushq   $0x2
        popfq
        jmp     *%r11
fp_pconfig:
        .byte   0x0f, 0x01, 0xc5
fp_after:
        setz    %r8b
        setc    %r9b
        sets    %r10b
        seto    %dl
        setp    %cl
        mov     $0, %esi
        jnz     2f
        mov     $1, %esi
2:      pushfq
        pop     %rdi
        movq    $0, fixup_rip(%rip)
        and     $0x8d5, %edi
        mov     %rax, (%r12)
        mov     %rdi, 8(%r12)
        movzbl  %r8b, %eax
        movzbl  %r9b, %r9d
        shl     $1, %r9d
        or      %r9d, %eax
        movzbl  %r10b, %r10d
        shl     $2, %r10d
        or      %r10d, %eax
        movzbl  %dl, %edx
        shl     $3, %edx
        or      %edx, %eax
        movzbl  %cl, %ecx
        shl     $4, %ecx
        or      %ecx, %eax
        shl     $5, %esi
        or      %esi, %eax
        mov     %rax, 16(%r12)
        pop     %r12
        pop     %rbx
        mov     fault_vec(%rip), %rax
        ret

        .section .rodata
        .balign 8
flag_producers:
        .quad   fp_branch, fp_add, fp_sub, fp_cmp, fp_test, fp_and, fp_or
        .quad   fp_xor, fp_inc, fp_dec, fp_shl, fp_shr, fp_mul
        .quad   fp_popf_set, fp_popf_clear
        .text

/*
 * uint64_t g_pconfig_compat(uint64_t eax, uint64_t ebx, uint16_t ds,
 *                           uint64_t out[2])
 * PCONFIG in compatibility mode (code segment SEL_CODE32, 32-bit address
 * size) with DS = @ds: out = { RAX, RFLAGS & 0x8d5 }.  Returns
 * MKG_NO_FAULT; a fault there is fatal (the fix-up runs 64-bit code).
 */
        .globl g_pconfig_compat
g_pconfig_compat:
        push    %rbx
        push    %rbp
        mov     %rsp, compat_rsp(%rip)
        mov     %rcx, compat_out(%rip)
        mov     %rdi, %rax
        mov     %rsi, %rbx
        mov     %edx, %ebp
        pushq   $SEL_CODE32
        lea     1f(%rip), %rcx
        push    %rcx
        lretq
        .code32
1:      mov     %bp, %ds
        .byte   0x0f, 0x01, 0xc5        /* pconfig */
        pushfl
        pop     %ecx
        mov     $SEL_DATA, %dx
        mov     %dx, %ds
        pushl   $SEL_CODE64
        pushl   $2f
        lret
        .code64
2:      mov     compat_rsp(%rip), %rsp
        mov     compat_out(%rip), %rdx
        mov     %eax, %eax
        mov     %rax, (%rdx)
        and     $0x8d5, %ecx
        mov     %rcx, 8(%rdx)
        pop     %rbp
        pop     %rbx
        mov     $0xff, %eax             /* MKG_NO_FAULT */
        ret

/*
 * uint64_t g_compat_call(uint32_t fn, uint16_t es): call @fn, 32-bit
 * code below 4 GiB ending with ret, in compatibility mode (code segment
 * SEL_CODE32) with ES = @es.  Returns MKG_NO_FAULT; a fault there is
 * fatal (the fix-up runs 64-bit code).
 */
        .globl g_compat_call
g_compat_call:
        push    %rbx
        push    %rbp
        mov     %rsp, compat_rsp(%rip)
        mov     %edi, %ebx
        mov     %esi, %ebp
        pushq   $SEL_CODE32
        lea     1f(%rip), %rcx
        push    %rcx
        lretq
        .code32
1:      mov     %bp, %es
        call    *%ebx
        mov     $SEL_DATA, %dx
        mov     %dx, %es
        pushl   $SEL_CODE64
        pushl   $2f
        lret
        .code64
2:      mov     compat_rsp(%rip), %rsp
        pop     %rbp
        pop     %rbx
        mov     $0xff, %eax             /* MKG_NO_FAULT */
        ret

/* void g_load_ds(uint16_t sel) */
        .globl g_load_ds
g_load_ds:
        mov     %di, %ds
        ret

/* uint64_t g_call(uint64_t fn, uint64_t *ret): call fn, catch faults */
        .globl g_call
g_call:
        push    %rbx
        push    %rbp
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rsi, %r12
        mov     %rsp, saved_ksp(%rip)
        ARM_FIXUP 8f
        xor     %eax, %eax
        call    *%rdi
        mov     %rax, (%r12)
        movq    $0, fixup_rip(%rip)
8:      mov     saved_ksp(%rip), %rsp
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbp
        pop     %rbx
        mov     fault_vec(%rip), %rax
        ret

/*
 * uint64_t g_user_pconfig(uint64_t rbx): PCONFIG leaf 0 at CPL 3.
 * Returns the vector that brought the CPU back to ring 0; if PCONFIG
 * itself returned, user_returned = 1 and the vector is ud2's #UD.
 */
        .globl g_user_pconfig
g_user_pconfig:
        push    %rbx
        push    %rbp
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rdi, %rbx
        mov     %rsp, saved_ksp(%rip)
        ARM_FIXUP 8f
        pushq   $SEL_UDATA
        lea     user_stack_top(%rip), %rax
        push    %rax
        pushq   $0x2
        pushq   $SEL_UCODE
        lea     user_code(%rip), %rax
        push    %rax
        iretq
user_code:
        xor     %eax, %eax
        .byte   0x0f, 0x01, 0xc5
        movq    $1, user_returned(%rip)
        ud2
8:      mov     saved_ksp(%rip), %rsp
        mov     $SEL_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %fs
        mov     %ax, %gs
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbp
        pop     %rbx
        mov     fault_vec(%rip), %rax
        ret

        .data
        .balign 8
        .globl fault_vec, fault_err, fault_cs, user_returned
fixup_rip:      .quad 0
saved_ksp:      .quad 0
fault_vec:      .quad 0
fault_err:      .quad 0
fault_cs:       .quad 0
user_returned:  .quad 0
compat_rsp:     .quad 0
compat_out:     .quad 0

        .bss
        .balign 4096
        .globl boot_pml4
boot_pml4:      .skip 4096
boot_pdpt:      .skip 4096
boot_pd:        .skip 4096
                .skip 16384
stack_top:
                .skip 4096
user_stack_top:
        .globl int_stack_top, df_stack_top
                .skip 8192
int_stack_top:
                .skip 4096
df_stack_top:

        .section .note.GNU-stack, "", @progbits
