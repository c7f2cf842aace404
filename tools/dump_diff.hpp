// Differences between two JSON page-table dumps (`mmemu diff`): the dumps `mmemu run
// --dump-pgtables WHEN --format json` writes (one object per line) and the `dump` steps of
// `mmemu script --format json`. Owns reading those files (several dumps per file, picked by
// FILE:N), the comparison as a structured result, and its text and JSON renderings.
// What may fail: reading (missing file, bad JSON, no dump in it, an ambiguous file without
// :N, a malformed dump), returned as a one-line message; nothing is left behind. Comparing
// and rendering do not fail: a field a dump lacks compares as absent.
#pragma once

#include <cstdint>
#include <expected>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mmemu::dump {

using json = nlohmann::json;

// One dump, whichever command wrote it. Sections a dump does not hold are null (a script's
// `dump p vmas` has no page tables); only sections both dumps hold are compared.
struct DumpDoc {
  std::string where;  // "FILE:N" (N counts dumps in the file, from 1)
  std::string label;  // run: "<kind> pid P: <label>"; script: "line L: <statement>"
  std::string arch;   // "x86_64" or "arm64"
  json counters;      // mm_counters_json (plus "machine" counters for script dumps)
  json vmas;          // vmas_json: {"vmas": [...], "map_count", ...}
  json pgtables;      // pgtables_json: {"tables": [...], ...}
  // The dump as `mmemu run --format json` writes one (dump, pid, label, detail, arch,
  // counters, vmas, pgtables, and tree when the dump has it): a run's dump as it was read, a
  // script's dump step reshaped ("dump": "script"), for renderers that take run dumps.
  json run_shaped;
};

// Every dump in `text` (a file's contents): one JSON value per line, or the whole text as
// one value (an object, or an array of them). Lines that are script steps other than dump
// are skipped. `name` is used for DumpDoc::where and in messages.
std::expected<std::vector<DumpDoc>, std::string> parse_dumps(const std::string& text,
                                                             const std::string& name);

// `spec` is FILE or FILE:N. A FILE holding several dumps needs :N; the message then lists
// how many it holds and their labels. A FILE that exists is never read as FILE:N.
std::expected<DumpDoc, std::string> load_dump(const std::string& spec);

// A page table, identified by level and the VA span it covers (its frame may differ).
struct TableDiff {
  char op = '+';  // '+' allocated (only in B), '-' freed (only in A), '~' other frame
  std::string level;
  std::uint64_t va_start = 0, va_last = 0;
  std::optional<std::uint64_t> frame_a, frame_b;
  std::optional<std::uint64_t> used_a, used_b;
  // Freed ('-') while entries in it still mapped pages of a VMA: B's dump lists it among
  // the tables freed in use (a page-table use-after-free on Linux), with this many entries.
  bool freed_in_use = false;
  std::size_t in_use_entries = 0;
};

// One side of an entry (or of a run of entries).
struct EntrySide {
  std::uint64_t raw = 0;    // the first entry's
  std::uint64_t frame = 0;  // the first entry's frame (leaf) or table (upper level)
  std::uint64_t frame_last = 0;
  bool present = true;
  std::string prot;  // leaf entries: "rw-" etc. with young/dirty, as the dumps say
  std::string bits;  // decoded from raw for the arch
  std::string kind;  // leaf entries: anon, file, zero-page, ...
  std::int64_t mapcount = 0;
};

// A run of entries of one table with the same kind of change: consecutive indices, frames
// stepping together (or staying), the same prot and bit changes.
struct EntryDiff {
  char op = '~';      // '+' newly used, '-' cleared, '~' changed
  std::string level;  // of the table holding the entries
  std::uint64_t table_va = 0;
  unsigned first = 0, last = 0;
  std::uint64_t va_start = 0, va_last = 0;
  std::optional<EntrySide> a, b;
  std::vector<std::string> changed;  // among frame, prot, bits, kind, mapcount
  std::vector<std::string> bits_added, bits_removed;
};

struct VmaSide {
  std::uint64_t start = 0, end = 0;
  std::string perms, flags, name;
  json anon_vma;  // id or null
  json raw;       // the dump's object
};

struct VmaDiff {
  // "added", "removed", "split" (one A into several B), "merged" (several A into one B),
  // "resized" (one A, one B, other bounds), "reshaped" (several into several), "changed"
  // (same bounds, other fields).
  std::string op;
  std::vector<VmaSide> a, b;
  std::vector<std::string> changed;  // "changed": which of perms, flags, anon_vma, name, ...
};

struct CounterDiff {
  std::string name;  // dotted: "rss.anon", "tables.pte", "machine.live.vma"
  json old_value, new_value;
  std::optional<std::int64_t> delta;  // numbers only
};

struct DiffResult {
  std::string arch;
  std::string label_a, label_b, where_a, where_b;
  std::vector<std::string> not_compared;  // sections only one side holds
  std::vector<TableDiff> tables;
  std::vector<EntryDiff> entries;
  std::vector<VmaDiff> vmas;
  std::vector<CounterDiff> counters;
  bool empty() const {
    return tables.empty() && entries.empty() && vmas.empty() && counters.empty();
  }
};

// Compares A to B. Both must be of one arch (else an error message).
std::expected<DiffResult, std::string> diff_dumps(const DumpDoc& a, const DumpDoc& b);

std::string diff_text(const DiffResult& d);
json diff_json(const DiffResult& d);

}  // namespace mmemu::dump
