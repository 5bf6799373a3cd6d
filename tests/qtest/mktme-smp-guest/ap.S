/*
 * TME-MK multi-vCPU guest: application processor start-up.
 *
 * The BSP sends INIT-SIPI-SIPI with vector ap_tramp >> 12: each AP
 * starts in real mode at ap_tramp (CS = vector << 8, IP = 0), a 4 KiB
 * aligned page of the image (which boot.S copied to 0x10000, below
 * 1 MiB).  It loads ap_gdt, goes to protected mode, turns on PAE and
 * long mode with the page tables at ap_cr3 (the BSP's), takes the next
 * index in ap_next, its stack in ap_stacks and calls ap_main(index).
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define SEL_CODE32  0x08
#define SEL_DATA    0x10
#define SEL_CODE64  0x18
#define AP_STACK    8192
#define AP_MAX      8       /* MKS_MAX_CPUS */

        .section .text.ap16, "ax"
        .code16
        .balign 4096
        .globl ap_tramp
ap_tramp:
        cli
        cld
        mov     %cs, %ax
        mov     %ax, %ds
        lgdtl   (ap_gdt_desc - ap_tramp)
        mov     %cr0, %eax
        or      $1, %eax
        mov     %eax, %cr0
        ljmpl   $SEL_CODE32, $ap_start32

        .balign 16
ap_gdt:
        .quad   0
        .quad   0x00cf9a000000ffff      /* 0x08 code32 */
        .quad   0x00cf92000000ffff      /* 0x10 data */
        .quad   0x00af9a000000ffff      /* 0x18 code64 */
ap_gdt_end:
        .globl ap_gdt_desc
ap_gdt_desc:
        .word   ap_gdt_end - ap_gdt - 1
        .long   ap_gdt

        .text
        .code32
ap_start32:
        mov     $SEL_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     %cr4, %eax
        or      $0x20, %eax             /* PAE */
        mov     %eax, %cr4
        mov     ap_cr3, %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx       /* EFER.LME */
        rdmsr
        or      $0x100, %eax
        wrmsr
        mov     %cr0, %eax
        or      $0x80000001, %eax
        mov     %eax, %cr0
        ljmp    $SEL_CODE64, $ap_start64

        .code64
ap_start64:
        mov     $SEL_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     %ax, %fs
        mov     %ax, %gs
        mov     $1, %eax
        lock xadd %eax, ap_next(%rip)
        cmp     $AP_MAX, %eax
        jae     2f
        mov     %eax, %edi
        lea     1(%rax), %rdx
        imul    $AP_STACK, %rdx
        lea     ap_stacks(%rip), %rsp
        add     %rdx, %rsp
        call    ap_main
2:      cli
        hlt
        jmp     2b

        .data
        .balign 8
        .globl ap_cr3, ap_next
ap_cr3:         .quad 0         /* CR3 for the APs, below 4 GiB */
ap_next:        .long 1         /* index of the next AP to arrive */

        .bss
        .balign 4096
ap_stacks:      .skip AP_STACK * AP_MAX

        .section .note.GNU-stack, "", @progbits
