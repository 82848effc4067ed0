/*
 * atom.c - the atom table: one per OS process, bounded, safe from any thread.
 *
 * Layout:
 *   names[]  index -> entry {hash, len, latin1, name bytes + NUL}; entries are
 *            carved from 64 KiB chunks and never move or die, so a name
 *            pointer is valid for the life of the OS process.
 *   slots[]  open-addressing hash index: each slot holds index + 1 (0 = empty),
 *            capacity a power of two >= 2 * limit, so probing always ends.
 *
 * Invariants:
 *   - Lookups take no lock. An insert (under `lock`) first publishes
 *     names[index], then the slot; a reader that sees the slot therefore sees
 *     the entry (release store / acquire load on the slot), and a reader that
 *     sees names[index] sees the entry it points to (release store / acquire
 *     load on names[index]).
 *   - count only grows, and never exceeds limit: a full table answers
 *     AMB_ESYSLIMIT instead of growing (the bound BEAM lacks for atoms that
 *     arrive from the network; untrusted input can also use
 *     amb_atom_existing and never create atoms).
 *   - The predefined atoms of term.h hold indices 0..AMB__ATOM_PREDEFINED_COUNT-1.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "term_internal.h"

typedef struct atom_entry {
    uint64_t hash;
    uint32_t len;
    bool latin1;
    char name[]; /* len bytes + NUL */
} atom_entry;

#define CHUNK_SIZE ((size_t)64 << 10)

static struct {
    pthread_once_t once;
    pthread_mutex_t lock;
    int init_rc;
    size_t limit;
    size_t mask; /* slot capacity - 1 */
    _Atomic(uint32_t) *slots;
    _Atomic(atom_entry *) *names;
    /* count is a statistic and a bound (relaxed everywhere); names[] and
     * slots[] carry the publication of entries. */
    atomic_size_t count;
    uint8_t *chunk; /* current chunk for entries, under lock */
    size_t chunk_used;
} table = {
    .once = PTHREAD_ONCE_INIT,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .limit = AMB_ATOM_LIMIT_DEFAULT,
};

static const struct {
    const char *text;
} predefined[] = {
#define AMB__ATOM_TEXT(name, text) {text},
    AMB_PREDEFINED_ATOMS(AMB__ATOM_TEXT)
#undef AMB__ATOM_TEXT
};

static int insert_locked(const char *name, size_t len, uint64_t hash, uint32_t *index);

static void table_init_locked(void);

static void table_init(void)
{
    pthread_mutex_lock(&table.lock);
    table_init_locked();
    pthread_mutex_unlock(&table.lock);
}

static void table_init_locked(void)
{
    size_t cap = 1;
    while (cap < table.limit * 2)
        cap <<= 1;
    table.mask = cap - 1;
    /* calloc of these sizes maps fresh zero pages: only touched pages cost. */
    table.slots = amb__calloc(cap, sizeof *table.slots);
    table.names = amb__calloc(table.limit, sizeof *table.names);
    if (table.slots == NULL || table.names == NULL) {
        amb__free((void *)table.slots);
        amb__free((void *)table.names);
        table.slots = NULL;
        table.names = NULL;
        table.init_rc = AMB_ENOMEM;
        return;
    }
    for (size_t i = 0; i < AMB_COUNTOF(predefined); i++) {
        size_t len = strlen(predefined[i].text);
        uint32_t index;
        int rc = insert_locked(predefined[i].text, len,
                               amb__hash_bytes(predefined[i].text, len, 0), &index);
        if (rc != 0) {
            table.init_rc = rc;
            return;
        }
        AMB__CHECK(index == i);
    }
}

static int ensure_table(void)
{
    pthread_once(&table.once, table_init);
    return table.init_rc;
}

static bool name_is_latin1(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        /* Latin-1 characters are U+0000..U+00FF: one byte, or 0xC2/0xC3 leads. */
        if (s[i] >= 0x80) {
            if (s[i] != 0xc2 && s[i] != 0xc3)
                return false;
            i++;
        }
    }
    return true;
}

/* Finds the slot for (name, hash): returns the atom index + 1, or 0 with
 * *slot_out at the empty slot where it would go. */
static uint32_t probe(const char *name, size_t len, uint64_t hash, size_t *slot_out)
{
    size_t i = (size_t)hash & table.mask;
    for (;;) {
        /* acquire: pairs with the release store in insert_locked, so the
         * entry behind a non-zero slot is fully written. */
        uint32_t v = atomic_load_explicit(&table.slots[i], memory_order_acquire);
        if (v == 0) {
            *slot_out = i;
            return 0;
        }
        /* relaxed: the acquire load of the slot above already made the
         * entry and its names[] pointer visible (they were stored before
         * the slot's release store). */
        atom_entry *e = atomic_load_explicit(&table.names[v - 1], memory_order_relaxed);
        if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0)
            return v;
        i = (i + 1) & table.mask;
    }
}

static int insert_locked(const char *name, size_t len, uint64_t hash, uint32_t *index)
{
    size_t slot;
    uint32_t found = probe(name, len, hash, &slot);
    if (found) {
        *index = found - 1;
        return 0;
    }
    /* relaxed: inserts hold the lock, so this thread is the only writer of
     * count and the lock orders it after every earlier insert. */
    size_t count = atomic_load_explicit(&table.count, memory_order_relaxed);
    if (count >= table.limit)
        return AMB_ESYSLIMIT;
    size_t need = (sizeof(atom_entry) + len + 1 + 7) & ~(size_t)7;
    if (table.chunk == NULL || table.chunk_used + need > CHUNK_SIZE) {
        /* Chunks are never freed: entries live as long as the OS process. */
        uint8_t *chunk = amb__malloc(CHUNK_SIZE);
        if (chunk == NULL)
            return AMB_ENOMEM;
        table.chunk = chunk;
        table.chunk_used = 0;
    }
    atom_entry *e = (atom_entry *)(void *)(table.chunk + table.chunk_used);
    table.chunk_used += need;
    e->hash = hash;
    e->len = (uint32_t)len;
    e->latin1 = name_is_latin1((const uint8_t *)name, len);
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    /* release: a reader that loads this pointer with acquire (entry_of)
     * sees the entry written above, even one that got the atom's index
     * without synchronising with this insert. */
    atomic_store_explicit(&table.names[count], e, memory_order_release);
    /* relaxed: count is a bound and a statistic; nothing is read through
     * it (entry_of reads the entry through names[], which carries the
     * ordering). */
    atomic_store_explicit(&table.count, count + 1, memory_order_relaxed);
    /* release: a lock-free reader that sees this slot sees the entry. */
    atomic_store_explicit(&table.slots[slot], (uint32_t)count + 1, memory_order_release);
    *index = (uint32_t)count;
    return 0;
}

static int check_name(const char *name, size_t len)
{
    if (name == NULL && len > 0)
        return AMB_EBADARG;
    if (len > AMB_ATOM_MAX_BYTES)
        return AMB_EBADARG;
    size_t chars;
    if (!amb__utf8_valid((const uint8_t *)name, len, &chars) ||
        chars > AMB_ATOM_MAX_CHARS)
        return AMB_EBADARG;
    return 0;
}

static int lookup(const char *name, size_t len, bool create, amb_term *out)
{
    if (out == NULL)
        return AMB__MISUSE();
    int rc = check_name(name, len);
    if (rc != 0)
        return rc;
    if ((rc = ensure_table()) != 0)
        return rc;
    if (len == 0)
        name = "";
    uint64_t hash = amb__hash_bytes(name, len, 0);
    size_t slot;
    uint32_t found = probe(name, len, hash, &slot);
    if (found) {
        *out = AMB__ATOM(found - 1);
        return 0;
    }
    if (!create)
        return AMB_ENOTFOUND;
    uint32_t index;
    pthread_mutex_lock(&table.lock);
    rc = insert_locked(name, len, hash, &index);
    pthread_mutex_unlock(&table.lock);
    if (rc == 0)
        *out = AMB__ATOM(index);
    return rc;
}

int amb_atom_new(const char *name, size_t len, amb_term *out)
{
    return lookup(name, len, true, out);
}

int amb_atom_existing(const char *name, size_t len, amb_term *out)
{
    return lookup(name, len, false, out);
}

amb_term amb_atom(const char *name)
{
    amb_term a;
    if (name == NULL || amb_atom_new(name, strlen(name), &a) != 0)
        return AMB_NONE;
    return a;
}

static atom_entry *entry_of(amb_term a)
{
    if (!amb_is_atom(a) || ensure_table() != 0)
        return NULL;
    uint32_t index = amb__atom_index(a);
    /* relaxed: the bound only rejects words that are no atom of this table;
     * a count that lags a concurrent insert can only hide an atom from a
     * thread that got its index without synchronising with the insert. */
    if (index >= atomic_load_explicit(&table.count, memory_order_relaxed))
        return NULL;
    /* acquire: pairs with the release store in insert_locked, so the entry
     * behind the pointer is fully written (NULL if the insert is not visible
     * yet, which again only a thread without happens-before can see). */
    return atomic_load_explicit(&table.names[index], memory_order_acquire);
}

const char *amb_atom_name(amb_term a, size_t *len)
{
    atom_entry *e = entry_of(a);
    if (e == NULL)
        return NULL;
    if (len != NULL)
        *len = e->len;
    return e->name;
}

uint64_t amb__atom_hash(amb_term a)
{
    atom_entry *e = entry_of(a);
    return e ? e->hash : 0;
}

bool amb__atom_is_latin1(amb_term a)
{
    atom_entry *e = entry_of(a);
    return e ? e->latin1 : false;
}

size_t amb_atom_count(void)
{
    if (ensure_table() != 0)
        return 0;
    /* relaxed: a statistic; it orders nothing. */
    return atomic_load_explicit(&table.count, memory_order_relaxed);
}

size_t amb_atom_limit(void)
{
    return table.limit;
}

int amb_atom_set_limit(size_t limit)
{
    if (limit < 1024 || limit > ((size_t)16 << 20))
        return AMB__MISUSE();
    int rc = 0;
    /* table_init holds the lock too, so the limit cannot change under it. */
    pthread_mutex_lock(&table.lock);
    if (table.slots != NULL || table.init_rc != 0)
        rc = AMB_ESTATE;
    else
        table.limit = limit;
    pthread_mutex_unlock(&table.lock);
    return rc;
}
