/*
 * The emulated TME-MK memory controller's fast path: plaintext shadows.
 *
 * A page of guest RAM that the vCPU reads, writes or executes through a
 * KeyID whose view differs from KeyID 0's gets a slot: a host page in a
 * pool that holds its plaintext P = D_k(E_0(R)) and that the TLB maps
 * directly (the pool is RAM at MKTME_SHADOW_WINDOW, out of the guest's
 * reach).  R -- the RAM block, what KeyID 0, DMA, migration and pmemsave
 * see -- and the slot are kept coherent with host page protections, a
 * small MSI protocol per page:
 *
 *   INVALID   slot stale              slot PROT_NONE,   R read/write
 *   SHARED    slot == D_k(E_0(R))     slot read-only,   R read-only
 *   MODIFIED  slot newer than R       slot read/write,  R PROT_NONE
 *
 * A page gets its slot when the vCPU's TLB first maps it (filled from R,
 * R taken away: MODIFIED).  Then the SIGSEGV handler below runs the
 * protocol in whichever thread touches the page: a fault on R writes a
 * modified slot back, R := D_0(E_k(P)), and leaves both readable for a
 * read (SHARED) or takes the slot away for a write (INVALID); a fault on
 * the slot fills it again or takes R away.  R is read and written through
 * /proc/self/mem, so it is never readable while stale.  Nothing in QEMU
 * needs to know: every access to R, from any thread, is either allowed by
 * the host MMU or comes here first.
 *
 * The handler only does crypto, copies and mprotect().  What touches TCG
 * state runs in the vCPU thread: slots are assigned by the IOMMU translate
 * callback of a TLB fill (mktme_shadow_get), and taken back by reaping
 * (async work on the vCPU: flush its TLB, write back, drop translated
 * code).  Translated code and shadows do not mix: a page whose R or slot
 * gets its first TB leaves the fast path (TCG reports it through the
 * tlb_protect_code notifier), so no TB survives a change made to its page
 * behind TCG's back; that page's later accesses through the KeyID take
 * the line-by-line crypto region, instruction fetch included.
 *
 * Conditions (else every such access takes the crypto region): TCG, one
 * vCPU (another vCPU's TLB could not be flushed synchronously), a Linux
 * host with 4 KiB pages and a usable /proc/self/mem.  The pool is sized by
 * the mktme-guest shadow-size property and by the host's vm.max_map_count
 * (each slot may split up to three mappings).  A system call that reads or
 * writes a protected R page (block I/O straight into guest RAM) fails
 * with EFAULT rather than faulting, so slots are dropped when the VM stops
 * or migrates; a guest that does device I/O into a page while it uses the
 * page through another KeyID can see that I/O fail.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include <ucontext.h>
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "exec/address-spaces.h"
#include "exec/cputlb.h"
#include "exec/exec-all.h"
#include "exec/ram_addr.h"
#include "exec/ramblock.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "migration/misc.h"
#include "system/runstate.h"
#include "mktme.h"
#include "trace.h"

#define SHADOW_PAGE TARGET_PAGE_SIZE
#define SHADOW_LINES (SHADOW_PAGE / MKTME_LINE_SIZE)

enum {
    SLOT_FREE,
    SLOT_INVALID,
    SLOT_SHARED,
    SLOT_MODIFIED,
};

/*
 * The TLB fill's index, read on every fill: open addressing, one
 * 16-byte entry per probe, the clock bit beside the slot number.
 */
typedef struct MktmePaEntry {
    uint64_t key;               /* page number << 16 | KeyID; 0: empty */
    int32_t slot;
    bool ref;                   /* clock bit for eviction */
} MktmePaEntry;

typedef struct MktmeSlot {
    uint8_t *r;                 /* R's host page; NULL: free */
    ram_addr_t r_ram;           /* R's ram_addr_t */
    hwaddr pa;                  /* guest physical page, no KeyID bits */
    const MktmeXtsKey *c0;      /* KeyID 0's cipher here; NULL: plaintext */
    const MktmeXtsKey *ck;      /* the KeyID's cipher; NULL: plaintext */
    int32_t next_r;             /* hash chain of hash_r, -1 ends */
    uint16_t keyid;
    uint8_t state;
    uint8_t slot_prot;          /* current protection of the slot's page */
    uint8_t r_prot;             /* ... and of R's (while assigned) */
    bool zombie;                /* leaving: no new TLB entries, reaped soon */
    bool wrote;                 /* written back at least once */
} MktmeSlot;

struct MktmeShadow {
    MemoryRegion mr;            /* the pool, at MKTME_SHADOW_WINDOW */
    uint8_t *guest;             /* the pool as the TLB maps it */
    uint8_t *eng;               /* the same pages, always read/write */
    size_t size;
    int memfd;
    int self_mem;               /* /proc/self/mem */
    ram_addr_t pool_ram;
    uint32_t nr_slots;
    uint32_t used;              /* assigned slots, zombies included */
    uint32_t hand;              /* clock hand */
    unsigned hash_shift;        /* 64 - log2(buckets) */
    MktmePaEntry *pa_index;     /* (page, KeyID) -> live slot */
    int32_t *hash_r;            /* R's host page -> slot, zombies too */
    int32_t *free;              /* stack of free slots */
    uint32_t nr_free;
    int32_t *live;              /* assigned slots, zombies included */
    MktmeSlot *slots;
    GHashTable *barred;         /* pages kept off the fast path ... */
    uint64_t assigns;           /* ... for nr_slots assigns after this */
    uint64_t fills;             /* counters for query-mktme, under lock */
    uint64_t write_backs;
    bool reap_pending;
    bool disabled;              /* migration in progress */
    NotifierWithReturn migration;
    VMChangeStateEntry *vmstate;
    QemuSpin lock;              /* slots and hashes; taken by the handler */
    uint8_t bounce[SHADOW_PAGE];    /* write-back buffer, under lock */
};

static MktmeShadow *shadow_global;
static struct sigaction shadow_prev_sigsegv;

/*
 * The handler runs in signal context: no allocation, no locks but ours
 * (never held by a thread while it touches guest memory), no QEMU
 * reporting.  A failure here leaves guest memory inconsistent: abort.
 */
static void G_NORETURN shadow_die(const char *msg)
{
    static const char pfx[] = "mktme-shadow: ";

    if (write(STDERR_FILENO, pfx, sizeof(pfx) - 1) < 0 ||
        write(STDERR_FILENO, msg, strlen(msg)) < 0 ||
        write(STDERR_FILENO, "\n", 1) < 0) {
        /* nothing more to say */
    }
    abort();
}

static void shadow_protect(void *p, int prot)
{
    if (mprotect(p, SHADOW_PAGE, prot) != 0) {
        shadow_die("mprotect failed (vm.max_map_count?)");
    }
}

#define PROT_RW (PROT_READ | PROT_WRITE)

/*
 * A fault the state allows: another thread resolved it first, and the
 * access will succeed when retried.  Apply the protection we recorded
 * anyway, so that a mismatch could never make the access fault forever.
 */
static void shadow_heal(void *p, int prot)
{
    shadow_protect(p, prot);
}

static inline uint8_t *slot_guest(MktmeShadow *sh, MktmeSlot *s)
{
    return sh->guest + (size_t)(s - sh->slots) * SHADOW_PAGE;
}

/* Protection changes, skipping those that change nothing. */
static void set_slot_prot(MktmeShadow *sh, MktmeSlot *s, int prot)
{
    if (s->slot_prot != prot) {
        shadow_protect(slot_guest(sh, s), prot);
        s->slot_prot = prot;
    }
}

static void set_r_prot(MktmeSlot *s, int prot)
{
    if (s->r_prot != prot) {
        shadow_protect(s->r, prot);
        s->r_prot = prot;
    }
}

static inline uint8_t *slot_eng(MktmeShadow *sh, MktmeSlot *s)
{
    return sh->eng + (size_t)(s - sh->slots) * SHADOW_PAGE;
}

/* Fibonacci hashing of a page address: the product's top bits */
static inline uint32_t hash_ptr(MktmeShadow *sh, uintptr_t v)
{
    return ((uint64_t)(v >> TARGET_PAGE_BITS) * 0x9e3779b97f4a7c15ULL) >>
           sh->hash_shift;
}

/* Slot of R page @r (zombies included), or NULL.  Under the lock. */
static MktmeSlot *shadow_find_r(MktmeShadow *sh, const uint8_t *r)
{
    for (int32_t i = sh->hash_r[hash_ptr(sh, (uintptr_t)r)]; i >= 0;
         i = sh->slots[i].next_r) {
        if (sh->slots[i].r == r) {
            return &sh->slots[i];
        }
    }
    return NULL;
}

static inline uint64_t pa_key(hwaddr pa, uint16_t keyid)
{
    return (pa >> TARGET_PAGE_BITS) << 16 | keyid;
}

/* The index and hash_r have 2^(64 - hash_shift) buckets. */
static inline uint32_t pa_mask(MktmeShadow *sh)
{
    return (1u << (64 - sh->hash_shift)) - 1;
}

/*
 * A page's home bucket is its page number: neighbouring pages share cache
 * lines, which matters for a loop over a buffer (each TLB fill looks up
 * the next page).
 */
static inline uint32_t pa_home(MktmeShadow *sh, uint64_t key)
{
    return (key >> 16) & pa_mask(sh);
}

/* Entry of (@pa, @keyid) in the index, or of the empty bucket to use. */
static MktmePaEntry *pa_lookup(MktmeShadow *sh, uint64_t key)
{
    uint32_t mask = pa_mask(sh);
    uint32_t i = pa_home(sh, key);

    while (sh->pa_index[i].key && sh->pa_index[i].key != key) {
        i = (i + 1) & mask;
    }
    return &sh->pa_index[i];
}

/* Remove @e from the index, shifting back the entries probed past it. */
static void pa_remove(MktmeShadow *sh, MktmePaEntry *e)
{
    uint32_t mask = pa_mask(sh);
    uint32_t hole = e - sh->pa_index, i = hole;

    assert(e->key);
    for (;;) {
        MktmePaEntry *c;
        uint32_t home;

        i = (i + 1) & mask;
        c = &sh->pa_index[i];
        if (!c->key) {
            break;
        }
        home = pa_home(sh, c->key);
        /* Move c into the hole unless its home lies in (hole, i]. */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            sh->pa_index[hole] = *c;
            hole = i;
        }
    }
    sh->pa_index[hole] = (MktmePaEntry) { 0 };
}

static void shadow_unlink(int32_t *head, MktmeSlot *slots, int32_t idx)
{
    int32_t *pp = head;

    while (*pp >= 0) {
        int32_t *next = &slots[*pp].next_r;

        if (*pp == idx) {
            *pp = *next;
            return;
        }
        pp = next;
    }
}

/* The slot's view from R: slot := D_k(E_0(R)), whatever R's protection. */
static void shadow_fill(MktmeShadow *sh, MktmeSlot *s)
{
    uint8_t *p = slot_eng(sh, s);

    sh->fills++;
    if (pread(sh->self_mem, p, SHADOW_PAGE, (off_t)(uintptr_t)s->r) !=
        SHADOW_PAGE) {
        shadow_die("cannot read guest RAM through /proc/self/mem");
    }
    if (s->c0) {
        mktme_xts_encrypt_lines(s->c0, s->pa, p, p, SHADOW_LINES);
    }
    if (s->ck) {
        mktme_xts_decrypt_lines(s->ck, s->pa, p, p, SHADOW_LINES);
    }
}

/* R := D_0(E_k(slot)), whatever R's protection. */
static void shadow_write_back(MktmeShadow *sh, MktmeSlot *s)
{
    uint8_t *b = sh->bounce;

    memcpy(b, slot_eng(sh, s), SHADOW_PAGE);
    if (s->ck) {
        mktme_xts_encrypt_lines(s->ck, s->pa, b, b, SHADOW_LINES);
    }
    if (s->c0) {
        mktme_xts_decrypt_lines(s->c0, s->pa, b, b, SHADOW_LINES);
    }
    if (pwrite(sh->self_mem, b, SHADOW_PAGE, (off_t)(uintptr_t)s->r) !=
        SHADOW_PAGE) {
        shadow_die("cannot write guest RAM through /proc/self/mem");
    }
    mktme_wipe(b, SHADOW_PAGE);
    s->wrote = true;
    sh->write_backs++;
}

/*
 * Access to the slot itself.  Under the lock.  A fill takes the page
 * exclusive (MODIFIED) even for a read: pages used through a KeyID are
 * mostly written through it too, and writing back an unmodified shadow
 * gives R back exactly.  R goes first, so that its other users wait for
 * us before the slot changes.
 */
static void shadow_slot_fault(MktmeShadow *sh, MktmeSlot *s, bool write)
{
    switch (s->state) {
    case SLOT_INVALID:
        set_r_prot(s, PROT_NONE);
        shadow_fill(sh, s);
        set_slot_prot(sh, s, PROT_RW);
        s->state = SLOT_MODIFIED;
        break;
    case SLOT_SHARED:
        if (write) {
            set_r_prot(s, PROT_NONE);
            set_slot_prot(sh, s, PROT_RW);
            s->state = SLOT_MODIFIED;
        } else {
            shadow_heal(slot_guest(sh, s), s->slot_prot);
        }
        break;
    case SLOT_MODIFIED:
        shadow_heal(slot_guest(sh, s), s->slot_prot);
        break;
    }
}

/* Access to R.  Under the lock. */
static void shadow_r_fault(MktmeShadow *sh, MktmeSlot *s, bool write)
{
    switch (s->state) {
    case SLOT_INVALID:
        shadow_heal(s->r, s->r_prot);
        break;
    case SLOT_SHARED:
        if (write) {
            set_slot_prot(sh, s, PROT_NONE);
            set_r_prot(s, PROT_RW);
            s->state = SLOT_INVALID;
        } else {
            shadow_heal(s->r, s->r_prot);
        }
        break;
    case SLOT_MODIFIED:
        /* Stop the slot's writers first: they wait for us, then refault. */
        set_slot_prot(sh, s, write ? PROT_NONE : PROT_READ);
        shadow_write_back(sh, s);
        set_r_prot(s, write ? PROT_RW : PROT_READ);
        s->state = write ? SLOT_INVALID : SLOT_SHARED;
        break;
    }
}

/*
 * A zombie leaves, after the TLB flush: R current and read/write.  The
 * slot keeps its protection (nothing maps it; the next owner sets it).
 * Under the lock.
 */
static void shadow_settle(MktmeShadow *sh, MktmeSlot *s)
{
    if (s->state == SLOT_MODIFIED) {
        shadow_write_back(sh, s);
    }
    set_r_prot(s, PROT_RW);
}

/* Is host address @a a page of ours?  Resolve the fault if so. */
static bool shadow_fault(MktmeShadow *sh, uint8_t *a, bool write)
{
    uint8_t *page = (uint8_t *)((uintptr_t)a & TARGET_PAGE_MASK);
    MktmeSlot *s;
    bool ours = false;

    qemu_spin_lock(&sh->lock);
    if (page >= sh->guest && page < sh->guest + sh->size) {
        s = &sh->slots[(page - sh->guest) / SHADOW_PAGE];
        if (s->state != SLOT_FREE) {
            shadow_slot_fault(sh, s, write);
            ours = true;
        }
    } else {
        s = shadow_find_r(sh, page);
        if (s) {
            shadow_r_fault(sh, s, write);
            ours = true;
        }
    }
    qemu_spin_unlock(&sh->lock);
    return ours;
}

static bool shadow_fault_is_write(void *uc)
{
#if defined(__linux__) && defined(__x86_64__)
    /* The page-fault error code: bit 1 is W/R. */
    return ((ucontext_t *)uc)->uc_mcontext.gregs[REG_ERR] & 2;
#else
    return true;    /* treat as a write: correct, only slower */
#endif
}

static void shadow_sigsegv(int sig, siginfo_t *si, void *uc)
{
    MktmeShadow *sh = qatomic_read(&shadow_global);

    if (sh && shadow_fault(sh, si->si_addr, shadow_fault_is_write(uc))) {
        return;     /* the access is retried */
    }
    if (shadow_prev_sigsegv.sa_flags & SA_SIGINFO) {
        shadow_prev_sigsegv.sa_sigaction(sig, si, uc);
    } else if (shadow_prev_sigsegv.sa_handler != SIG_DFL &&
               shadow_prev_sigsegv.sa_handler != SIG_IGN) {
        shadow_prev_sigsegv.sa_handler(sig);
    } else {
        /* Not ours: die as we would have without this handler. */
        signal(SIGSEGV, SIG_DFL);
    }
}

/*
 * Reaping, in the vCPU thread (or with the vCPU stopped): flush the TLB,
 * so that no entry maps a zombie, then write zombies back and free them,
 * and drop translated code that may have seen their pages change.
 */
static void shadow_reap(CPUState *cs, run_on_cpu_data data)
{
    MktmeShadow *sh = data.host_ptr;
    g_autoptr(GArray) code = g_array_new(false, false, sizeof(ram_addr_t));
    unsigned reaped = 0;

    tlb_flush(cs);
    qemu_spin_lock(&sh->lock);
    sh->reap_pending = false;
    /* Downwards: a slot moved into a freed place was already seen. */
    for (uint32_t n = sh->used; n-- > 0;) {
        uint32_t i = sh->live[n];
        MktmeSlot *s = &sh->slots[i];
        ram_addr_t slot_ram = sh->pool_ram + (ram_addr_t)i * SHADOW_PAGE;

        if (!s->zombie) {
            continue;
        }
        shadow_settle(sh, s);
        if (s->wrote &&
            !cpu_physical_memory_get_dirty_flag(s->r_ram, DIRTY_MEMORY_CODE)) {
            g_array_append_val(code, s->r_ram);
        }
        if (!cpu_physical_memory_get_dirty_flag(slot_ram, DIRTY_MEMORY_CODE)) {
            g_array_append_val(code, slot_ram);
        }
        shadow_unlink(&sh->hash_r[hash_ptr(sh, (uintptr_t)s->r)], sh->slots,
                      i);
        *s = (MktmeSlot) { .state = SLOT_FREE, .next_r = -1,
                           .slot_prot = s->slot_prot };
        sh->free[sh->nr_free++] = i;
        sh->live[n] = sh->live[sh->used - 1];
        qatomic_set(&sh->used, sh->used - 1);
        reaped++;
    }
    qemu_spin_unlock(&sh->lock);
    for (guint i = 0; i < code->len; i++) {
        ram_addr_t a = g_array_index(code, ram_addr_t, i);

        tb_invalidate_phys_range(a, a + SHADOW_PAGE - 1);
    }
    trace_mktme_shadow_reap(reaped, code->len, sh->used);
}

static void shadow_request_reap(MktmeShadow *sh)
{
    if (!sh->reap_pending) {
        sh->reap_pending = true;
        async_run_on_cpu(first_cpu, shadow_reap, RUN_ON_CPU_HOST_PTR(sh));
    }
}

/* Zombify a live slot: out of the index, reaped soon.  Under the lock. */
static void shadow_retire(MktmeShadow *sh, MktmeSlot *s)
{
    if (s->state != SLOT_FREE && !s->zombie) {
        s->zombie = true;
        pa_remove(sh, pa_lookup(sh, pa_key(s->pa, s->keyid)));
    }
}

/* Clock: retire up to @n slots not used since the hand last passed. */
static void shadow_evict(MktmeShadow *sh, uint32_t n)
{
    for (uint32_t scanned = 0; n && scanned < 2 * sh->nr_slots; scanned++) {
        MktmeSlot *s = &sh->slots[sh->hand];
        MktmePaEntry *e;

        sh->hand = (sh->hand + 1) % sh->nr_slots;
        if (s->state == SLOT_FREE || s->zombie) {
            continue;
        }
        e = pa_lookup(sh, pa_key(s->pa, s->keyid));
        if (e->ref) {
            e->ref = false;
            continue;
        }
        shadow_retire(sh, s);
        n--;
    }
}

/*
 * Keep page @pa off the fast path for a while: it holds translated code,
 * or it is used through two KeyIDs at once (each switch would cost a TLB
 * flush).  The bar lifts after as many assignments as there are slots,
 * and at every key change.
 */
static void shadow_bar(MktmeShadow *sh, hwaddr pa)
{
    g_hash_table_insert(sh->barred, (gpointer)(uintptr_t)pa,
                        (gpointer)(uintptr_t)(sh->assigns + 1));
}

static bool shadow_barred(MktmeShadow *sh, hwaddr pa)
{
    uintptr_t since = (uintptr_t)g_hash_table_lookup(sh->barred,
                                                     (gpointer)(uintptr_t)pa);

    if (!since) {
        return false;
    }
    if (sh->assigns + 1 - since < sh->nr_slots) {
        return true;
    }
    g_hash_table_remove(sh->barred, (gpointer)(uintptr_t)pa);
    return false;
}

/* TCG created the first TB on RAM page @ram: keep it off the fast path. */
static void shadow_code_page(ram_addr_t ram)
{
    MktmeShadow *sh = qatomic_read(&shadow_global);
    MktmeSlot *s = NULL;

    if (!sh || !qatomic_read(&sh->used)) {
        return;
    }
    ram &= TARGET_PAGE_MASK;
    if (ram >= sh->pool_ram && ram < sh->pool_ram + sh->size) {
        qemu_spin_lock(&sh->lock);
        s = &sh->slots[(ram - sh->pool_ram) / SHADOW_PAGE];
    } else {
        uint8_t *r = qemu_map_ram_ptr(NULL, ram);

        qemu_spin_lock(&sh->lock);
        s = shadow_find_r(sh, r);
    }
    if (s && (s->state == SLOT_FREE || s->zombie)) {
        s = NULL;
    }
    if (s) {
        shadow_retire(sh, s);
    }
    qemu_spin_unlock(&sh->lock);
    if (s) {
        trace_mktme_shadow_code(s->pa, s->keyid);
        shadow_bar(sh, s->pa);
        shadow_request_reap(sh);
    }
}

/*
 * Lock-free: the hashes and zombie flags change only in the vCPU thread
 * (or while it is stopped), which is where this runs; other threads
 * (the fault handler) only read them, under the lock.
 */
int64_t mktme_shadow_find(MktmeShadow *sh, hwaddr pa, uint16_t keyid)
{
    MktmePaEntry *e;

    if (!sh->used) {
        return -1;
    }
    e = pa_lookup(sh, pa_key(pa, keyid));
    if (!e->key) {
        return -1;
    }
    e->ref = true;
    return e->slot;
}

bool mktme_shadow_usable(MktmeShadow *sh, IOMMUAccessFlags flag)
{
    /*
     * TCG's TLB fills ask with IOMMU_NONE; anything else (DMA, monitor,
     * address_space_map) may keep the pointer: give it the crypto region.
     */
    return sh && !sh->disabled && flag == IOMMU_NONE && current_cpu;
}

bool mktme_shadow_page(MktmeShadow *sh, hwaddr pa, MktmeShadowPage *pg)
{
    MemoryRegionSection sec;
    bool ok;

    pa &= TARGET_PAGE_MASK;
    if (shadow_barred(sh, pa)) {
        return false;
    }
    sec = memory_region_find(get_system_memory(), pa, SHADOW_PAGE);
    ok = sec.mr && sec.size == SHADOW_PAGE && memory_region_is_ram(sec.mr) &&
         !memory_region_is_ram_device(sec.mr) && !sec.mr->readonly &&
         !memory_region_is_rom(sec.mr) && sec.mr->ram_block &&
         qemu_ram_pagesize(sec.mr->ram_block) == SHADOW_PAGE;
    if (ok) {
        pg->r = (uint8_t *)memory_region_get_ram_ptr(sec.mr) +
                sec.offset_within_region;
        pg->r_ram = memory_region_get_ram_addr(sec.mr) +
                    sec.offset_within_region;
        /* Translated code on the page: it must see every change. */
        ok = cpu_physical_memory_get_dirty_flag(pg->r_ram, DIRTY_MEMORY_CODE);
        if (!ok) {
            shadow_bar(sh, pa);
        }
    }
    if (sec.mr) {
        memory_region_unref(sec.mr);
    }
    return ok;
}

int64_t mktme_shadow_assign(MktmeShadow *sh, hwaddr pa, uint16_t keyid,
                            const MktmeShadowPage *pg,
                            const MktmeXtsKey *c0, const MktmeXtsKey *ck)
{
    uint8_t *r = pg->r;
    MktmeSlot *s;

    pa &= TARGET_PAGE_MASK;
    qemu_spin_lock(&sh->lock);
    s = shadow_find_r(sh, r);
    if (s) {
        /* The page has a slot for another KeyID (or one leaving). */
        shadow_retire(sh, s);
        s = NULL;
        qemu_spin_unlock(&sh->lock);
        shadow_bar(sh, pa);
        shadow_request_reap(sh);
        return -1;
    }
    if (!sh->nr_free) {
        shadow_evict(sh, MAX(sh->nr_slots / 16, 1));
        goto reap;
    }
    s = &sh->slots[sh->free[--sh->nr_free]];
    assert(s->state == SLOT_FREE);
    *s = (MktmeSlot) {
        .r = r, .r_ram = pg->r_ram, .pa = pa, .c0 = c0, .ck = ck,
        .keyid = keyid, .state = SLOT_INVALID,
        .slot_prot = s->slot_prot, .r_prot = PROT_RW,
        .next_r = sh->hash_r[hash_ptr(sh, (uintptr_t)r)],
    };
    sh->live[sh->used] = s - sh->slots;
    *pa_lookup(sh, pa_key(pa, keyid)) = (MktmePaEntry) {
        .key = pa_key(pa, keyid), .slot = s - sh->slots, .ref = true,
    };
    sh->hash_r[hash_ptr(sh, (uintptr_t)r)] = s - sh->slots;
    qatomic_set(&sh->used, sh->used + 1);
    sh->assigns++;
    /* Fill it now rather than on the first access: no fault. */
    shadow_slot_fault(sh, s, true);
    qemu_spin_unlock(&sh->lock);
    trace_mktme_shadow_assign(pa, keyid, (uint32_t)(s - sh->slots));
    return s - sh->slots;

reap:
    qemu_spin_unlock(&sh->lock);
    shadow_request_reap(sh);
    return -1;
}

static void shadow_flush_work(CPUState *cs, run_on_cpu_data data)
{
    MktmeShadow *sh = data.host_ptr;

    g_autofree MktmePaEntry **entries = g_new(MktmePaEntry *, sh->used);
    uint32_t n_entries = 0;

    /*
     * Every slot goes, so the index ends empty: find all entries first,
     * then clear them, rather than shifting entries about one by one.
     */
    qemu_spin_lock(&sh->lock);
    for (uint32_t n = 0; n < sh->used; n++) {
        MktmeSlot *s = &sh->slots[sh->live[n]];

        if (!s->zombie) {
            entries[n_entries++] = pa_lookup(sh, pa_key(s->pa, s->keyid));
            s->zombie = true;
        }
    }
    for (uint32_t n = 0; n < n_entries; n++) {
        *entries[n] = (MktmePaEntry) { 0 };
    }
    qemu_spin_unlock(&sh->lock);
    g_hash_table_remove_all(sh->barred);
    shadow_reap(cs, data);
}

void mktme_shadow_flush(MktmeShadow *sh)
{
    CPUState *cs = first_cpu;

    if (!sh || !cs) {
        return;
    }
    if (current_cpu == cs || cpu_is_stopped(cs)) {
        shadow_flush_work(cs, RUN_ON_CPU_HOST_PTR(sh));
    } else {
        run_on_cpu(cs, shadow_flush_work, RUN_ON_CPU_HOST_PTR(sh));
    }
}

static int shadow_migration(NotifierWithReturn *n, MigrationEvent *e,
                            Error **errp)
{
    MktmeShadow *sh = container_of(n, MktmeShadow, migration);

    /* Migration sends R with system calls and tracks writes to it. */
    sh->disabled = e->type == MIG_EVENT_PRECOPY_SETUP;
    if (sh->disabled) {
        mktme_shadow_flush(sh);
    }
    return 0;
}

static void shadow_vm_state(void *opaque, bool running, RunState state)
{
    if (!running) {
        /* Snapshots and dumps write R out with system calls. */
        mktme_shadow_flush(opaque);
    }
}

/* How many slots the host's mapping limit allows, or 0. */
static uint32_t shadow_map_budget(void)
{
    g_autofree char *max = NULL, *maps = NULL;
    uint64_t limit, used = 0;

    if (!g_file_get_contents("/proc/sys/vm/max_map_count", &max, NULL, NULL) ||
        !g_file_get_contents("/proc/self/maps", &maps, NULL, NULL)) {
        return 0;
    }
    limit = g_ascii_strtoull(max, NULL, 10);
    for (const char *c = maps; *c; c++) {
        used += *c == '\n';
    }
    /* Leave QEMU room to grow; each slot may cost three mappings. */
    if (limit < used + 8192) {
        return 0;
    }
    return (limit - used - 8192) / 3;
}

/* Can we write a PROT_NONE private page through /proc/self/mem? */
static int shadow_open_self_mem(void)
{
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    uint8_t *p = mmap(NULL, SHADOW_PAGE, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t v = 0x5a;
    bool ok;

    if (p == MAP_FAILED) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    ok = fd >= 0 && pwrite(fd, &v, 1, (off_t)(uintptr_t)p) == 1 &&
         mprotect(p, SHADOW_PAGE, PROT_READ) == 0 && p[0] == 0x5a;
    munmap(p, SHADOW_PAGE);
    if (!ok && fd >= 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

MktmeShadow *mktme_shadow_new(MktmeGuest *mg, uint64_t size, char **why)
{
    MachineState *ms = MACHINE(qdev_get_machine());
    struct sigaction sa = {
        .sa_sigaction = shadow_sigsegv,
        .sa_flags = SA_SIGINFO,
    };
    MktmeShadow *sh;
    uint32_t slots = size / SHADOW_PAGE, budget, buckets;
    int self_mem;

    if (!slots) {
        *why = g_strdup("shadow-size=0");
        return NULL;
    }
    if (ms->smp.max_cpus != 1) {
        *why = g_strdup("more than one vCPU");
        return NULL;
    }
    if (qemu_real_host_page_size() != SHADOW_PAGE) {
        *why = g_strdup("host pages are not 4 KiB");
        return NULL;
    }
    budget = shadow_map_budget();
    if (budget < 64) {
        *why = g_strdup("vm.max_map_count leaves no room");
        return NULL;
    }
    if (slots > budget && size != MKTME_SHADOW_SIZE_DEFAULT) {
        warn_report("mktme-guest: shadow-size limited to %" PRIu64 " MiB by "
                    "vm.max_map_count", (uint64_t)budget * SHADOW_PAGE / MiB);
    }
    slots = MIN(slots, budget);
    self_mem = shadow_open_self_mem();
    if (self_mem < 0) {
        *why = g_strdup("/proc/self/mem cannot write protected pages");
        return NULL;
    }

    sh = g_new0(MktmeShadow, 1);
    sh->self_mem = self_mem;
    sh->nr_slots = slots;
    sh->size = (size_t)slots * SHADOW_PAGE;
    sh->memfd = memfd_create("mktme-shadow", MFD_CLOEXEC);
    if (sh->memfd < 0 || ftruncate(sh->memfd, sh->size) < 0) {
        *why = g_strdup_printf("memfd: %s", strerror(errno));
        goto fail;
    }
    sh->guest = mmap(NULL, sh->size, PROT_NONE, MAP_SHARED, sh->memfd, 0);
    sh->eng = mmap(NULL, sh->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   sh->memfd, 0);
    if (sh->guest == MAP_FAILED || sh->eng == MAP_FAILED) {
        *why = g_strdup_printf("mmap: %s", strerror(errno));
        goto fail;
    }
    sh->slots = g_new(MktmeSlot, slots);
    sh->free = g_new(int32_t, slots);
    sh->live = g_new(int32_t, slots);
    for (uint32_t i = 0; i < slots; i++) {
        sh->slots[i] = (MktmeSlot) { .state = SLOT_FREE, .next_r = -1 };
        sh->free[i] = slots - 1 - i;    /* slot 0 first */
    }
    sh->nr_free = slots;
    buckets = pow2ceil(slots * 2);
    sh->hash_shift = 64 - ctz32(buckets);
    sh->pa_index = g_new0(MktmePaEntry, buckets);
    sh->hash_r = g_new(int32_t, buckets);
    memset(sh->hash_r, -1, buckets * sizeof(int32_t));
    sh->barred = g_hash_table_new(NULL, NULL);
    qemu_spin_init(&sh->lock);

    /*
     * A RAM device: TCG maps it like RAM, but it is not guest memory, so
     * dumps, migration and the RAM block notifiers leave it alone.
     */
    memory_region_init_ram_device_ptr(&sh->mr, OBJECT(mg), "mktme-shadow",
                                      sh->size, sh->guest);
    memory_region_add_subregion(get_system_memory(), MKTME_SHADOW_WINDOW,
                                &sh->mr);
    sh->pool_ram = memory_region_get_ram_addr(&sh->mr);

    sigaction(SIGSEGV, &sa, &shadow_prev_sigsegv);
    qatomic_set(&shadow_global, sh);
    tlb_set_protect_code_notify(shadow_code_page);
    migration_add_notifier(&sh->migration, shadow_migration);
    sh->vmstate = qemu_add_vm_change_state_handler(shadow_vm_state, sh);
    trace_mktme_shadow_init(slots, (uint64_t)sh->size);
    return sh;

fail:
    if (sh->guest && sh->guest != MAP_FAILED) {
        munmap(sh->guest, sh->size);
    }
    if (sh->eng && sh->eng != MAP_FAILED) {
        munmap(sh->eng, sh->size);
    }
    if (sh->memfd >= 0) {
        close(sh->memfd);
    }
    close(self_mem);
    g_free(sh);
    return NULL;
}

/*
 * Write every slot back and stop handling faults.  The pool stays mapped:
 * its region belongs to the object and goes with it.
 */
void mktme_shadow_free(MktmeShadow *sh)
{
    if (!sh) {
        return;
    }
    mktme_shadow_flush(sh);
    sh->disabled = true;
    tlb_set_protect_code_notify(NULL);
    migration_remove_notifier(&sh->migration);
    qemu_del_vm_change_state_handler(sh->vmstate);
}

void mktme_shadow_info(MktmeShadow *sh, MktmeFastPath *fp)
{
    if (!sh) {
        return;
    }
    qemu_spin_lock(&sh->lock);
    fp->slots = sh->nr_slots;
    fp->in_use = sh->used;
    fp->fills = sh->fills;
    fp->write_backs = sh->write_backs;
    qemu_spin_unlock(&sh->lock);
}
