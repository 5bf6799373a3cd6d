/*
 * Helpers the freestanding TME-MK guests share: the qtests' test guest
 * (guest.c here), the fuzz guest (../mktme-fuzz-guest), the DMA guest
 * (../mktme-dma-guest) and the bench guest (tests/bench/guest), all on
 * boot.S.  Each guest is one C file plus boot.S and
 * includes this once: it also defines memcpy() and memset(), which GCC
 * may call even with -ffreestanding.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_GUEST_LIB_H
#define MKTME_GUEST_LIB_H

#include <stdint.h>
#include <stddef.h>
#include "boot.h"

#define DEBUG_CONSOLE 0xe9          /* isa-debugcon */

void *memcpy(void *d, const void *s, size_t n)
{
    void *ret = d;

    asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return ret;
}

void *memset(void *d, int c, size_t n)
{
    void *ret = d;

    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return ret;
}

static inline void outb(uint16_t port, uint8_t v)
{
    asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline void puts_dbg(const char *s)
{
    while (*s) {
        outb(DEBUG_CONSOLE, *s++);
    }
}

/* 16 hex digits, no prefix */
static inline void puthex(uint64_t v)
{
    for (int i = 60; i >= 0; i -= 4) {
        outb(DEBUG_CONSOLE, "0123456789abcdef"[(v >> i) & 15]);
    }
}

static inline void putdec(uint64_t v)
{
    char b[21];
    int i = sizeof(b) - 1;

    b[i] = 0;
    do {
        b[--i] = '0' + v % 10;
        v /= 10;
    } while (v);
    puts_dbg(b + i);
}

static inline uint64_t read_cr2(void)
{
    uint64_t v;

    asm volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}

/*
 * Exactly one access of @size bytes (1, 2, 4 or 8), any alignment: one
 * MOV each, so that every access reaches the memory controller as such.
 */
static inline uint64_t ldn(uint64_t va, unsigned size)
{
    uint64_t v = 0;

    switch (size) {
    case 1:
        asm volatile("movzbq (%1), %0" : "=r"(v) : "r"(va) : "memory");
        break;
    case 2:
        asm volatile("movzwq (%1), %0" : "=r"(v) : "r"(va) : "memory");
        break;
    case 4:
        asm volatile("movl (%1), %k0" : "=r"(v) : "r"(va) : "memory");
        break;
    default:
        asm volatile("movq (%1), %0" : "=r"(v) : "r"(va) : "memory");
        break;
    }
    return v;
}

static inline void stn(uint64_t va, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        asm volatile("movb %b0, (%1)" : : "q"(v), "r"(va) : "memory");
        break;
    case 2:
        asm volatile("movw %w0, (%1)" : : "r"(v), "r"(va) : "memory");
        break;
    case 4:
        asm volatile("movl %k0, (%1)" : : "r"(v), "r"(va) : "memory");
        break;
    default:
        asm volatile("movq %0, (%1)" : : "r"(v), "r"(va) : "memory");
        break;
    }
}

/* A 64-bit interrupt gate */
typedef struct __attribute__((packed)) IdtEntry {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, zero;
} IdtEntry;

/*
 * Point @idt's 32 exception vectors at boot.S's stubs (ring 0 gates in
 * code segment 0x18; #DF on IST @df_ist, 0 for none) and load it.
 */
static inline void setup_idt(IdtEntry idt[32], uint8_t df_ist)
{
    struct __attribute__((packed)) {
        uint16_t lim;
        uint64_t base;
    } d = { 32 * sizeof(IdtEntry) - 1, (uint64_t)idt };

    for (int i = 0; i < 32; i++) {
        idt[i] = (IdtEntry) {
            .off0 = isr_table[i], .sel = 0x18, .ist = i == 8 ? df_ist : 0,
            .type = 0x8e, .off1 = isr_table[i] >> 16,
            .off2 = isr_table[i] >> 32,
        };
    }
    asm volatile("lidt %0" : : "m"(d));
}

typedef struct __attribute__((packed)) Tss {
    uint32_t rsvd0;
    uint64_t rsp[3], rsvd1, ist[7], rsvd2;
    uint16_t rsvd3, iomap;
} Tss;

/*
 * Exceptions and ring 3 as the test guests need them: the IDT with #DF
 * on its own stack (IST 1), and a TSS (GDT selector 0x30) with the ring 0
 * stack for faults taken in ring 3.
 */
static inline void setup_ring0(IdtEntry idt[32])
{
    static Tss tss __attribute__((aligned(16)));
    uint64_t base = (uint64_t)&tss, lim = sizeof(tss) - 1;

    setup_idt(idt, 1);
    tss.rsp[0] = (uint64_t)int_stack_top;
    tss.ist[0] = (uint64_t)df_stack_top;
    tss.iomap = sizeof(tss);
    gdt[6] = (lim & 0xffff) | (base & 0xffffff) << 16 | 0x89ULL << 40 |
             ((lim >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
    gdt[7] = base >> 32;
    asm volatile("ltr %w0" : : "r"(0x30));
}

#endif
