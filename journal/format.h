/* The journal's on-disk constants. Frozen: a value here never changes
 * meaning and a retired one is never reused. The byte grammar is in
 * journal/README.md. */
#ifndef TIND_JOURNAL_FORMAT_H
#define TIND_JOURNAL_FORMAT_H

#include <stdint.h>

/* "TINDJRNL" read as a little-endian u64. */
#define JOURNAL_MAGIC UINT64_C(0x4c4e524a444e4954)
#define JOURNAL_VERSION 1u

/* file_header := magic:u64 version:u32 reserved:u32 number:u64 base_seq:u64 checksum:u64
 * checksum = xxh3 of the 32 bytes before it. */
#define JOURNAL_HEADER_SIZE 40u

/* record := payload_len:u64 payload_sum:u64 header_sum:u32 payload
 * payload_sum = xxh3(payload); header_sum = low 32 bits of xxh3(the 16 bytes before it). */
#define JOURNAL_RECORD_HEADER 20u

/* Payload types (first payload byte). */
enum journal_payload_type {
    JPAYLOAD_BATCH = 1,         /* frozen */
    JPAYLOAD_DROP_KEYSPACE = 2, /* frozen */
};

/* Journal files are named by number: "%016llx.jnl" in the journal directory. */
#define JOURNAL_SUFFIX ".jnl"
#define JOURNAL_NAME_LEN 20

#include <stddef.h>

struct journal_header {
    uint64_t number;   /* the file's number, equal to the one in its name */
    uint64_t base_seq; /* the last sequence number used before this journal was started */
};

/* Encodes a file header into out[JOURNAL_HEADER_SIZE]. */
void journal_header_encode(uint8_t *out, const struct journal_header *h);
/* Decodes and checks (magic, version, checksum) a file header; TIND_CORRUPTION
 * with a message naming `path` and offset 0 when it is bad. */
int journal_header_decode(const uint8_t *in, size_t n, const char *path, struct journal_header *h);

/* Encodes a record header for payload p[n] into out[JOURNAL_RECORD_HEADER]. */
void journal_record_header_encode(uint8_t *out, const uint8_t *p, size_t n);

/* Formats the file name of journal `number` into out (at least JOURNAL_NAME_LEN + 1 bytes). */
void journal_file_name(char *out, uint64_t number);
/* Parses a journal file name; 1 and *number when it is one, else 0. */
int journal_parse_name(const char *name, uint64_t *number);

#endif
