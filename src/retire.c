/* Journal retirement: a closed journal goes once every keyspace has flushed
 * past it and no drop pins it; on request (tind_keyspace_flush, tind_close)
 * a current journal whose writes are all flushed is closed so that it goes
 * too, rather than staying at full size until it fills. */
#include "src/db.h"

/* Deletes the closed journals that nothing needs. Returns 1 when nothing
 * needs the current journal either (every write published at the scan is
 * flushed and no drop pins anything), with *current_bytes its size. */
static int retire_closed(tind_db *db, uint64_t *current_bytes)
{
    /* Under retire_mu from the scan to the deletion: a drop that pins after
     * the scan would not be seen by it, and its record could be written,
     * its journal closed and deleted before this deletes what it scanned. */
    tmutex_lock(&db->retire_mu);
    /* A write published after this is above it, and a write not yet applied
     * to its memtable (a keyspace that looks empty) is above it too: no
     * journal holding either is deleted. */
    uint64_t all = db_last_seq(db) + 1;
    uint64_t needed = all;
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
    struct journal_stats js;
    journal_get_stats(db->jnl, &js);
    *current_bytes = js.current_bytes;
    tmutex_unlock(&db->retire_mu);
    return needed == all;
}

/* Closes the current journal and starts the next, through the one write
 * entry (a request without payload: no backpressure, no write gate) and the
 * group-commit queue (only a leader may touch the file). The closed journal's highest
 * sequence number is the last one given out when the rotation's group
 * formed: writes that came after the scan keep it until they are flushed, as
 * they keep any closed journal. A failure poisons the journal, like a
 * rotation past max_bytes: its file may be closed with no successor. */
static int retire_rotate(tind_db *db)
{
    struct write_target t = {.ks = NULL, .n = 0};
    struct journal_req r = {.payload = NULL, .len = 0, .durability = TIND_DURABILITY_BUFFERED, .rotate = 1,
                            .user = &t};
    return write_submit(db, &r, 0);
}

/* Retires what nothing needs; rotates the current journal out first when
 * nothing needs it and it holds at least min_bytes. Returns the rotation's
 * failure (it poisons the database), else TIND_OK. */
static int retire_with_rotation(tind_db *db, uint64_t min_bytes)
{
    uint64_t cur;
    if (!retire_closed(db, &cur) || cur < min_bytes) return TIND_OK;
    int rc = retire_rotate(db);
    if (rc == TIND_OK) (void)retire_closed(db, &cur);
    return rc;
}

void retire_journals(tind_db *db)
{
    uint64_t cur;
    (void)retire_closed(db, &cur);
}

int retire_journals_rotating(tind_db *db)
{
    return retire_with_rotation(db, write_rotate_bytes(db));
}

int retire_journals_at_close(tind_db *db)
{
    if (db->opts.read_only || journal_poisoned(db->jnl)) return TIND_OK;
    return retire_with_rotation(db, JOURNAL_HEADER_SIZE + 1);
}
