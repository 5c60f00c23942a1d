/* Journal file headers, record headers and file names.
 *
 *   file_header := magic:u64 version:u32 reserved:u32 number:u64 base_seq:u64 checksum:u64
 *                  (40 bytes; checksum = xxh3 of the 32 bytes before it)
 *   record      := payload_len:u64 payload_sum:u64 header_sum:u32 payload[payload_len]
 *                  (header_sum = low 32 bits of xxh3 of the 16 bytes before it)
 *
 * All little-endian. See journal/README.md for the whole grammar. */
#include "journal/journal.h"

#include <stdio.h>
#include <string.h>

#include "src/util/checksum.h"
#include "src/util/coding.h"
#include "src/util/err.h"
#include "src/util/file.h"
#include "src/util/record.h"

void journal_header_encode(uint8_t *out, const struct journal_header *h)
{
    put_u64(out, JOURNAL_MAGIC);
    put_u32(out + 8, JOURNAL_VERSION);
    put_u32(out + 12, 0); /* reserved: written as zero, required to be zero */
    put_u64(out + 16, h->number);
    put_u64(out + 24, h->base_seq);
    put_u64(out + 32, checksum64(out, 32));
}

int journal_header_decode(const uint8_t *in, size_t n, const char *path, struct journal_header *h)
{
    if (n < JOURNAL_HEADER_SIZE)
        return err_set(TIND_CORRUPTION, "journal %s offset 0: file header truncated (%zu of %u bytes)",
                       path, n, JOURNAL_HEADER_SIZE);
    /* Magic first, so that a file that is not a journal at all says so; then
     * the checksum, so that a flipped bit in the version or reserved field is
     * reported as damage rather than as an unknown format. */
    if (get_u64(in) != JOURNAL_MAGIC)
        return err_set(TIND_CORRUPTION, "journal %s offset 0: bad magic number 0x%016llx", path,
                       (unsigned long long)get_u64(in));
    uint64_t want = get_u64(in + 32), got = checksum64(in, 32);
    if (want != got)
        return err_set(TIND_CORRUPTION,
                       "journal %s offset 0: file header checksum mismatch (stored 0x%016llx, computed 0x%016llx)",
                       path, (unsigned long long)want, (unsigned long long)got);
    uint32_t version = get_u32(in + 8);
    if (version != JOURNAL_VERSION)
        return err_set(TIND_CORRUPTION, "journal %s offset 0: unsupported format version %u (expected %u)", path,
                       version, JOURNAL_VERSION);
    uint32_t reserved = get_u32(in + 12);
    if (reserved != 0)
        return err_set(TIND_CORRUPTION, "journal %s offset 0: reserved header field is 0x%08x, not zero", path,
                       reserved);
    h->number = get_u64(in + 16);
    h->base_seq = get_u64(in + 24);
    return TIND_OK;
}

void journal_record_header_encode(uint8_t *out, const uint8_t *p, size_t n) { record_header_encode(out, p, n); }

void journal_file_name(char *out, uint64_t number)
{
    snprintf(out, JOURNAL_NAME_LEN + 1, "%016llx" JOURNAL_SUFFIX, (unsigned long long)number);
}

/* Only the exact form journal_file_name writes is accepted (lower-case hex,
 * 16 digits), so that names and numbers map one to one and the string order
 * of names is their numeric order. */
int journal_parse_name(const char *name, uint64_t *number)
{
    return file_parse_numbered(name, JOURNAL_SUFFIX, number);
}
