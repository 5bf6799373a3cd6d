/*
 * TME-MK bench guest: reset vector, real -> protected -> long mode with
 * 0..1 GiB identity-mapped, and exception stubs that call fatal_fault().
 * Trimmed from tests/qtest/mktme-guest/boot.S: the 64 KiB image is
 * linked at 0x10000; QEMU maps it at 4G - 64K and at 0xf0000, and the
 * reset vector jumps to F000:0000, which copies it to 0x10000.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define SEL_CODE32  0x08
#define SEL_DATA    0x10
#define SEL_CODE64  0x18

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
gdt:
        .quad   0
        .quad   0x00cf9a000000ffff      /* 0x08 code32 */
        .quad   0x00cf92000000ffff      /* 0x10 data */
        .quad   0x00af9a000000ffff      /* 0x18 code64 */
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
        /* Identity map 0..1 GiB with 2 MiB pages */
        mov     $boot_pdpt + 3, %eax
        mov     %eax, boot_pml4
        mov     $boot_pd + 3, %eax
        mov     %eax, boot_pdpt
        xor     %ecx, %ecx
1:      mov     %ecx, %eax
        shl     $21, %eax
        or      $0x83, %eax
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
        .if (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
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
/* Frame: vector, error, rip, cs, rflags, rsp, ss; never returns */
isr_common:
        mov     %rsp, %rdi
        and     $-16, %rsp
        call    fatal_fault
3:      cli
        hlt
        jmp     3b

        .bss
        .balign 4096
        .globl boot_pml4
boot_pml4:      .skip 4096
boot_pdpt:      .skip 4096
boot_pd:        .skip 4096
                .skip 16384
stack_top:

        .section .note.GNU-stack, "", @progbits
