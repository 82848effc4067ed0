/*
 * spin.h - a small test-and-test-and-set lock for short critical sections
 * that are almost never contended: a scheduler's timing wheel, taken by
 * its owner at every arm, cancel and advance, and now and then by another
 * scheduler that cancels one of its timers or fires its expired ones
 * (timer.h). Uncontended, a lock is one atomic exchange and an unlock one
 * plain store, half of what a pthread mutex costs (two RMWs).
 *
 * A waiter spins on a plain load (the line stays shared until the holder
 * lets go) and gives its CPU away now and then, so that a holder
 * descheduled on a shared machine gets to run.
 */
#ifndef AMB_RUNTIME_SPIN_H
#define AMB_RUNTIME_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

typedef struct amb__spin {
    _Atomic uint32_t held;
} amb__spin;

/* A CPU hint inside a spin loop (x86 PAUSE, ARM YIELD). */
static inline void amb__spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline bool amb__spin_trylock(amb__spin *l)
{
    /* relaxed load: a hint that saves the exchange (and its line
     * transfer) when the lock is held. acquire exchange: the holder's
     * writes before its release store happen before our section. */
    return atomic_load_explicit(&l->held, memory_order_relaxed) == 0 &&
           atomic_exchange_explicit(&l->held, 1, memory_order_acquire) == 0;
}

static inline void amb__spin_lock(amb__spin *l)
{
    /* acquire: as in amb__spin_trylock. */
    if (amb__likely(atomic_exchange_explicit(&l->held, 1, memory_order_acquire) == 0))
        return;
    for (unsigned n = 1;; n++) {
        amb__spin_pause();
        if ((n & 63) == 0)
            sched_yield();
        if (amb__spin_trylock(l))
            return;
    }
}

static inline void amb__spin_unlock(amb__spin *l)
{
    /* release: our section happens before the next holder's. */
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

#endif /* AMB_RUNTIME_SPIN_H */
