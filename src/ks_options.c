/* Keyspace options, generated from the table in ks_options.h: defaults,
 * checks, the OPTIONS file's field list and comparison. The file around the
 * field list is keyspace.c's; both formats are in src/README.md. */
#include "src/ks_options.h"

#include <limits.h>
#include <string.h>

#include "src/util/err.h"

/* ---- the table and the public header agree ------------------------------------ */

/* The table's fields as a struct: the header's struct, if the two agree. */
#define KSO_MEMBER_PLAIN(name, type) type name;
#define KSO_MEMBER_ZIGZAG(name, type) type name;
#define KSO_MEMBER_LEVELS(name, type) type name[TIND_LEVELS];
#define KSO_MEMBER(name, type, coding, tag, def, lo, hi, why, names) KSO_MEMBER_##coding(name, type)
struct kso_mirror {
    KS_OPTIONS(KSO_MEMBER)
};

/* One value of a field: the field, or its first level. */
#define KSO_ELEM_PLAIN(x) (x)
#define KSO_ELEM_ZIGZAG(x) (x)
#define KSO_ELEM_LEVELS(x) (x)[0]
/* Which types a coding takes. */
#define KSO_CODES_PLAIN(type) 1
#define KSO_CODES_ZIGZAG(type) ((type)-1 < 0)
#define KSO_CODES_LEVELS(type) 1
#define KSO_HDR(name) (((const tind_keyspace_options *)0)->name)
#define KSO_TIE(name, type, coding, tag, def, lo, hi, why, names)                                            \
    _Static_assert(offsetof(tind_keyspace_options, name) == offsetof(struct kso_mirror, name),              \
                   "tind_keyspace_options." #name " is not where the options table puts it");               \
    _Static_assert(sizeof KSO_HDR(name) == sizeof(((const struct kso_mirror *)0)->name),                    \
                   "tind_keyspace_options." #name " has another size than in the options table");           \
    _Static_assert(_Generic(KSO_ELEM_##coding(KSO_HDR(name)), type: 1, default: 0),                          \
                   "tind_keyspace_options." #name " has another type than in the options table");           \
    _Static_assert(KSO_CODES_##coding(type), "tind_keyspace_options." #name ": ZIGZAG codes signed fields only");
KS_OPTIONS(KSO_TIE)
_Static_assert(sizeof(tind_keyspace_options) == sizeof(struct kso_mirror),
               "tind_keyspace_options has fields the options table lacks");

/* Values that reach the disk: one meaning each (those that cross into the
 * layers below are tied to theirs in src/tree/config.c). */
_Static_assert(TIND_COMPRESSION_ZSTD <= 15, "a compression value fits the 4 bits of its record");
_Static_assert(TIND_DURABILITY_DEFAULT + 1 == TIND_DURABILITY_BUFFERED &&
                   TIND_DURABILITY_BUFFERED < TIND_DURABILITY_SYNC_DATA &&
                   TIND_DURABILITY_SYNC_DATA < TIND_DURABILITY_SYNC_ALL,
               "durability's range DEFAULT..SYNC_ALL holds exactly the TIND_DURABILITY_* values");

/* ---- defaults ----------------------------------------------------------------- */

_Static_assert(sizeof((int[])KSO_COMPRESSION_DEFAULTS) == sizeof(int) * TIND_LEVELS,
               "one default compression per level");

/* Positional, in table order: see ks_options.h for why. Static storage, so
 * the padding is zero and two fresh defaults compare equal byte for byte. */
#define KSO_DEFAULT(name, type, coding, tag, def, lo, hi, why, names) def,
static const tind_keyspace_options kso_defaults = {KS_OPTIONS(KSO_DEFAULT)};

void tind_keyspace_options_init(tind_keyspace_options *o)
{
    if (!o) return;
    memcpy(o, &kso_defaults, sizeof *o);
}

/* ---- checks ------------------------------------------------------------------- */

static int kso_in_u(uint64_t v, uint64_t lo, uint64_t hi) { return v >= lo && v <= hi; }
static int kso_in_i(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }
#define KSO_IN(v, lo, hi) _Generic((v), int: kso_in_i, default: kso_in_u)((v), (lo), (hi))

/* level: -1 for a field with one value. */
static int kso_bad_u(const char *name, int level, uint64_t v, const char *why)
{
    if (level < 0) return err_set(TIND_INVALID, "keyspace option %s %llu %s", name, (unsigned long long)v, why);
    return err_set(TIND_INVALID, "keyspace option %s[%d] %llu %s", name, level, (unsigned long long)v, why);
}
static int kso_bad_i(const char *name, int level, int64_t v, const char *why)
{
    if (level < 0) return err_set(TIND_INVALID, "keyspace option %s %lld %s", name, (long long)v, why);
    return err_set(TIND_INVALID, "keyspace option %s[%d] %lld %s", name, level, (long long)v, why);
}
#define KSO_BAD(name, level, v, why) _Generic((v), int: kso_bad_i, default: kso_bad_u)(name, level, (v), why)

#define KSO_CHECK_PLAIN(name, lo, hi, why) \
    if (!KSO_IN(o->name, lo, hi)) return KSO_BAD(#name, -1, o->name, why);
#define KSO_CHECK_ZIGZAG(name, lo, hi, why) KSO_CHECK_PLAIN(name, lo, hi, why)
#define KSO_CHECK_LEVELS(name, lo, hi, why)                                                                   \
    for (int l = 0; l < TIND_LEVELS; l++)                                                                     \
        if (!KSO_IN(o->name[l], lo, hi)) return KSO_BAD(#name, l, o->name[l], why);
#define KSO_CHECK(name, type, coding, tag, def, lo, hi, why, names) KSO_CHECK_##coding(name, lo, hi, why)

int ks_options_check(const tind_keyspace_options *o)
{
    KS_OPTIONS(KSO_CHECK)
    /* Between fields: */
    if (o->l0_stop_tables < o->l0_slowdown_tables)
        return err_set(TIND_INVALID, "keyspace options need 1 <= l0_slowdown_tables <= l0_stop_tables <= 10000");
    if (o->pending_stop_bytes < o->pending_slowdown_bytes)
        return err_set(TIND_INVALID, "keyspace options need 1 MiB <= pending_slowdown_bytes <= pending_stop_bytes");
    /* A leveled keyspace compacts level 0 once it holds l0_trigger tables:
     * writers stopped below that would wait for a compaction that never
     * starts. (pending bytes count level 0 only from l0_trigger on and every
     * level past its target, which is work the picker does; tiered and FIFO
     * keyspaces use no level-0 threshold, and a stall never waits while the
     * strategy has nothing to do: flush_stall.) */
    if (o->compaction == TIND_COMPACTION_LEVELED && o->l0_stop_tables < o->l0_trigger)
        return err_set(TIND_INVALID,
                       "keyspace options need l0_stop_tables (%u) >= l0_trigger (%u): level 0 is compacted only "
                       "from l0_trigger tables on",
                       o->l0_stop_tables, o->l0_trigger);
    return TIND_OK;
}

/* ---- the OPTIONS file's field list --------------------------------------------- */

static uint64_t kso_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t kso_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

#define KSO_PUT_PLAIN(name, tag)                                                                              \
    p = put_varint32(p, tag);                                                                                 \
    p = put_varint64(p, (uint64_t)o->name);
#define KSO_PUT_ZIGZAG(name, tag)                                                                             \
    p = put_varint32(p, tag);                                                                                 \
    p = put_varint64(p, kso_zigzag(o->name));
#define KSO_PUT_LEVELS(name, tag)                                                                             \
    for (int l = 0; l < TIND_LEVELS; l++) {                                                                   \
        p = put_varint32(p, tag);                                                                             \
        p = put_varint64(p, (uint64_t)l << 4 | (uint64_t)o->name[l]);                                         \
    }
#define KSO_PUT(name, type, coding, tag, def, lo, hi, why, names) KSO_PUT_##coding(name, tag)

uint8_t *ks_options_encode(uint8_t *p, const tind_keyspace_options *o)
{
    p = put_varint32(p, KS_OPTIONS_RECORDS);
    KS_OPTIONS(KSO_PUT)
    return p;
}

#define KSO_MAX(type) _Generic((type)0, int: INT_MAX, uint32_t: UINT32_MAX, uint64_t: UINT64_MAX)
#define KSO_MIN(type) _Generic((type)0, int: INT_MIN, uint32_t: 0, uint64_t: 0)

/* Each sets fits = 0 for a value its field cannot hold; the ranges are
 * ks_options_check's, after the whole list. */
#define KSO_GET_PLAIN(name, type)                                                                             \
    if ((fits = v <= (uint64_t)KSO_MAX(type))) o->name = (type)v;
#define KSO_GET_ZIGZAG(name, type)                                                                            \
    if ((fits = kso_in_i(kso_unzigzag(v), KSO_MIN(type), KSO_MAX(type)))) o->name = (type)kso_unzigzag(v);
#define KSO_GET_LEVELS(name, type)                                                                            \
    if ((fits = v <= UINT32_MAX)) {                                                                           \
        if ((v >> 4) >= TIND_LEVELS)                                                                          \
            return err_set(TIND_CORRUPTION, "%s offset %zu: " #name " of level %llu", path, off,             \
                           (unsigned long long)(v >> 4));                                                     \
        o->name[v >> 4] = (type)(v & 15);                                                                     \
    }
#define KSO_GET(name, type, coding, tag, def, lo, hi, why, names)                                            \
    case tag: KSO_GET_##coding(name, type) break;

int ks_options_decode(const char *path, const uint8_t *base, const uint8_t *p, const uint8_t *end,
                      tind_keyspace_options *o)
{
    tind_keyspace_options_init(o);
    uint32_t nf;
    if (!(p = get_varint32(p, end, &nf))) return err_set(TIND_CORRUPTION, "%s: truncated field count", path);
    for (uint32_t i = 0; i < nf; i++) {
        uint32_t tag;
        uint64_t v;
        size_t off = (size_t)(p - base);
        if (!(p = get_varint32(p, end, &tag)) || !(p = get_varint64(p, end, &v)))
            return err_set(TIND_CORRUPTION, "%s offset %zu: truncated option", path, off);
        int fits;
        switch (tag) {
            KS_OPTIONS(KSO_GET)
        default: return err_set(TIND_CORRUPTION, "%s offset %zu: unknown option tag %u", path, off, tag);
        }
        if (!fits) return err_set(TIND_CORRUPTION, "%s offset %zu: option %u out of range", path, off, tag);
    }
    if (p != end) return err_set(TIND_CORRUPTION, "%s offset %zu: trailing bytes", path, (size_t)(p - base));
    if (ks_options_check(o)) return err_set(TIND_CORRUPTION, "%s: option value out of range", path);
    return TIND_OK;
}

/* ---- comparison --------------------------------------------------------------- */

#define KSO_SAME_PLAIN(name) \
    if (a->name != b->name) return 0;
#define KSO_SAME_ZIGZAG(name) KSO_SAME_PLAIN(name)
#define KSO_SAME_LEVELS(name)                                                                                 \
    for (int l = 0; l < TIND_LEVELS; l++)                                                                     \
        if (a->name[l] != b->name[l]) return 0;
#define KSO_SAME(name, type, coding, tag, def, lo, hi, why, names) KSO_SAME_##coding(name)

int ks_options_same(const tind_keyspace_options *a, const tind_keyspace_options *b)
{
    KS_OPTIONS(KSO_SAME)
    return 1;
}
