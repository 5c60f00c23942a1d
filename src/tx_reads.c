/* A transaction's read set (the keys and ranges it read, checked at
 * commit), its open iterators, and its write buffers by keyspace: what the
 * oracle and the iterators ask of a transaction. */
#include <stdlib.h>

#include "lsm/ikey.h"
#include "src/tx.h"
#include "src/util/array.h"
#include "src/util/checksum.h"

uint64_t tx_key_hash(uint32_t ks, const void *key, size_t klen) { return XXH3_64bits_withSeed(key, klen, ks); }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void tx_sort_reads(struct tind_tx *tx)
{
    if (tx->nreads > 1) qsort(tx->reads, tx->nreads, sizeof *tx->reads, cmp_u64);
}

int tx_read_conflicts(const struct tind_tx *tx, uint32_t ks, uint64_t hash, const uint8_t *key, size_t klen)
{
    if (tx->nreads && bsearch(&hash, tx->reads, tx->nreads, sizeof *tx->reads, cmp_u64)) return 1;
    for (size_t i = 0; i < tx->nranges; i++) {
        const struct tx_range *r = &tx->ranges[i];
        if (r->ks != ks) continue;
        if (!r->lo_open && ukey_cmp(key, klen, tx->range_keys.p + r->lo_off, r->lo_len) < 0) continue;
        if (!r->hi_open) {
            int c = ukey_cmp(key, klen, tx->range_keys.p + r->hi_off, r->hi_len);
            if (c > 0 || (c == 0 && r->hi_excl)) continue;
        }
        return 1;
    }
    return 0;
}

memtable *tx_buffer(const struct tind_tx *tx, const tind_keyspace *ks)
{
    for (size_t i = 0; i < tx->nspaces; i++)
        if (tx->spaces[i].ks == ks) return tx->spaces[i].mem;
    return NULL;
}

int tx_add_range(struct tind_tx *tx, uint32_t ks, int lo_open, const void *lo, size_t lo_len, int hi_open,
                 const void *hi, size_t hi_len, int hi_excl)
{
    if (tx->single_writer) return TIND_OK; /* nothing to check */
    int rc = array_reserve((void **)&tx->ranges, tx->nranges, &tx->capranges, sizeof *tx->ranges, 4);
    if (rc) return rc;
    struct tx_range r = {.ks = ks, .lo_open = lo_open, .hi_open = hi_open, .hi_excl = hi_excl};
    r.lo_off = tx->range_keys.len;
    r.lo_len = lo_open ? 0 : lo_len;
    if (r.lo_len && (rc = buf_append(&tx->range_keys, lo, lo_len))) return rc;
    r.hi_off = tx->range_keys.len;
    r.hi_len = hi_open ? 0 : hi_len;
    if (r.hi_len && (rc = buf_append(&tx->range_keys, hi, hi_len))) return rc;
    tx->ranges[tx->nranges++] = r;
    return TIND_OK;
}

int tx_track_iter(struct tind_tx *tx, struct tind_iter *it)
{
    int rc = array_reserve((void **)&tx->iters, tx->niters, &tx->capiters, sizeof *tx->iters, 4);
    if (rc) return rc;
    tx->iters[tx->niters++] = it;
    return TIND_OK;
}

void tx_poison(struct tind_tx *tx) { tx->failed = TIND_NO_MEMORY; }

void tx_forget_iter(struct tind_tx *tx, struct tind_iter *it)
{
    for (size_t i = 0; i < tx->niters; i++)
        if (tx->iters[i] == it) {
            tx->iters[i] = tx->iters[--tx->niters];
            return;
        }
}
