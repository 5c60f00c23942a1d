/* The one place where a tree's options become the configuration of the
 * layers below: how tables are written, and the compaction strategy's
 * whole configuration. */
#include <string.h>

#include "src/tree/internal.h"

/* Values that cross into the layers below: one meaning each. */
_Static_assert(TIND_LEVELS == LSM_LEVELS, "the API's levels are the tree's");
_Static_assert(TIND_COMPRESSION_NONE == COMPRESS_NONE && TIND_COMPRESSION_LZ4 == COMPRESS_LZ4 &&
                   TIND_COMPRESSION_ZSTD == COMPRESS_ZSTD,
               "TIND_COMPRESSION_* are the tables' compression codes (both are on disk)");
_Static_assert(TIND_COMPACTION_LEVELED == COMPACTION_LEVELED && TIND_COMPACTION_TIERED == COMPACTION_TIERED &&
                   TIND_COMPACTION_FIFO == COMPACTION_FIFO,
               "TIND_COMPACTION_* are the strategies' codes");

void config_table(const tind_keyspace_options *o, unsigned level, struct table_options *to)
{
    *to = (struct table_options){
        .block_size = o->block_size,
        .restart_interval = o->restart_interval,
        .bloom_bits = o->bloom_bits_per_key,
        .compression = (unsigned)o->compression[level < TIND_LEVELS ? level : TIND_LEVELS - 1],
        .zstd_level = o->zstd_level,
    };
}

void config_compaction(const tind_keyspace_options *o, struct compaction_config *c)
{
    memset(c, 0, sizeof *c);
    c->strategy = (unsigned)o->compaction;
    c->l0_trigger = o->l0_trigger;
    c->level_ratio = o->level_ratio;
    c->table_target_bytes = o->table_target_bytes;
    c->tier_width = o->tier_width;
    c->fifo_max_bytes = o->fifo_max_bytes;
    c->fifo_ttl_seconds = o->fifo_ttl_seconds;
    for (unsigned l = 0; l < LSM_LEVELS; l++) config_table(o, l, &c->table[l]);
}
