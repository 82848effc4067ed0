/*
 * restarts.c - the restart-intensity window: "more than intensity restarts
 * within period_ms" (OTP's add_restart/inPeriod: a restart at Then counts
 * at Now while Now - Then < Period).
 *
 * Restarts are kept as runs (millisecond, count) in a ring, oldest at head.
 * Two runs never share a millisecond, and runs older than the period are
 * dropped before each add, so the ring holds at most period_ms + 1 runs;
 * and once more than intensity restarts are counted the supervisor gives
 * up, so it never holds more than intensity + 1. Memory is bounded by the
 * smaller of the two whatever the rate of restarts.
 */
#include "sup_internal.h"

#define DEFAULT_INTENSITY 3
#define DEFAULT_PERIOD_MS 5000

int amb__restarts_resolve(int intensity, int64_t period_ms, int *intensity_out,
                          int64_t *period_out)
{
    if (intensity < AMB_NO_RESTARTS || period_ms < 0 || period_ms > AMB_TIMEOUT_MAX)
        return AMB_EBADARG;
    *intensity_out = intensity == AMB_NO_RESTARTS ? 0
                     : intensity == 0             ? DEFAULT_INTENSITY
                                                  : intensity;
    *period_out = period_ms == 0 ? DEFAULT_PERIOD_MS : period_ms;
    return 0;
}

void amb__restarts_init(amb__restarts *r, int intensity, int64_t period_ms)
{
    *r = (amb__restarts){0};
    r->intensity = intensity;
    r->period_ms = period_ms;
}

static struct amb__restart_run *run_at(amb__restarts *r, size_t i)
{
    return &r->runs[(r->head + i) & (r->cap - 1)];
}

/* Doubles the ring (cap stays a power of two), keeping the runs in order. */
static int grow(amb__restarts *r)
{
    size_t cap = r->cap ? r->cap * 2 : 8;
    struct amb__restart_run *runs = amb_malloc(cap * sizeof *runs);
    if (runs == NULL)
        return AMB_ENOMEM;
    for (size_t i = 0; i < r->len; i++)
        runs[i] = *run_at(r, i);
    amb_free(r->runs);
    r->runs = runs;
    r->cap = cap;
    r->head = 0;
    return 0;
}

int amb__restarts_add(amb__restarts *r, int64_t now_ms, bool *exceeded)
{
    while (r->len > 0 && now_ms - run_at(r, 0)->ms >= r->period_ms) {
        r->total -= run_at(r, 0)->count;
        r->head = (r->head + 1) & (r->cap - 1);
        r->len--;
    }
    if (r->len > 0 && run_at(r, r->len - 1)->ms == now_ms) {
        run_at(r, r->len - 1)->count++;
    } else {
        if (r->len == r->cap && grow(r) != 0)
            return AMB_ENOMEM; /* the runs dropped above were out of the period */
        *run_at(r, r->len) = (struct amb__restart_run){now_ms, 1};
        r->len++;
    }
    r->total++;
    *exceeded = r->total > (uint64_t)r->intensity;
    return 0;
}

void amb__restarts_free(amb__restarts *r)
{
    amb_free(r->runs);
    *r = (amb__restarts){0};
}
