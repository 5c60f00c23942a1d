/* Checks of the public API's arguments: TIND_OK, or TIND_INVALID with a
 * message naming what is wrong. */
#include "src/db.h"
#include "src/util/err.h"

int check_key(const void *key, size_t klen)
{
    if (!key) return err_set(TIND_INVALID, "key is NULL");
    if (klen == 0) return err_set(TIND_INVALID, "key is empty");
    if (klen > TIND_MAX_KEY_BYTES) return err_set(TIND_INVALID, "key of %zu bytes exceeds %u", klen, TIND_MAX_KEY_BYTES);
    return TIND_OK;
}

int check_value(const void *val, size_t vlen)
{
    if (!val && vlen > 0) return err_set(TIND_INVALID, "value is NULL");
    if (vlen > TIND_MAX_VALUE_BYTES) return err_set(TIND_INVALID, "value of %zu bytes exceeds %u", vlen, TIND_MAX_VALUE_BYTES);
    return TIND_OK;
}

int check_durability(int d)
{
    if (d < TIND_DURABILITY_BUFFERED || d > TIND_DURABILITY_SYNC_ALL)
        return err_set(TIND_INVALID, "durability %d is not a TIND_DURABILITY_* value", d);
    return TIND_OK;
}

int check_keyspace(const tind_keyspace *ks)
{
    if (!ks) return err_set(TIND_INVALID, "keyspace is NULL");
    if (atomic_load(&ks->dropped)) return err_set(TIND_INVALID, "keyspace %s was dropped", ks->name);
    return TIND_OK;
}

int check_writable(const tind_db *db)
{
    if (db->opts.read_only) return err_set(TIND_INVALID, "%s: the database was opened read-only", db->path);
    return TIND_OK;
}
