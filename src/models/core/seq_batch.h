// Which sequences one cached forward advances: per sequence its state slot, its start
// position and its token count. Rows of the forward are sequence-major: the tokens of run 0,
// then those of run 1, ... A run of one token is a decode row; longer runs are prompt chunks.
#pragma once
#include <cstdint>
#include <vector>

#include "base/error.h"

namespace pf {

struct SeqRun {
  int64_t slot = 0;  // state slot in the StatePool
  int64_t pos = 0;   // tokens the slot holds before this run
  int64_t len = 1;   // tokens in this call
};

// Consecutive rows that one kernel call handles: several decode rows at once (each with
// its own slot and position), or one prompt chunk.
struct RowGroup {
  int64_t row0 = 0, rows = 0;
  bool decode = false;
  std::vector<int64_t> slots;      // (rows) decode: slot of each row; chunk: its one slot
  std::vector<int64_t> positions;  // (rows) decode: position of each row; chunk: its start
};

class SeqBatch {
 public:
  SeqBatch() = default;
  SeqBatch(std::initializer_list<SeqRun> runs) {
    for (const SeqRun& r : runs) add(r.slot, r.pos, r.len);
  }
  void add(int64_t slot, int64_t pos, int64_t len) {
    PF_CHECK(len > 0, "a sequence in a batch must have at least one token");
    PF_CHECK(pos >= 0, "a sequence position must be >= 0");
    row0_.push_back(rows_);
    runs_.push_back({slot, pos, len});
    rows_ += len;
    const bool decode = len == 1;
    // Neighbouring decode rows share one group, so step kernels see them as one batch.
    if (!decode || groups_.empty() || !groups_.back().decode)
      groups_.push_back(RowGroup{row0_.back(), 0, decode, {}, {}});
    RowGroup& g = groups_.back();
    g.rows += len;
    g.slots.push_back(slot);
    g.positions.push_back(pos);
  }
  const std::vector<SeqRun>& runs() const { return runs_; }
  const std::vector<RowGroup>& groups() const { return groups_; }
  int64_t row0(size_t run) const { return row0_[run]; }
  int64_t rows() const { return rows_; }
  // Absolute position of every row: (rows).
  std::vector<int64_t> row_positions() const {
    std::vector<int64_t> p;
    p.reserve(rows_);
    for (const SeqRun& r : runs_)
      for (int64_t t = 0; t < r.len; ++t) p.push_back(r.pos + t);
    return p;
  }

 private:
  std::vector<SeqRun> runs_;
  std::vector<int64_t> row0_;
  std::vector<RowGroup> groups_;
  int64_t rows_ = 0;
};

}  // namespace pf
