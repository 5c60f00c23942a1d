/* Journal retirement: a closed journal goes once every keyspace has flushed
 * past it and no drop pins it. */
#include "src/db.h"

void retire_journals(tind_db *db)
{
    /* Under retire_mu from the scan to the deletion: a drop that pins after
     * the scan would not be seen by it, and its record could be written,
     * its journal closed and deleted before this deletes what it scanned. */
    tmutex_lock(&db->retire_mu);
    /* A write published after this is above it, and a write not yet applied
     * to its memtable (a keyspace that looks empty) is above it too: no
     * journal holding either is deleted. */
    uint64_t needed = db_last_seq(db) + 1;
    if (db->drop_pin < needed) needed = db->drop_pin;
    tmutex_lock(&db->list_mu);
    for (size_t i = 0; i < db->nks; i++) {
        uint64_t s = tree_oldest_unflushed(db->ks[i]->tree);
        if (s < needed) needed = s;
    }
    tmutex_unlock(&db->list_mu);
    /* Journal deletion failing is not fatal: the files are retried next time
     * and, at worst, replayed (and skipped) at the next open. */
    journal_retire(db->jnl, needed, NULL);
    tmutex_unlock(&db->retire_mu);
}
