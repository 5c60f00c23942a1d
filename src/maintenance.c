/* Flushes and compactions on request: tind_keyspace_flush seals the
 * keyspace's memtable through the write entry and waits for its flush;
 * tind_keyspace_compact flushes, then runs the tree's major compaction. */
#include "src/db.h"
#include "src/util/err.h"

int tind_keyspace_flush(tind_keyspace *ks)
{
    err_clear();
    int rc = check_keyspace(ks);
    if (rc || (rc = check_writable(ks->db)) != TIND_OK) return rc;
    tind_keyspace *one = ks;
    struct write_target t = {.ks = &one, .n = 1, .seal = 1};
    struct journal_req r = {.payload = NULL, .len = 0, .durability = TIND_DURABILITY_BUFFERED, .user = &t};
    if ((rc = write_submit(ks->db, &r, 0)) != TIND_OK) return rc;
    if ((rc = tree_flush_wait(ks->tree, t.seal_seq)) != TIND_OK) return rc;
    /* A journal whose writes are all flushed now goes, the current one
     * included (rotated out); a failed rotation is this call's. */
    return retire_journals_rotating(ks->db);
}

int tind_keyspace_compact(tind_keyspace *ks)
{
    err_clear();
    int rc = check_keyspace(ks);
    if (rc || (rc = check_writable(ks->db)) != TIND_OK) return rc;
    if ((rc = tind_keyspace_flush(ks)) != TIND_OK) return rc;
    return tree_compact_all(ks->tree);
}
