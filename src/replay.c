/* Replay of one journal record at open (single-threaded): a batch goes
 * into its keyspaces' trees above their flushed sequence numbers, a drop
 * retires its keyspace. */
#include "journal/payload.h"
#include "lsm/ikey.h"
#include "src/db.h"
#include "src/util/err.h"

static tind_keyspace *find_live(void *ctx, uint32_t id) { return ks_find_id(ctx, id); }

int replay_record(tind_db *db, const char *path, uint64_t offset, const uint8_t *p, size_t n, uint64_t *last_seq)
{
    unsigned type;
    int rc = payload_type(p, n, &type);
    if (rc) return err_set(rc, "journal %s offset %llu: %s", path, (unsigned long long)offset, err_msg());
    if (type == JPAYLOAD_BATCH) {
        uint64_t seq;
        uint32_t count;
        struct payload_reader rd;
        if ((rc = payload_batch_open(p, n, &seq, &count, &rd)) != TIND_OK)
            return err_set(rc, "journal %s offset %llu: %s", path, (unsigned long long)offset, err_msg());
        if (seq <= *last_seq || count == 0 || seq + count - 1 > SEQ_MAX)
            return err_set(TIND_CORRUPTION, "journal %s offset %llu: sequence %llu+%u does not follow %llu", path,
                           (unsigned long long)offset, (unsigned long long)seq, count,
                           (unsigned long long)*last_seq);
        /* Ops of keyspaces dropped later are skipped; a number never given out is damage. */
        struct payload_op op;
        while ((rc = payload_batch_next(&rd, &op)) == TIND_OK) {
            if (op.keyspace >= db->next_ks_id)
                return err_set(TIND_CORRUPTION, "journal %s offset %llu: unknown keyspace %u", path,
                               (unsigned long long)offset, op.keyspace);
        }
        if (rc != TIND_NOT_FOUND)
            return err_set(rc, "journal %s offset %llu: %s", path, (unsigned long long)offset, err_msg());
        if ((rc = write_apply_batch(p, n, find_live, db, TREE_ADD_REPLAY, &seq, &count)) != TIND_OK) return rc;
        *last_seq = seq + count - 1;
        return TIND_OK;
    }
    if (type == JPAYLOAD_DROP_KEYSPACE) {
        uint32_t id;
        if ((rc = payload_drop_decode(p, n, &id)) != TIND_OK)
            return err_set(rc, "journal %s offset %llu: %s", path, (unsigned long long)offset, err_msg());
        /* Nothing else runs yet; ks_mu is taken because ks_retire asks for it. */
        tmutex_lock(&db->ks_mu);
        tind_keyspace *ks = ks_find_id(db, id);
        if (ks) {
            ks_mark_dropped(ks);
            rc = ks_retire(db, ks);
        }
        tmutex_unlock(&db->ks_mu);
        return rc;
    }
    return err_set(TIND_CORRUPTION, "journal %s offset %llu: unknown payload type %u", path,
                   (unsigned long long)offset, type);
}
