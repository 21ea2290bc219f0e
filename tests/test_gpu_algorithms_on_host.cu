// The GPU algorithms of kernels/ (keyed reduction by hash table and by sorting, key hashing
// and verification, word tokenizing) run here through HostExec: the same __host__ __device__
// code the GPU runs, executed on the CPU, checked against plain reference implementations.
// They run on every machine; the GPU runs of the same code are in test_cuda_backend.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cuda_check.cuh"
#include "gpu_test_columns.cuh"
#include "grouped_reduce.cuh"
#include "device_window.cuh"
#include "host_exec.cuh"
#include "staging.hpp"
#include "word_count.cuh"

namespace sluice::gpu {
namespace {

struct ReferenceGroup {
  int64_t first_row = 0;
  std::vector<double> acc;  // per fold, as double (the test values are small)
  std::vector<int64_t> valid;
};

/// The reduction as the CPU backend defines it: groups by first appearance.
std::vector<ReferenceGroup> reference(const std::vector<const TestColumn*>& keys, const std::vector<const TestColumn*>& inputs,
                                      const std::vector<FoldView>& folds, size_t rows, const std::vector<int8_t>& signs) {
  std::map<std::string, size_t> index;
  std::vector<ReferenceGroup> groups;
  for (size_t r = 0; r < rows; ++r) {
    std::string key;
    for (const TestColumn* k : keys) key += k->key_text(r) + "\x1f";
    auto [it, inserted] = index.emplace(key, groups.size());
    if (inserted) {
      ReferenceGroup g;
      g.first_row = static_cast<int64_t>(r);
      for (const FoldView& f : folds) {
        g.acc.push_back(f.op == kFoldMin ? INFINITY : f.op == kFoldMax ? -INFINITY : 0.0);
        g.valid.push_back(0);
      }
      groups.push_back(g);
    }
    ReferenceGroup& g = groups[it->second];
    const int sign = signs.empty() ? 1 : signs[r];
    for (size_t f = 0; f < folds.size(); ++f) {
      if (folds[f].op == kFoldCountRows) {
        g.acc[f] += sign;
        continue;
      }
      const TestColumn& in = *inputs[f];
      if (!in.valid(r)) continue;
      const double v = in.type == kInt64 ? static_cast<double>(in.i64[r]) : in.f64[r];
      g.valid[f]++;
      switch (folds[f].op) {
        case kFoldSum: g.acc[f] += sign * v; break;
        case kFoldCountValid: g.acc[f] += sign; break;
        case kFoldMin:  // NaN above every number
          if (g.valid[f] == 1 || v < g.acc[f] || (std::isnan(g.acc[f]) && !std::isnan(v))) g.acc[f] = v;
          break;
        case kFoldMax:
          if (g.valid[f] == 1 || v > g.acc[f] || (std::isnan(v) && !std::isnan(g.acc[f]))) g.acc[f] = v;
          break;
      }
    }
  }
  return groups;
}

double result_value(const GroupedResult& r, const FoldView& f, size_t fold, size_t group) {
  const uint64_t bits = r.accumulators[fold * r.groups + group];
  return f.float_acc ? as_double(bits) : static_cast<double>(static_cast<int64_t>(bits));
}

void expect_matches(const GroupedResult& got, const std::vector<ReferenceGroup>& want, const std::vector<FoldView>& folds) {
  ASSERT_EQ(got.groups, want.size());
  for (size_t g = 0; g < want.size(); ++g) {
    ASSERT_EQ(got.first_row[g], want[g].first_row) << "group " << g;
    for (size_t f = 0; f < folds.size(); ++f) {
      if ((folds[f].op == kFoldMin || folds[f].op == kFoldMax) && want[g].valid[f] == 0) continue;  // no value: identity
      const double got_value = result_value(got, folds[f], f, g);
      if (std::isnan(want[g].acc[f])) {
        EXPECT_TRUE(std::isnan(got_value)) << "group " << g << " fold " << f;
        continue;
      }
      EXPECT_NEAR(got_value, want[g].acc[f], 1e-6 * (1 + std::abs(want[g].acc[f]))) << "group " << g << " fold " << f;
    }
  }
  EXPECT_EQ(got.key_collisions, 0u);
}

FoldView fold(int32_t op, const TestColumn* in, bool float_acc) {
  FoldView f;
  f.op = op;
  f.float_acc = float_acc ? 1 : 0;
  if (in) f.input = in->view();
  return f;
}

class GroupedReduceOnHost : public ::testing::TestWithParam<GroupStrategy> {};

TEST_P(GroupedReduceOnHost, Int64KeysAllFoldsManySizesAndCardinalities) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    for (size_t rows : {size_t{1}, size_t{7}, size_t{1000}, size_t{20011}}) {
      for (int64_t keys : {int64_t{1}, int64_t{13}, int64_t{5000}}) {
        std::mt19937_64 rng(seed);
        std::vector<int64_t> k(rows), v(rows);
        std::vector<double> d(rows);
        for (size_t r = 0; r < rows; ++r) {
          k[r] = static_cast<int64_t>(rng() % static_cast<uint64_t>(keys)) - 3;  // negative keys, and -1 (the empty-slot bits)
          v[r] = static_cast<int64_t>(rng() % 2001) - 1000;
          d[r] = rng() % 97 == 0 ? NAN : static_cast<double>(rng() % 10000) / 7.0 - 500;
        }
        TestColumn key = int64_column(k), value = int64_column(v), dv = float64_column(d);
        for (size_t r = 0; r < rows; r += 5) set_null(value, r);
        std::vector<FoldView> folds{fold(kFoldSum, &value, false), fold(kFoldMin, &value, false), fold(kFoldMax, &value, false),
                                    fold(kFoldCountValid, &value, false), fold(kFoldSum, &dv, true), fold(kFoldMin, &dv, true),
                                    fold(kFoldMax, &dv, true), fold(kFoldCountRows, nullptr, false)};
        GroupedInput in;
        in.rows = rows;
        in.keys = {key.view()};
        in.folds = folds;
        in.strategy = GetParam();
        HostExec exec;
        const GroupedResult got = grouped_reduce(exec, in);
        SCOPED_TRACE("seed " + std::to_string(seed) + " rows " + std::to_string(rows) + " keys " + std::to_string(keys));
        expect_matches(got, reference({&key}, {&value, &value, &value, &value, &dv, &dv, &dv, nullptr}, folds, rows, {}), folds);
        if (GetParam() != GroupStrategy::Auto) EXPECT_EQ(got.strategy, GetParam());
      }
    }
  }
}

/// Reduces random rows (keys in [-3, keys - 3), -1 among them: the empty slot's bits; every
/// third value null) by the hash strategy through @p exec, and checks every kind of aggregate
/// against the reference.
template <class Exec>
void expect_hash_strategy_matches(Exec& exec, size_t rows, int64_t keys, uint64_t seed, bool hashed_keys,
                                  GroupStrategy strategy = GroupStrategy::Hash) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> k(rows), v(rows);
  std::vector<double> d(rows);
  for (size_t r = 0; r < rows; ++r) {
    k[r] = static_cast<int64_t>(rng() % static_cast<uint64_t>(keys)) - 3;
    v[r] = static_cast<int64_t>(rng() % 2001) - 1000;
    d[r] = static_cast<double>(rng() % 10000) / 7.0 - 500;
  }
  TestColumn key = int64_column(k), value = int64_column(v), dv = float64_column(d);
  for (size_t r = 0; r < rows; r += 3) set_null(value, r);
  std::vector<FoldView> folds{fold(kFoldSum, &value, false), fold(kFoldMin, &value, false), fold(kFoldMax, &value, false),
                              fold(kFoldSum, &dv, true),     fold(kFoldMin, &dv, true),     fold(kFoldMax, &dv, true),
                              fold(kFoldCountRows, nullptr, false)};
  GroupedInput in;
  in.rows = rows;
  in.keys = {key.view()};
  in.folds = folds;
  in.strategy = strategy;
  in.force_hashed_keys = hashed_keys;
  const GroupedResult got = grouped_reduce(exec, in);
  EXPECT_EQ(got.strategy, GroupStrategy::Hash);
  expect_matches(got, reference({&key}, {&value, &value, &value, &dv, &dv, &dv, nullptr}, folds, rows, {}), folds);
}

// The hash strategy folds each block's rows into a table in the block's shared memory and
// sends a row whose key finds no room there to the device table; whatever the size of the
// blocks' tables, their probe runs (short for a chosen strategy's hashed keys, which are
// expected to be as many as the rows; long or short for sampled ones) and however many
// blocks share the rows, the groups are the same, for hashed keys and for exact ones (in
// direct tables where their range fits).
TEST(BlockTablesOnHost, AnyBlockTableSizeAndBlockCountGiveTheSameGroups) {
  for (size_t shared_bytes : {size_t{0}, size_t{1024}, size_t{8192}, size_t{96 * 1024}}) {
    for (int blocks : {1, 5}) {
      for (int64_t keys : {int64_t{13}, int64_t{700}, int64_t{5000}}) {
        for (GroupStrategy strategy : {GroupStrategy::Hash, GroupStrategy::Auto}) {
          for (bool hashed : {true, false}) {
            SCOPED_TRACE("shared " + std::to_string(shared_bytes) + " blocks " + std::to_string(blocks) + " keys " +
                         std::to_string(keys) + (strategy == GroupStrategy::Auto ? " sampled" : " chosen") +
                         (hashed ? " hashed" : " exact"));
            HostExec exec;
            exec.limits.multiprocessors = blocks;
            exec.limits.max_shared_bytes = shared_bytes;
            expect_hash_strategy_matches(exec, 20011, keys, static_cast<uint64_t>(keys) + shared_bytes + static_cast<uint64_t>(blocks),
                                         hashed, strategy);
          }
        }
      }
    }
  }
}

// A hashed block table probes eight slots where the expected keys fit at half load, two
// where they do not: then most rows find no slot, and each probe is a 64-bit compare-and-swap.
TEST(BlockTablesOnHost, KeysBeyondHalfTheTableProbeTwoSlotsNotEight) {
  EXPECT_EQ(block_probe_limit(1000, 4096), 8u);
  EXPECT_EQ(block_probe_limit(2048, 4096), 8u);
  EXPECT_EQ(block_probe_limit(2049, 4096), 2u);
  EXPECT_EQ(block_probe_limit(49000, 4096), 2u);  // word count's 50k even words
  EXPECT_EQ(block_probe_limit(1, 0), 2u);        // no table: no probe is made at all
}

/// HostExec, except that block kernels run as on a GPU: every block at once, every thread of
/// a block its own thread, a barrier between phases. It reaches what the sequential
/// schedule cannot: two threads claiming one slot, a block flushing while others probe.
/// Blocks have 256 threads, not the GPU's Kernel::kThreads (a kernel strides by the threads
/// it is given): enough for a plain load-and-store compare-and-swap to fail the test on two
/// cores, half the threads a launch would start otherwise.
class ConcurrentHostExec : public HostExec {
 public:
  static constexpr int32_t kThreadsPerBlock = 256;

  template <class Kernel> void launch_blocks(const Kernel& kernel, int64_t blocks, size_t shared_bytes) {
    std::vector<std::vector<unsigned char>> shared(static_cast<size_t>(blocks), std::vector<unsigned char>(shared_bytes + 16, 0xA5));
    std::vector<std::unique_ptr<BlockBarrier>> barriers;
    for (int64_t b = 0; b < blocks; ++b) barriers.push_back(std::make_unique<BlockBarrier>(kThreadsPerBlock));
    std::vector<std::thread> threads;
    try {
      for (int64_t b = 0; b < blocks; ++b) {
        for (int32_t t = 0; t < kThreadsPerBlock; ++t) {
          threads.emplace_back([&, b, t] {
            BlockThread at;
            at.block = b;
            at.blocks = blocks;
            at.thread = t;
            at.threads = kThreadsPerBlock;
            for (int phase = 0; phase < Kernel::kPhases; ++phase) {
              if (phase > 0 && !barriers[static_cast<size_t>(b)]->arrive_and_wait()) return;
              kernel(phase, at, shared[static_cast<size_t>(b)].data());
            }
          });
        }
      }
    } catch (...) {  // no thread could be started: release the ones waiting, then report
      for (auto& barrier : barriers) barrier->abandon();
      for (std::thread& thread : threads) thread.join();
      throw;
    }
    for (std::thread& thread : threads) thread.join();
  }

 private:
  class BlockBarrier {
   public:
    explicit BlockBarrier(int count) : count_(count) {}
    /// Waits for the block's other threads; false when the launch was abandoned.
    bool arrive_and_wait() {
      std::unique_lock lock(mutex_);
      const int generation = generation_;
      if (++arrived_ == count_) {
        arrived_ = 0;
        ++generation_;
        released_.notify_all();
        return true;
      }
      released_.wait(lock, [&] { return generation_ != generation || abandoned_; });
      return !abandoned_;
    }
    void abandon() {
      std::lock_guard lock(mutex_);
      abandoned_ = true;
      released_.notify_all();
    }

   private:
    std::mutex mutex_;
    std::condition_variable released_;
    const int count_;
    int arrived_ = 0;
    int generation_ = 0;
    bool abandoned_ = false;
  };
};

// Sampled (Auto) hashed keys reach the long probe runs (block_probe_limit) where they are few.
TEST(BlockTablesOnHost, BlocksAndThreadsRunningAtOnceGiveTheSameGroups) {
  for (size_t shared_bytes : {size_t{0}, size_t{2048}, size_t{96 * 1024}}) {
    for (int64_t keys : {int64_t{3}, int64_t{700}, int64_t{5000}}) {
      for (bool hashed : {false, true}) {
        for (GroupStrategy strategy : {GroupStrategy::Hash, GroupStrategy::Auto}) {
          SCOPED_TRACE("shared " + std::to_string(shared_bytes) + " keys " + std::to_string(keys) + (hashed ? " hashed" : " exact") +
                       (strategy == GroupStrategy::Auto ? " sampled" : " chosen"));
          ConcurrentHostExec exec;
          exec.limits.multiprocessors = 4;
          exec.limits.max_shared_bytes = shared_bytes;
          expect_hash_strategy_matches(exec, 30011, keys, static_cast<uint64_t>(keys) * 31 + shared_bytes, hashed, strategy);
        }
      }
    }
  }
}

// A block table adds integers to two 32-bit words, the low half's carry going to the high
// half (block_add_split): values of every size and sign, from threads adding at once, give
// the 64-bit sum exactly, wrapping as int64 addition does on the CPU.
TEST(BlockTablesOnHost, SplitWordAddsCarryAndWrapExactlyFromThreadsAtOnce) {
  constexpr int kThreads = 8;
  constexpr int kAddsEach = 20000;
  std::vector<std::vector<uint64_t>> values(kThreads);
  uint64_t want = 0xFFFFFFFF00000005ULL;  // a start whose low half is about to carry
  for (int t = 0; t < kThreads; ++t) {
    std::mt19937_64 rng(static_cast<uint64_t>(t) + 11);
    for (int i = 0; i < kAddsEach; ++i) {
      const uint64_t r = rng();
      // Small of either sign, low halves near a carry, and anything at all.
      const uint64_t v = i % 3 == 0 ? static_cast<uint64_t>(static_cast<int64_t>(r % 2001) - 1000) : i % 3 == 1 ? (r | 0xFFFFFF00ULL) & 0xFFFFFFFFULL : r;
      values[static_cast<size_t>(t)].push_back(v);
      want += v;
    }
  }
  uint32_t words[2] = {0x00000005u, 0xFFFFFFFFu};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (uint64_t v : values[static_cast<size_t>(t)]) block_add_split(words, v);
    });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(static_cast<uint64_t>(words[1]) << 32 | words[0], want);
}

// Integer sums and counts of the hash strategy, through block tables and the device table,
// with values anywhere in int64 and rows that subtract (one key's only): exact, as the CPU's
// wrapping sums.
TEST(BlockTablesOnHost, IntegerSumsAndCountsAreExactOverAllOf64Bits) {
  const size_t rows = 30011;
  const int64_t keys = 7;
  std::mt19937_64 rng(5);
  std::vector<int64_t> k(rows), v(rows);
  std::vector<int8_t> signs(rows);
  for (size_t r = 0; r < rows; ++r) {
    k[r] = static_cast<int64_t>(rng() % keys);
    v[r] = r % 4 == 0 ? std::numeric_limits<int64_t>::min() + static_cast<int64_t>(rng() % 3) : static_cast<int64_t>(rng());
    signs[r] = k[r] == 0 || rng() % 3 == 0 ? -1 : 1;  // key 0's counts go below zero in every tile
  }
  std::map<int64_t, std::pair<uint64_t, uint64_t>> want;  // key -> (sum, count), wrapping
  for (size_t r = 0; r < rows; ++r) {
    want[k[r]].first += static_cast<uint64_t>(signs[r]) * static_cast<uint64_t>(v[r]);
    want[k[r]].second += static_cast<uint64_t>(static_cast<int64_t>(signs[r]));
  }
  TestColumn key = int64_column(k), value = int64_column(v);
  for (size_t shared_bytes : {size_t{0}, size_t{96 * 1024}}) {
    for (bool concurrent : {false, true}) {
      SCOPED_TRACE("shared " + std::to_string(shared_bytes) + (concurrent ? ", threads at once" : ", threads in turn"));
      GroupedInput in;
      in.rows = rows;
      in.keys = {key.view()};
      in.folds = {fold(kFoldSum, &value, false), fold(kFoldCountRows, nullptr, false)};
      in.row_sign = signs.data();
      in.strategy = GroupStrategy::Hash;
      ConcurrentHostExec concurrent_exec;
      HostExec sequential_exec;
      HostExec& exec = concurrent ? concurrent_exec : sequential_exec;
      exec.limits.multiprocessors = 4;
      exec.limits.max_shared_bytes = shared_bytes;
      const GroupedResult got = concurrent ? grouped_reduce(concurrent_exec, in) : grouped_reduce(sequential_exec, in);
      ASSERT_EQ(got.groups, want.size());
      for (size_t g = 0; g < got.groups; ++g) {
        const int64_t group_key = k[static_cast<size_t>(got.first_row[g])];
        EXPECT_EQ(got.accumulators[g], want[group_key].first) << "key " << group_key;
        EXPECT_EQ(got.accumulators[got.groups + g], want[group_key].second) << "key " << group_key;
      }
    }
  }
}

/// Float min and max of three groups whose values tie as numbers but not as bits (0.0 and
/// -0.0; NaNs of either sign and any payload), @p copies rows of each value in the order
/// given or reversed, through @p exec with @p strategy: -0.0 is below 0.0 and every NaN comes
/// out as the one quiet NaN, as in the CPU backend, whichever row or thread comes first.
template <class Exec> void expect_order_free_float_extremes(Exec& exec, GroupStrategy strategy, size_t copies) {
  const uint64_t negative_nan = 0xFFF8000000000001ULL, payload_nan = 0x7FF00000DEADBEEFULL;
  const std::vector<std::vector<uint64_t>> groups{{double_bits(0.0), double_bits(-0.0), double_bits(0.0)},
                                                  {negative_nan, double_bits(1.0)},
                                                  {payload_nan, negative_nan}};
  for (const bool reversed : {false, true}) {
    std::vector<int64_t> k;
    std::vector<double> v;
    for (size_t c = 0; c < copies; ++c)
      for (size_t g = 0; g < groups.size(); ++g)
        for (uint64_t bits : groups[g]) {
          k.push_back(static_cast<int64_t>(g));
          v.push_back(as_double(bits));
        }
    if (reversed) {
      std::reverse(k.begin(), k.end());
      std::reverse(v.begin(), v.end());
    }
    TestColumn key = int64_column(k), value = float64_column(v);
    GroupedInput in;
    in.rows = k.size();
    in.keys = {key.view()};
    in.folds = {fold(kFoldMin, &value, true), fold(kFoldMax, &value, true)};
    in.strategy = strategy;
    const GroupedResult got = grouped_reduce(exec, in);
    ASSERT_EQ(got.groups, 3u);
    std::map<int64_t, std::pair<uint64_t, uint64_t>> extremes;  // key -> (min bits, max bits)
    for (size_t g = 0; g < 3; ++g)
      extremes[k[static_cast<size_t>(got.first_row[g])]] = {got.accumulators[g], got.accumulators[3 + g]};
    SCOPED_TRACE(std::string(reversed ? "rows reversed" : "rows in order") + ", " + std::to_string(copies) + " copies");
    EXPECT_EQ(extremes[0], std::make_pair(double_bits(-0.0), double_bits(0.0)));
    EXPECT_EQ(extremes[1], std::make_pair(double_bits(1.0), kCanonicalNaNBits));
    EXPECT_EQ(extremes[2], std::make_pair(kCanonicalNaNBits, kCanonicalNaNBits));
  }
}

TEST(FloatExtremesOnHost, SignedZerosAndNaNPayloadsGiveOneResultInAnyOrder) {
  for (GroupStrategy strategy : {GroupStrategy::Hash, GroupStrategy::Sort}) {
    HostExec exec;
    expect_order_free_float_extremes(exec, strategy, 1);
  }
  ConcurrentHostExec exec;  // threads of several blocks folding into the tables at once
  exec.limits.multiprocessors = 4;
  expect_order_free_float_extremes(exec, GroupStrategy::Hash, 3000);
}

// A block's table is sized from the expected keys, within what leaves room for two blocks on
// a multiprocessor.
TEST(BlockTablesOnHost, TableSlotsFollowTheExpectedKeysWithinHalfTheSharedMemory) {
  DeviceLimits limits;  // an H100's or H200's
  limits.max_shared_bytes = 227 * 1024;
  limits.shared_bytes_per_multiprocessor = 228 * 1024;
  limits.reserved_shared_bytes_per_block = 1024;
  EXPECT_EQ(shared_bytes_for_two_blocks(limits), 113u * 1024);
  const uint32_t for_1k_keys = block_table_slots(limits, 1000, 2);
  EXPECT_EQ(for_1k_keys, 4096u);  // a quarter full, in 115 KB: two blocks a multiprocessor
  EXPECT_LE(BlockHashFold::shared_bytes(for_1k_keys, 2), shared_bytes_for_two_blocks(limits));
  EXPECT_EQ(block_table_slots(limits, 4000, 2), 4096u);  // 8192 slots would need 229 KB
  EXPECT_EQ(block_table_slots(limits, 10, 2), 64u);
  limits.max_shared_bytes = 50;  // not even two slots (84 bytes with two folds)
  EXPECT_EQ(block_table_slots(limits, 1000, 2), 0u);  // no room: every row goes to the device table
}

// A direct block table starts so that the sampled keys sit in its middle, wrapping as the
// keys' uint64 bits do; a sampled range wider than the table gets no direct table.
TEST(DirectBlockTablesOnHost, TheTableIsCentredOnTheSampledRangeAndWraps) {
  EXPECT_EQ(direct_table_base(KeyRange{0, 999}, 4096), static_cast<uint64_t>(int64_t{-1548}));  // 0..999 in slots 1548..2547
  EXPECT_EQ(direct_table_base(KeyRange{7, 7}, 64), uint64_t{7} - 31);
  EXPECT_EQ(direct_table_base(KeyRange{0, 4095}, 4096), uint64_t{0});  // exactly full
  EXPECT_FALSE(direct_table_base(KeyRange{0, 4096}, 4096).has_value());
  EXPECT_FALSE(direct_table_base(KeyRange{5, 5}, 0).has_value());  // no block table at all
  const int64_t lowest = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(direct_table_base(KeyRange{lowest, lowest + 9}, 64), static_cast<uint64_t>(lowest) - 27);  // below INT64_MIN: wraps
  EXPECT_FALSE(direct_table_base(KeyRange{lowest, std::numeric_limits<int64_t>::max()}, 1u << 20).has_value());
}

/// Reduces int64 keys @p k (with random values, every third null) by every kind of aggregate
/// with @p strategy through @p exec, checks the groups against the reference, and their keys
/// against their first rows' (a window or a running state merges batches by them). Returns
/// the result for what it says of the strategy.
template <class Exec> GroupedResult expect_exact_keys_reduce_exactly(Exec& exec, const std::vector<int64_t>& k, GroupStrategy strategy) {
  const size_t rows = k.size();
  std::mt19937_64 rng(rows);
  std::vector<int64_t> v(rows);
  std::vector<double> d(rows);
  for (size_t r = 0; r < rows; ++r) {
    v[r] = static_cast<int64_t>(rng() % 2001) - 1000;
    d[r] = static_cast<double>(rng() % 10000) / 7.0 - 500;
  }
  TestColumn key = int64_column(k), value = int64_column(v), dv = float64_column(d);
  for (size_t r = 0; r < rows; r += 3) set_null(value, r);
  const std::vector<FoldView> folds{fold(kFoldSum, &value, false), fold(kFoldMin, &value, false), fold(kFoldMax, &value, false),
                                    fold(kFoldSum, &dv, true),     fold(kFoldCountValid, &value, false), fold(kFoldCountRows, nullptr, false)};
  GroupedInput in;
  in.rows = rows;
  in.keys = {key.view()};
  in.folds = folds;
  in.strategy = strategy;
  const auto groups = grouped_reduce_in_place(exec, in);
  const GroupedResult got = download_groups(exec, groups);
  expect_matches(got, reference({&key}, {&value, &value, &value, &dv, &value, nullptr}, folds, rows, {}), folds);
  for (size_t g = 0; g < got.groups; ++g)
    EXPECT_EQ(static_cast<int64_t>(groups.key.data()[g]), k[static_cast<size_t>(got.first_row[g])]) << "group " << g;
  return got;
}

/// Limits under which a block table holds 1024 slots of expect_exact_keys_reduce_exactly's
/// six aggregates (60 B each), for 4 blocks.
template <class Exec> Exec& with_small_block_tables(Exec& exec) {
  exec.limits.multiprocessors = 4;
  exec.limits.max_shared_bytes = 96 * 1024;
  return exec;
}

// Exact keys within a range that fits a block table fold into direct tables (no key probe),
// with every kind of aggregate equal to the reference: ranges around 0 (with -1, the empty
// slot's bits, an ordinary key there), at both ends of int64 (the table's start wraps), and
// rows whose keys the sample never saw, inside the table's margin or far outside (those fold
// into the device table). A range wider than the table is hashed as before.
TEST(DirectBlockTablesOnHost, ExactKeysInASmallRangeFoldWhereverTheyFall) {
  const size_t rows = 20011;
  std::vector<bool> sampled(rows, false);  // the rows of the 4096-key sample
  for (int64_t i = 0; i < 4096; ++i) sampled[static_cast<size_t>(sampled_row(i, rows, 4096))] = true;
  const int64_t lowest = std::numeric_limits<int64_t>::min(), highest = std::numeric_limits<int64_t>::max();
  struct Case {
    const char* name;
    int64_t first_key;
    int64_t keys;
    bool unsampled_outliers;
    bool direct;
  };
  for (const Case& c : {Case{"around zero", -3, 1000, false, true}, Case{"at INT64_MIN", lowest, 600, false, true},
                        Case{"at INT64_MAX", highest - 599, 600, false, true}, Case{"with keys the sample missed", -3, 900, true, true},
                        Case{"wider than the table", 0, 20000, false, false}}) {
    std::mt19937_64 rng(static_cast<uint64_t>(c.keys));
    std::vector<int64_t> k(rows);
    for (size_t r = 0; r < rows; ++r) {
      k[r] = static_cast<int64_t>(static_cast<uint64_t>(c.first_key) + rng() % static_cast<uint64_t>(c.keys));
      if (c.unsampled_outliers && !sampled[r] && r % 2 == 1) {
        const uint64_t pick = rng() % 4;
        // Beyond the table's margin, within it, far away, and at the far end of int64.
        k[r] = pick == 0 ? c.first_key - 100 : pick == 1 ? c.first_key + c.keys + 5 : pick == 2 ? int64_t{1} << 40 : lowest;
      }
    }
    for (GroupStrategy strategy : {GroupStrategy::Auto, GroupStrategy::Hash}) {
      for (bool concurrent : {false, true}) {
        SCOPED_TRACE(std::string(c.name) + (strategy == GroupStrategy::Auto ? ", auto" : ", hash") +
                     (concurrent ? ", threads at once" : ", threads in turn"));
        ConcurrentHostExec concurrent_exec;
        HostExec sequential_exec;
        const GroupedResult got = concurrent ? expect_exact_keys_reduce_exactly(with_small_block_tables(concurrent_exec), k, strategy)
                                             : expect_exact_keys_reduce_exactly(with_small_block_tables(sequential_exec), k, strategy);
        if (strategy == GroupStrategy::Hash || c.direct) EXPECT_EQ(got.strategy, GroupStrategy::Hash);
        EXPECT_EQ(got.direct_block_tables, c.direct);
        // A range too wide for a block table has a direct device table.
        EXPECT_EQ(got.direct_device_table, !c.direct);
      }
    }
  }
}

// Exact keys too many for a block table, in a range whose direct device table stays in half
// the L2 cache, each get their own slot of it: ranges with gaps, at both ends of int64, with an
// unsampled key that widens the range (still within the cache) and one that widens it far
// beyond (then the keys are hashed or sorted as before). The sample alone decides against
// the pass over the keys when its range is already too wide, or its keys too few for the
// range (100 keys spread over a million values stay in a small hashed table).
TEST(DirectDeviceTableOnHost, ManyExactKeysInARangeThatStaysInCacheEachHaveASlot) {
  const size_t rows = 100003;
  ASSERT_LT(sampled_row(4095, rows, 4096), static_cast<int64_t>(rows) - 2);  // the outliers' row is never sampled
  const int64_t lowest = std::numeric_limits<int64_t>::min(), highest = std::numeric_limits<int64_t>::max();
  struct Case {
    const char* name;
    int64_t first_key;
    uint64_t spacing;  // between the keys
    uint64_t keys;
    int64_t outlier;  // the key of one unsampled row; 0: none
    bool direct;
  };
  for (const Case& c : {Case{"with gaps around zero", -5000, 3, 20000, 0, true}, Case{"at INT64_MIN", lowest, 1, 20000, 0, true},
                        Case{"at INT64_MAX", highest - 19999, 1, 20000, 0, true},
                        Case{"an unsampled key widening the range within the cache", 0, 1, 20000, 150000, true},
                        Case{"an unsampled key far away", 0, 1, 20000, int64_t{1} << 50, false},
                        Case{"a sampled range too wide", 0, 1'000'000'000, 20000, 0, false},
                        Case{"few keys spread wide", 0, 10000, 100, 0, false}}) {
    std::mt19937_64 rng(c.spacing + 7);
    std::vector<int64_t> k(rows);
    for (size_t r = 0; r < rows; ++r) k[r] = static_cast<int64_t>(static_cast<uint64_t>(c.first_key) + c.spacing * (rng() % c.keys));
    if (c.outlier != 0) k[rows - 2] = c.outlier;
    for (bool concurrent : {false, true}) {
      SCOPED_TRACE(std::string(c.name) + (concurrent ? ", threads at once" : ", threads in turn"));
      ConcurrentHostExec concurrent_exec;
      HostExec sequential_exec;
      const GroupedResult got = concurrent ? expect_exact_keys_reduce_exactly(with_small_block_tables(concurrent_exec), k, GroupStrategy::Auto)
                                           : expect_exact_keys_reduce_exactly(with_small_block_tables(sequential_exec), k, GroupStrategy::Auto);
      EXPECT_EQ(got.direct_device_table, c.direct);
      if (c.direct) EXPECT_EQ(got.strategy, GroupStrategy::Hash);
      EXPECT_FALSE(got.direct_block_tables);
      EXPECT_FALSE(got.hash_overflowed);
    }
  }
}

// Exact keys are sorted less their least value over only the bits their range needs (the
// host sort, like CUB's, ignores the bits above), as 32-bit keys where the range fits 32
// bits: a wrong narrowing would split or merge groups.
TEST(ExactKeySortOnHost, KeysFarFromZeroAndKeysSpanningAllOf64BitsGroupExactly) {
  const size_t rows = 9001;
  std::mt19937_64 rng(7);
  std::vector<int64_t> far(rows), spanning(rows), span_of_32_bits(rows), span_of_33_bits(rows);
  const int64_t least = -(int64_t{1} << 40);
  for (size_t r = 0; r < rows; ++r) {
    far[r] = int64_t{1'000'000'000'000'000} + static_cast<int64_t>(rng() % 300) * 4096;
    const int64_t extremes[] = {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), -1, 0};
    spanning[r] = rng() % 2 ? extremes[rng() % 4] : static_cast<int64_t>(rng() % 50);
    // The widest range sorted as 32-bit keys, and one bit more (keys 2^32 apart would meet
    // in 32 bits).
    const int64_t offsets_32[] = {0, 1, int64_t{1} << 31, (int64_t{1} << 32) - 1};
    const int64_t offsets_33[] = {0, 1, int64_t{1} << 32, (int64_t{1} << 32) + 1};
    span_of_32_bits[r] = least + offsets_32[rng() % 4];
    span_of_33_bits[r] = least + offsets_33[rng() % 4];
  }
  for (const std::vector<int64_t>* k : {&far, &spanning, &span_of_32_bits, &span_of_33_bits}) {
    TestColumn key = int64_column(*k);
    std::vector<FoldView> folds{fold(kFoldCountRows, nullptr, false)};
    GroupedInput in;
    in.rows = rows;
    in.keys = {key.view()};
    in.folds = folds;
    in.strategy = GroupStrategy::Sort;
    HostExec exec;
    const GroupedResult got = grouped_reduce(exec, in);
    EXPECT_EQ(got.strategy, GroupStrategy::Sort);
    expect_matches(got, reference({&key}, {nullptr}, folds, rows, {}), folds);
    if (k == &span_of_32_bits || k == &span_of_33_bits) EXPECT_EQ(got.groups, 4u);
    // The groups' keys come back whole, offset added back (a window combines by them).
    const DeviceGroups<HostExec> groups = grouped_reduce_in_place(exec, in);
    for (size_t g = 0; g < groups.groups; ++g)
      EXPECT_EQ(static_cast<int64_t>(groups.key.data()[g]), (*k)[static_cast<size_t>(groups.first_row.data()[g])]) << "group " << g;
  }
}

TEST_P(GroupedReduceOnHost, StringAndNullableMultiColumnKeysAreHashedAndVerified) {
  std::mt19937_64 rng(7);
  const size_t rows = 30001;
  std::vector<std::string> words;
  for (size_t r = 0; r < rows; ++r) {
    const size_t len = rng() % 20;  // empty strings too, and lengths across the 8-byte steps
    std::string w;
    for (size_t i = 0; i < len; ++i) w += static_cast<char>('a' + rng() % 3);
    words.push_back(w);
  }
  TestColumn word = string_column(words);
  std::vector<double> f(rows);
  for (size_t r = 0; r < rows; ++r) f[r] = (rng() % 4 == 0) ? -0.0 : (rng() % 5 == 0 ? NAN : static_cast<double>(rng() % 3));
  TestColumn fk = float64_column(f);
  for (size_t r = 3; r < rows; r += 11) set_null(fk, r);
  for (size_t r = 5; r < rows; r += 13) set_null(word, r);
  TestColumn one = int64_column(std::vector<int64_t>(rows, 1));
  std::vector<FoldView> folds{fold(kFoldSum, &one, false), fold(kFoldCountRows, nullptr, false)};
  GroupedInput in;
  in.rows = rows;
  in.keys = {word.view(), fk.view()};
  in.folds = folds;
  in.strategy = GetParam();
  HostExec exec;
  const GroupedResult got = grouped_reduce(exec, in);
  expect_matches(got, reference({&word, &fk}, {&one, nullptr}, folds, rows, {}), folds);
}

TEST_P(GroupedReduceOnHost, SignedRowsSubtractALeavingPane) {
  // window (+1) + entering pane (+1) + leaving pane (-1): keys whose records reach zero stay
  // as groups with a zero count; the backend drops them.
  TestColumn key = int64_column({1, 2, 3, 1, 2, 1});
  TestColumn sum = int64_column({10, 20, 30, 5, 20, 10});
  std::vector<int8_t> signs{1, 1, 1, 1, -1, -1};
  std::vector<FoldView> folds{fold(kFoldSum, &sum, false), fold(kFoldCountRows, nullptr, false)};
  GroupedInput in;
  in.rows = 6;
  in.keys = {key.view()};
  in.folds = folds;
  in.row_sign = signs.data();
  in.strategy = GetParam();
  HostExec exec;
  const GroupedResult got = grouped_reduce(exec, in);
  expect_matches(got, reference({&key}, {&sum, nullptr}, folds, 6, signs), folds);
  ASSERT_EQ(got.groups, 3u);
  EXPECT_EQ(static_cast<int64_t>(got.accumulators[0 * 3 + 0]), 5);   // key 1: 10 + 5 - 10
  EXPECT_EQ(static_cast<int64_t>(got.accumulators[1 * 3 + 1]), 0);   // key 2: no records left
}

TEST_P(GroupedReduceOnHost, NoKeysIsOneGroupAndNoRowsIsNoGroup) {
  TestColumn v = int64_column({4, 5, 6});
  std::vector<FoldView> folds{fold(kFoldSum, &v, false)};
  GroupedInput in;
  in.rows = 3;
  in.folds = folds;
  in.strategy = GetParam();
  HostExec exec;
  GroupedResult got = grouped_reduce(exec, in);
  ASSERT_EQ(got.groups, 1u);
  EXPECT_EQ(got.first_row[0], 0);
  EXPECT_EQ(static_cast<int64_t>(got.accumulators[0]), 15);
  in.rows = 0;
  got = grouped_reduce(exec, in);
  EXPECT_EQ(got.groups, 0u);
}

/// group_ids on the host, against numbering keys by first appearance.
void expect_group_ids(const std::vector<const TestColumn*>& keys, size_t rows, GroupStrategy strategy) {
  GroupedInput in;
  in.rows = rows;
  for (const TestColumn* k : keys) in.keys.push_back(k->view());
  in.strategy = strategy;
  HostExec exec;
  const DeviceGroupIds<HostExec> got = group_ids(exec, in);
  ASSERT_EQ(got.key_collisions, 0u);
  std::map<std::string, int32_t> id_of_key;
  std::vector<int64_t> first_rows;
  for (size_t r = 0; r < rows; ++r) {
    std::string key;
    for (const TestColumn* k : keys) key += k->key_text(r) + "\x1f";
    auto [it, inserted] = id_of_key.emplace(key, static_cast<int32_t>(first_rows.size()));
    if (inserted) first_rows.push_back(static_cast<int64_t>(r));
    ASSERT_EQ(got.group_of_row.data()[r], it->second) << "row " << r;
  }
  ASSERT_EQ(got.groups, first_rows.size());
  for (size_t g = 0; g < got.groups; ++g) EXPECT_EQ(got.first_row.data()[g], first_rows[g]) << "group " << g;
}

TEST_P(GroupedReduceOnHost, GroupIdsNumberRowsByTheirKeysFirstAppearance) {
  std::mt19937_64 rng(11);
  for (size_t rows : {size_t{1}, size_t{17}, size_t{5000}}) {
    for (uint64_t cardinality : {uint64_t{3}, uint64_t{rows}}) {
      std::vector<int64_t> ints(rows);
      for (auto& v : ints) v = static_cast<int64_t>(rng() % cardinality) - 1;
      const TestColumn exact = int64_column(ints);
      expect_group_ids({&exact}, rows, GetParam());
      std::vector<std::string> words(rows);
      std::vector<double> floats(rows);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t i = rng() % 11; i > 0; --i) words[r] += static_cast<char>('a' + rng() % 2);
        floats[r] = rng() % 5 == 0 ? NAN : rng() % 4 == 0 ? -0.0 : static_cast<double>(rng() % 3);
      }
      TestColumn word = string_column(words);
      TestColumn number = float64_column(floats);
      for (size_t r = 2; r < rows; r += 7) set_null(word, r);
      for (size_t r = 4; r < rows; r += 9) set_null(number, r);
      expect_group_ids({&word, &number}, rows, GetParam());
      const TestColumn nullable_ints = with_nulls(exact, {0});
      expect_group_ids({&nullable_ints}, rows, GetParam());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, GroupedReduceOnHost,
                         ::testing::Values(GroupStrategy::Hash, GroupStrategy::Sort, GroupStrategy::Auto),
                         [](const auto& info) {
                           return info.param == GroupStrategy::Hash ? std::string("Hash")
                                  : info.param == GroupStrategy::Sort ? std::string("Sort")
                                                                      : std::string("Auto");
                         });

TEST(GroupedReduceOnHostChoice, AutoHashesRepeatingKeysAndSortsDistinctOnes) {
  const size_t rows = 100000;
  std::vector<int64_t> few(rows), many(rows);
  for (size_t r = 0; r < rows; ++r) {
    few[r] = static_cast<int64_t>(r % 100);
    many[r] = static_cast<int64_t>(r * 7919);
  }
  TestColumn a = int64_column(few), b = int64_column(many);
  std::vector<FoldView> folds{fold(kFoldCountRows, nullptr, false)};
  HostExec exec;
  exec.limits.l2_cache_bytes = 1 << 20;  // a table for 100k keys would not stay in this cache
  GroupedInput in;
  in.rows = rows;
  in.folds = folds;
  in.keys = {a.view()};
  GroupedResult got = grouped_reduce(exec, in);
  EXPECT_EQ(got.strategy, GroupStrategy::Hash);
  EXPECT_EQ(got.groups, 100u);
  in.keys = {b.view()};
  got = grouped_reduce(exec, in);
  EXPECT_EQ(got.strategy, GroupStrategy::Sort);
  EXPECT_EQ(got.groups, rows);
}

// The groups come out in order of first row, with their keys and aggregates, whether they
// are few enough to be placed by counting (kGroupsPlacedByCounting), many for the rows
// (placed by a scan over the rows), or sorted.
TEST(GatherGroupsOnHost, GroupsComeInOrderOfFirstRowPlacedByCountingScanningOrSorting) {
  for (const auto& [groups, rows] : {std::pair<size_t, size_t>{1, 10}, {2, 20}, {kGroupsPlacedByCounting, 20480},
                                     {kGroupsPlacedByCounting + 1, 20490}, {5000, 50000}, {5000, 40000}, {40000, 45000}}) {
    SCOPED_TRACE(std::to_string(groups) + " groups of " + std::to_string(rows) + " rows");
    const size_t slots = 3 * groups;
    std::mt19937_64 rng(groups + rows);
    std::vector<int64_t> row_pool(rows);
    std::iota(row_pool.begin(), row_pool.end(), 0);
    std::shuffle(row_pool.begin(), row_pool.end(), rng);
    std::vector<int64_t> sources(slots);
    std::iota(sources.begin(), sources.end(), 0);
    std::shuffle(sources.begin(), sources.end(), rng);
    sources.resize(groups);  // the used slots, in no order
    std::vector<int64_t> first_row(slots, -1);  // distinct rows for the used slots
    for (size_t i = 0; i < groups; ++i) first_row[static_cast<size_t>(sources[i])] = row_pool[i];
    std::vector<uint64_t> slot_key(slots), acc(2 * slots);
    for (size_t s = 0; s < slots; ++s) {
      slot_key[s] = rng();
      acc[s] = rng();
      acc[slots + s] = rng();
    }
    HostExec exec;
    DeviceGroups<HostExec> out;
    gather_groups(exec, rows, sources.data(), groups, slot_key.data(), 5, first_row.data(), acc.data(), slots, 2, out);
    std::vector<int64_t> want = sources;
    std::sort(want.begin(), want.end(), [&](int64_t a, int64_t b) { return first_row[static_cast<size_t>(a)] < first_row[static_cast<size_t>(b)]; });
    ASSERT_EQ(out.groups, groups);
    for (size_t g = 0; g < groups; ++g) {
      const size_t s = static_cast<size_t>(want[g]);
      ASSERT_EQ(out.first_row.data()[g], first_row[s]) << g;
      ASSERT_EQ(out.key.data()[g], slot_key[s] + 5) << g;
      ASSERT_EQ(out.accumulators.data()[g], acc[s]) << g;
      ASSERT_EQ(out.accumulators.data()[groups + g], acc[slots + s]) << g;
    }
  }
}

// A sample's keys are counted exactly: distinct ones, those seen once and twice, and the
// least and greatest as int64 (0 and ~0, the bits of -1, are ordinary keys).
TEST(GroupedReduceOnHostChoice, TheSampleCountsItsKeysExactly) {
  const uint64_t minus_one = ~uint64_t{0}, lowest = uint64_t{1} << 63;
  std::vector<uint64_t> sample{5, minus_one, 5, 0, 7, 7, 7, lowest, 0, 12, minus_one};
  std::mt19937_64 rng(4);
  for (int i = 0; i < 3000; ++i) sample.push_back(1000 + rng() % 1500);  // collisions in the table's probe runs
  std::shuffle(sample.begin(), sample.end(), rng);
  std::map<uint64_t, size_t> times;
  for (uint64_t key : sample) times[key]++;
  size_t once = 0, twice = 0;
  int64_t greatest = std::numeric_limits<int64_t>::min();
  for (const auto& [key, n] : times) {
    once += n == 1;
    twice += n == 2;
    greatest = std::max(greatest, static_cast<int64_t>(key));
  }
  const KeySample counts = count_sample(sample);
  EXPECT_EQ(counts.size, sample.size());
  EXPECT_EQ(counts.distinct, times.size());
  EXPECT_EQ(counts.singletons, once);
  EXPECT_EQ(counts.doubletons, twice);
  EXPECT_EQ(counts.least, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(counts.greatest, greatest);
  EXPECT_GT(greatest, 2000);
  EXPECT_EQ(count_sample({}).distinct, 0u);
  EXPECT_EQ(count_sample({minus_one}).least, -1);
}

// The sample's rows spread over the whole batch, increasing, whatever its size: a stride of
// rows / 4096 would sample only the first 4096 rows of a batch of 8191.
TEST(GroupedReduceOnHostChoice, TheSampleSpreadsOverEveryRow) {
  for (uint64_t rows : {uint64_t{4096}, uint64_t{4097}, uint64_t{8191}, uint64_t{100003}, uint64_t{1} << 40}) {
    SCOPED_TRACE(std::to_string(rows) + " rows");
    EXPECT_EQ(sampled_row(0, rows, 4096), 0);
    EXPECT_GE(sampled_row(4095, rows, 4096), static_cast<int64_t>(rows - rows / 4096 - 1));
    EXPECT_LT(sampled_row(4095, rows, 4096), static_cast<int64_t>(rows));
    for (int64_t i = 1; i < 4096; ++i) ASSERT_LT(sampled_row(i - 1, rows, 4096), sampled_row(i, rows, 4096)) << i;
  }
  EXPECT_EQ(sampled_row(4095, 8191, 4096), 8189);
  EXPECT_EQ(sampled_row(7, 4096, 4096), 7);  // every row
}

// Keys that seldom repeat in the sample may still be few: a word count's 50k words in 70M
// rows. The sample's singletons and doubletons estimate how many there are (Chao1), and
// keys whose device table stays in half the L2 cache are hashed.
TEST(GroupedReduceOnHostChoice, TheSampleEstimatesTheKeysAndTheL2DecidesBetweenHashAndSort) {
  const size_t sample_size = 4096, rows = 100 * sample_size;
  HostExec exec;
  const size_t l2 = 60 << 20;  // an H200's 60 MiB
  struct Case {
    uint64_t keys;
    double least, most;  // bounds on the estimate
    GroupStrategy want;
  };
  for (const Case& c : {Case{1000, 900, 1100, GroupStrategy::Hash}, Case{49000, 30000, 80000, GroupStrategy::Hash},
                        Case{1000000, 300000, 4000000, GroupStrategy::Sort}, Case{50000000, 2000000, 1e18, GroupStrategy::Sort}}) {
    std::mt19937_64 rng(c.keys);
    std::vector<uint64_t> keys(rows);
    for (uint64_t& k : keys) k = rng() % c.keys;
    RowKeys row_keys;
    row_keys.computed = keys.data();
    const KeySample sample = sample_keys(exec, row_keys, rows, sample_size);
    SCOPED_TRACE(std::to_string(c.keys) + " keys");
    EXPECT_EQ(sample.size, sample_size);
    // The estimate is capped at the rows, which a sample of every 100th row cannot exceed.
    const double estimate = static_cast<double>(estimate_distinct(sample, 1'000'000'000));
    EXPECT_GE(estimate, c.least);
    EXPECT_LE(estimate, c.most);
    EXPECT_EQ(choose_strategy(1'000'000'000, sample, 2, l2), c.want);
  }
  // One hot key in 60% of the rows and a tail of distinct keys: the sample repeats the hot
  // key, and its singletons promise a tail too large for a cached table.
  {
    std::mt19937_64 rng(5);
    std::vector<uint64_t> keys(rows);
    for (uint64_t& k : keys) k = rng() % 5 < 3 ? 7 : rng();
    RowKeys row_keys;
    row_keys.computed = keys.data();
    const KeySample sample = sample_keys(exec, row_keys, rows, sample_size);
    EXPECT_LE(sample.distinct * 2, sample.size);
    EXPECT_EQ(choose_strategy(1'000'000'000, sample, 2, l2), GroupStrategy::Sort);
  }
  KeySample all_seen;
  all_seen.size = 5000;
  all_seen.distinct = 70;
  EXPECT_EQ(estimate_distinct(all_seen, 5000), 70u);  // the sample is every row
  EXPECT_EQ(device_table_bytes(49000, 1), (uint64_t{1} << 18) * 24);
}

TEST(GroupedReduceOnHostChoice, AHashTableThatFillsUpFallsBackToSorting) {
  // The sample sees 16 distinct keys in its first 4096 rows; the rest of the batch has 60k
  // more, which overflow a table sized from the sample.
  const size_t rows = 65536;
  std::vector<int64_t> k(rows);
  // The sample takes every 16th row: those repeat 8 keys.
  for (size_t r = 0; r < rows; ++r) k[r] = (r % 16 == 0) ? static_cast<int64_t>((r / 16) % 8) : static_cast<int64_t>(r % 16);
  for (size_t r = 1; r < rows; r += 16) k[r] = static_cast<int64_t>(1000 + r);  // 4096 more distinct keys, unsampled
  TestColumn key = int64_column(k);
  std::vector<FoldView> folds{fold(kFoldCountRows, nullptr, false)};
  GroupedInput in;
  in.rows = rows;
  in.keys = {key.view()};
  in.folds = folds;
  HostExec exec;
  const GroupedResult got = grouped_reduce(exec, in);
  EXPECT_EQ(got.sampled_distinct, 8u);
  EXPECT_TRUE(got.hash_overflowed);
  EXPECT_EQ(got.strategy, GroupStrategy::Sort);
  expect_matches(got, reference({&key}, {nullptr}, folds, rows, {}), folds);
}

TEST(KeyVerificationOnHost, ARowWhoseKeyDiffersFromItsGroupsFirstRowIsCounted) {
  // Rows 0 and 2 are put in one group although their strings differ: what a 64-bit hash
  // collision would do. The verification pass must count row 2.
  TestColumn word = string_column({"apple", "pear", "plum"});
  const ColumnView view = word.view();
  const int32_t group_at[] = {0, 1, 0};
  const int64_t first_row_of[] = {0, 1};
  unsigned long long mismatches = 0;
  VerifyAgainstFirstRow verify{&view, 1, nullptr, group_at, 0, first_row_of, &mismatches};
  for (int64_t i = 0; i < 3; ++i) verify(i);
  EXPECT_EQ(mismatches, 1u);
}

// A window's or running state's exact key (one integer column declared not nullable) is its
// own 64-bit key in every batch, bitmap or not; nulls in it are counted, for the caller to
// refuse the batch.
TEST(ExactKeyOnHost, AKeyWithABitmapButNoNullsIsKeyedByItsValueAndNullsAreCounted) {
  HostExec exec;
  const TestColumn plain = int64_column({7, -3, 7, 1LL << 40, -3});
  const TestColumn bitmap_without_nulls = with_nulls(plain, {});
  GroupedInput in;
  in.rows = plain.rows;
  in.keys = {bitmap_without_nulls.view()};
  in.force_hashed_keys = true;
  ASSERT_EQ(take_exact_key(exec, in), 0u);
  EXPECT_EQ(in.keys[0].validity, nullptr);
  EXPECT_FALSE(in.force_hashed_keys);
  const DeviceGroups<HostExec> groups = grouped_reduce_in_place(exec, in);
  ASSERT_EQ(groups.groups, 3u);
  const std::vector<uint64_t> keys(groups.key.data(), groups.key.data() + groups.groups);
  EXPECT_EQ(keys, (std::vector<uint64_t>{7, static_cast<uint64_t>(-3), uint64_t{1} << 40}));

  const TestColumn nulls = with_nulls(int32_column({1, 2, 3, 4, 5, 6, 7, 8, 9}), {0, 8});
  GroupedInput with_null_keys;
  with_null_keys.rows = nulls.rows;
  with_null_keys.keys = {nulls.view()};
  EXPECT_EQ(take_exact_key(exec, with_null_keys), 2u);

  const TestColumn words = string_column({"a"});
  GroupedInput not_an_integer;
  not_an_integer.rows = 1;
  not_an_integer.keys = {words.view()};
  EXPECT_THROW(take_exact_key(exec, not_an_integer), Error);
  GroupedInput two_keys;
  two_keys.rows = plain.rows;
  two_keys.keys = {plain.view(), plain.view()};
  EXPECT_THROW(take_exact_key(exec, two_keys), Error);
}

TEST(KeyHashOnHost, CanonicalFloatsAndStringsHashAlikeOnlyWhenEqual) {
  TestColumn f = float64_column({0.0, -0.0, NAN, -NAN});
  const ColumnView v = f.view();
  EXPECT_EQ(value_hash(v, 0), value_hash(v, 1));
  EXPECT_EQ(value_hash(v, 2), value_hash(v, 3));
  EXPECT_NE(value_hash(v, 0), value_hash(v, 2));
  TestColumn s = string_column({"abcdefgh", "abcdefgi", "abcdefgh", ""});
  const ColumnView sv = s.view();
  EXPECT_EQ(value_hash(sv, 0), value_hash(sv, 2));
  EXPECT_NE(value_hash(sv, 0), value_hash(sv, 1));
  EXPECT_TRUE(same_value(sv, 0, 2));
  EXPECT_FALSE(same_value(sv, 0, 3));
}

}  // namespace
}  // namespace sluice::gpu

namespace sluice::gpu {
namespace {

/// Words of @p lines split as the CPU's flat_map split does (std::isspace), counted in
/// order of first appearance.
std::vector<std::pair<std::string, int64_t>> reference_word_count(const std::vector<std::string>& lines) {
  std::vector<std::pair<std::string, int64_t>> out;
  std::map<std::string, size_t> index;
  for (const auto& line : lines) {
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      const size_t start = i;
      while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      if (i == start) continue;
      const std::string w = line.substr(start, i - start);
      auto [it, inserted] = index.emplace(w, out.size());
      if (inserted) out.emplace_back(w, 0);
      out[it->second].second++;
    }
  }
  return out;
}

class WordCountOnHost : public ::testing::TestWithParam<GroupStrategy> {};

TEST_P(WordCountOnHost, MatchesTheCpuSplitOnVariedText) {
  std::mt19937_64 rng(11);
  const char* spaces[] = {" ", "  ", "\t", "\r\n", "\v", "\f"};
  std::vector<std::string> lines{"", "   ", "one", "one two  one", "tail-space ", " lead", "a\tb\nc"};
  for (int l = 0; l < 3000; ++l) {
    std::string line;
    const int words = static_cast<int>(rng() % 12);
    for (int w = 0; w < words; ++w) {
      const size_t len = 1 + rng() % 14;
      for (size_t i = 0; i < len; ++i) line += static_cast<char>('a' + rng() % 4);
      line += spaces[rng() % 6];
    }
    lines.push_back(line);
  }
  // Adjacent lines must not run together: "ab" + "cd" are two words, not "abcd".
  lines.push_back("ab");
  lines.push_back("cd");
  TestColumn text = string_column(lines);
  HostExec exec;
  const WordCounts got = count_words(exec, text.chars.data(), text.offsets.data(), lines.size(), text.chars.size(), GetParam());
  const auto want = reference_word_count(lines);
  ASSERT_EQ(got.counts.size(), want.size());
  size_t total = 0;
  for (size_t g = 0; g < want.size(); ++g) {
    const std::string word = got.chars.substr(got.offsets[g], got.offsets[g + 1] - got.offsets[g]);
    EXPECT_EQ(word, want[g].first) << "group " << g;
    EXPECT_EQ(got.counts[g], want[g].second) << want[g].first;
    total += static_cast<size_t>(want[g].second);
  }
  EXPECT_EQ(got.words, total);
  EXPECT_EQ(got.key_collisions, 0u);
}

TEST_P(WordCountOnHost, NoLinesOrOnlySpacesGiveNoWords) {
  HostExec exec;
  TestColumn blank = string_column({" \t ", "", "\n"});
  const WordCounts got = count_words(exec, blank.chars.data(), blank.offsets.data(), 3, blank.chars.size(), GetParam());
  EXPECT_EQ(got.words, 0u);
  EXPECT_TRUE(got.counts.empty());
  const WordCounts none = count_words(exec, blank.chars.data(), blank.offsets.data(), 0, 0, GetParam());
  EXPECT_TRUE(none.counts.empty());
}

// group_by_key's and cogroup's lists on the device: a range of rows ordered by group, row
// order kept within a group, numbered from the range's start, with each group's start; as
// the host's counting sort orders them.
TEST(RowsByGroupOnHost, ARangeOrdersByGroupKeepingRowOrder) {
  std::mt19937_64 rng(9);
  for (size_t groups : {size_t{1}, size_t{5}, size_t{300}}) {
    const size_t rows = 4001;
    std::vector<int32_t> group_of_row(rows);
    for (size_t r = 0; r < rows; ++r) group_of_row[r] = static_cast<int32_t>(rng() % groups);
    for (const auto& [begin, end] : {std::pair<size_t, size_t>{0, rows}, {1000, rows}, {17, 17}, {0, 1}}) {
      SCOPED_TRACE(std::to_string(groups) + " groups, rows [" + std::to_string(begin) + ", " + std::to_string(end) + ")");
      HostExec exec;
      const DeviceRowsByGroup<HostExec> got = order_rows_by_group(exec, group_of_row.data(), begin, end, groups);
      std::vector<int32_t> want_start(groups + 1, 0);
      std::vector<int64_t> want_rows;
      for (size_t g = 0; g < groups; ++g) {
        for (size_t r = begin; r < end; ++r)
          if (static_cast<size_t>(group_of_row[r]) == g) want_rows.push_back(static_cast<int64_t>(r - begin));
        want_start[g + 1] = static_cast<int32_t>(want_rows.size());
      }
      EXPECT_EQ(std::vector<int64_t>(got.rows.data(), got.rows.data() + (end - begin)), want_rows);
      EXPECT_EQ(std::vector<int32_t>(got.start.data(), got.start.data() + groups + 1), want_start);
    }
  }
}

/// Words of @p text (lines at @p line_offsets) as word count's chunk passes find them.
struct FoundWords {
  std::vector<int32_t> starts, ends;
  std::vector<uint64_t> hashes;
};
FoundWords find_words(const char* text, size_t bytes, const std::vector<int32_t>& line_offsets) {
  std::vector<uint32_t> line_bits(bytes / 32 + 1, 0);
  for (size_t l = 0; l + 1 < line_offsets.size(); ++l) MarkLineStartBits{line_offsets.data(), line_bits.data()}(static_cast<int64_t>(l));
  const TextChunks chunks{text, static_cast<int64_t>(bytes), line_bits.data(), reinterpret_cast<uintptr_t>(text) % 16 == 0};
  const int64_t chunk_count = (static_cast<int64_t>(bytes) + kWordChunkBytes - 1) / kWordChunkBytes;
  std::vector<int32_t> first_word(static_cast<size_t>(chunk_count) + 1, 0);
  for (int64_t c = 0; c < chunk_count; ++c) first_word[static_cast<size_t>(c) + 1] = first_word[static_cast<size_t>(c)] + WordsInChunk{chunks}(c);
  FoundWords out;
  const size_t words = static_cast<size_t>(first_word.back());
  out.starts.resize(words);
  out.ends.resize(words);
  out.hashes.resize(words);
  for (int64_t c = 0; c < chunk_count; ++c)
    WriteWordsOfChunk{chunks, first_word.data(), out.starts.data(), out.ends.data(), out.hashes.data()}(c);
  return out;
}

// Word count hashes each word as it finds its end; the hash is the one the keyed reduction
// computes from the word column (GroupedInput::row_hashes promises that).
TEST(WordCountOnHostKeys, AWordsHashIsTheReductionsHashOfTheWordColumn) {
  const std::string text = "alpha be\tgamma  a\nfourteen-bytes exactly8 x and-a-word-that-runs-past-its-chunk";
  const FoundWords found = find_words(text.data(), text.size(), {0, static_cast<int32_t>(text.size())});
  ColumnView words;
  words.type = kString;
  words.chars = text.data();
  words.offsets = found.starts.data();
  words.ends = found.ends.data();
  std::vector<uint64_t> separate(found.starts.size());
  for (size_t w = 0; w < separate.size(); ++w) HashedKeyOf{&words, 1, separate.data()}(static_cast<int64_t>(w));
  ASSERT_EQ(found.starts.size(), 8u);
  EXPECT_EQ(text.substr(static_cast<size_t>(found.starts[4]), static_cast<size_t>(found.ends[4] - found.starts[4])), "fourteen-bytes");
  EXPECT_EQ(found.hashes, separate);
}

// The chunk passes find every word a byte-by-byte scan finds: words shorter and longer than a
// chunk (up to three chunks), starting and ending on chunk boundaries, lines that abut with
// no byte between them (a word ends where its line does), texts that end mid-chunk and on a
// chunk's end, at every alignment of the text (the 16-byte loads and the byte loads).
TEST(WordCountOnHostKeys, ChunkPassesFindTheWordsAByteScanFinds) {
  std::mt19937_64 rng(21);
  const char spaces[] = {' ', '\t', '\n', '\v', '\f', '\r'};
  for (int round = 0; round < 40; ++round) {
    std::string text;
    std::vector<int32_t> line_offsets{0};
    const size_t target = round < 8 ? 32 * static_cast<size_t>(round + 1) : 1 + rng() % 3000;  // some on a chunk's end
    while (text.size() < target) {
      const uint64_t kind = rng() % 10;
      if (kind < 6) text.append(1 + rng() % (kind == 0 ? 96 : 12), static_cast<char>('a' + rng() % 26));
      else if (kind < 9) text.append(1 + rng() % 3, spaces[rng() % 6]);
      else line_offsets.push_back(static_cast<int32_t>(text.size()));  // a line ends here, maybe mid-word
    }
    text.resize(target);
    line_offsets.push_back(static_cast<int32_t>(text.size()));
    std::vector<uint8_t> line_start(text.size() + 1, 0);
    for (int32_t o : line_offsets) line_start[static_cast<size_t>(o)] = 1;
    std::vector<int32_t> want_starts, want_ends;
    for (size_t i = 0; i < text.size(); ++i) {
      if (is_space_byte(text[i]) || !(i == 0 || line_start[i] || is_space_byte(text[i - 1]))) continue;
      size_t e = i + 1;
      while (e < text.size() && !line_start[e] && !is_space_byte(text[e])) ++e;
      want_starts.push_back(static_cast<int32_t>(i));
      want_ends.push_back(static_cast<int32_t>(e));
    }
    for (size_t shift : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{16}}) {
      SCOPED_TRACE("round " + std::to_string(round) + ", " + std::to_string(text.size()) + " bytes at offset " + std::to_string(shift));
      std::vector<uint64_t> storage(text.size() / 8 + 4);  // 8-byte aligned; 16 at offset 0 with glibc's operator new
      char* at = reinterpret_cast<char*>(storage.data()) + shift;
      std::memcpy(at, text.data(), text.size());
      const FoundWords found = find_words(at, text.size(), line_offsets);
      EXPECT_EQ(found.starts, want_starts);
      EXPECT_EQ(found.ends, want_ends);
    }
  }
}

// Hashes the caller gives (GroupedInput::row_hashes) group as computed ones do, by either
// strategy, and stay as they were: the sort strategy orders a copy.
TEST(GroupedReduceOnHostHashes, GivenRowHashesGroupAsComputedOnesAndStayUnchanged) {
  std::mt19937_64 rng(3);
  std::vector<std::string> keys(5000);
  for (std::string& k : keys) k = "k" + std::to_string(rng() % 300);
  TestColumn key = string_column(keys);
  const ColumnView view = key.view();
  std::vector<uint64_t> hashes(keys.size());
  for (size_t r = 0; r < keys.size(); ++r) HashedKeyOf{&view, 1, hashes.data()}(static_cast<int64_t>(r));
  const std::vector<uint64_t> before = hashes;
  for (GroupStrategy strategy : {GroupStrategy::Hash, GroupStrategy::Sort}) {
    GroupedInput in;
    in.rows = keys.size();
    in.keys = {view};
    in.folds = {fold(kFoldCountRows, nullptr, false)};
    in.strategy = strategy;
    HostExec exec;
    const GroupedResult computed = grouped_reduce(exec, in);
    in.row_hashes = hashes.data();
    const GroupedResult given = grouped_reduce(exec, in);
    SCOPED_TRACE(strategy == GroupStrategy::Hash ? "hash" : "sort");
    EXPECT_EQ(given.strategy, strategy);
    EXPECT_EQ(given.first_row, computed.first_row);
    EXPECT_EQ(given.accumulators, computed.accumulators);
    EXPECT_EQ(given.groups, 300u);
    EXPECT_EQ(hashes, before);

    // Given hashes are what groups the rows: one hash for every row makes one group, and
    // the verification against its first row counts every other key's rows.
    std::vector<uint64_t> one_hash(keys.size(), 42);
    in.row_hashes = one_hash.data();
    const GroupedResult merged = grouped_reduce(exec, in);
    EXPECT_EQ(merged.groups, 1u);
    EXPECT_EQ(merged.key_collisions,
              static_cast<unsigned long long>(std::count_if(keys.begin(), keys.end(), [&](const std::string& k) { return k != keys[0]; })));
  }
}

// A hash table sized from a sample that fills up falls back to sorting, which orders a copy
// of hashes the caller gave.
TEST(GroupedReduceOnHostHashes, GivenRowHashesSurviveTheFallBackToSorting) {
  const size_t rows = 65536;  // as in AHashTableThatFillsUpFallsBackToSorting
  std::vector<int64_t> k(rows);
  for (size_t r = 0; r < rows; ++r) k[r] = (r % 16 == 0) ? static_cast<int64_t>((r / 16) % 8) : static_cast<int64_t>(r % 16);
  for (size_t r = 1; r < rows; r += 16) k[r] = static_cast<int64_t>(1000 + r);
  TestColumn key = int64_column(k);
  const ColumnView view = key.view();
  std::vector<uint64_t> hashes(rows);
  for (size_t r = 0; r < rows; ++r) HashedKeyOf{&view, 1, hashes.data()}(static_cast<int64_t>(r));
  const std::vector<uint64_t> before = hashes;
  std::vector<FoldView> folds{fold(kFoldCountRows, nullptr, false)};
  GroupedInput in;
  in.rows = rows;
  in.keys = {view};
  in.folds = folds;
  in.force_hashed_keys = true;  // an integer key is otherwise its own key, and given hashes are ignored
  in.row_hashes = hashes.data();
  HostExec exec;
  const GroupedResult got = grouped_reduce(exec, in);
  EXPECT_TRUE(got.hash_overflowed);
  EXPECT_EQ(got.strategy, GroupStrategy::Sort);
  expect_matches(got, reference({&key}, {nullptr}, folds, rows, {}), folds);
  EXPECT_EQ(hashes, before);
}

INSTANTIATE_TEST_SUITE_P(Strategies, WordCountOnHost, ::testing::Values(GroupStrategy::Hash, GroupStrategy::Sort),
                         [](const auto& info) { return info.param == GroupStrategy::Hash ? std::string("Hash") : std::string("Sort"); });

}  // namespace
}  // namespace sluice::gpu

namespace sluice::gpu {
namespace {

/// The device window ring (run here on the host) against a brute-force window: every slide,
/// per key, the sum, count, min and max of the values of the last `panes` panes.
class WindowRingOnHost : public ::testing::TestWithParam<bool> {};  // invertible (sum/count) or not (min/max)

TEST_P(WindowRingOnHost, EverySlideMatchesRecomputingTheWindow) {
  const bool invertible = GetParam();
  for (size_t panes : {size_t{1}, size_t{2}, size_t{5}}) {
    std::mt19937_64 rng(panes);
    HostExec exec;
    std::vector<FoldView> batch_folds;
    FoldView sum, records, extreme, seen;
    sum.op = kFoldSum;
    records.op = kFoldCountRows;
    extreme.op = kFoldMin;
    seen.op = kFoldCountValid;
    batch_folds = invertible ? std::vector<FoldView>{sum, records} : std::vector<FoldView>{extreme, records, seen};
    DeviceWindowRing<HostExec> ring(exec, batch_folds, 1, panes, invertible);
    std::vector<std::vector<std::pair<int64_t, int64_t>>> history;  // pane -> (key, value) rows
    for (int slide = 0; slide < 12; ++slide) {
      std::vector<std::pair<int64_t, int64_t>> pane_rows;
      for (int batch = 0; batch < 2; ++batch) {
        // Some panes are empty, keys come and go, so keys must leave the window.
        const size_t rows = (slide % 4 == 3) ? 0 : 1 + rng() % 300;
        const int64_t key_base = slide / 3;
        std::vector<int64_t> k(rows), v(rows);
        for (size_t r = 0; r < rows; ++r) {
          k[r] = key_base + static_cast<int64_t>(rng() % 20);
          v[r] = static_cast<int64_t>(rng() % 1000) - 500;
          pane_rows.emplace_back(k[r], v[r]);
        }
        TestColumn key = int64_column(k), value = int64_column(v);
        GroupedInput in;
        in.rows = rows;
        in.keys = {key.view()};
        in.folds = batch_folds;
        for (FoldView& f : in.folds)
          if (f.op != kFoldCountRows) f.input = value.view();
        ring.add(grouped_reduce_in_place(exec, in));
      }
      history.push_back(pane_rows);
      const DevicePartial<HostExec>& window = ring.slide();
      std::vector<uint64_t> keys, acc;
      download_partial(exec, window, batch_folds.size(), keys, acc);

      std::map<int64_t, std::pair<int64_t, int64_t>> want;  // key -> (sum or min, count)
      for (size_t p = history.size() > panes ? history.size() - panes : 0; p < history.size(); ++p) {
        for (const auto& [key, value] : history[p]) {
          auto [it, inserted] = want.emplace(key, std::pair<int64_t, int64_t>{value, 1});
          if (inserted) continue;
          it->second.first = invertible ? it->second.first + value : std::min(it->second.first, value);
          it->second.second++;
        }
      }
      SCOPED_TRACE("panes " + std::to_string(panes) + " slide " + std::to_string(slide));
      ASSERT_EQ(keys.size(), want.size());
      for (size_t g = 0; g < keys.size(); ++g) {
        const auto it = want.find(static_cast<int64_t>(keys[g]));
        ASSERT_NE(it, want.end()) << "key " << static_cast<int64_t>(keys[g]) << " is not in the window";
        EXPECT_EQ(static_cast<int64_t>(acc[0 * keys.size() + g]), it->second.first);
        EXPECT_EQ(static_cast<int64_t>(acc[1 * keys.size() + g]), it->second.second);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Aggregates, WindowRingOnHost, ::testing::Bool(),
                         [](const auto& info) { return info.param ? std::string("InvertibleSumCount") : std::string("RecombinedMin"); });

}  // namespace
}  // namespace sluice::gpu

namespace sluice::gpu {
namespace {

/// Running state on the device (run here on the host) against a map updated batch by batch:
/// sums and counts since the start, keys expiring after `expire` batches without a record.
TEST(RunningStateOnHost, EveryBatchMatchesAMapWithExpiry) {
  for (size_t expire : {size_t{0}, size_t{1}, size_t{3}}) {
    std::mt19937_64 rng(expire + 17);
    HostExec exec;
    FoldView sum, records;
    sum.op = kFoldSum;
    records.op = kFoldCountRows;
    const std::vector<FoldView> folds{sum, records};
    DeviceRunningState<HostExec> state(exec, folds, 1, expire);
    struct Entry {
      int64_t sum = 0, count = 0;
      size_t last_seen = 0;
    };
    std::map<int64_t, Entry> want;
    for (size_t batch = 1; batch <= 15; ++batch) {
      const size_t rows = batch % 5 == 0 ? 0 : rng() % 200;
      std::vector<int64_t> k(rows), v(rows);
      for (size_t r = 0; r < rows; ++r) {
        k[r] = static_cast<int64_t>(batch / 4 * 5 + rng() % 10);  // keys drift, so old ones expire
        v[r] = static_cast<int64_t>(rng() % 100);
        Entry& e = want[k[r]];
        e.sum += v[r];
        e.count++;
        e.last_seen = batch;
      }
      if (expire > 0)
        for (auto it = want.begin(); it != want.end();) it = batch - it->second.last_seen >= expire ? want.erase(it) : std::next(it);
      TestColumn key = int64_column(k), value = int64_column(v);
      GroupedInput in;
      in.rows = rows;
      in.keys = {key.view()};
      in.folds = folds;
      in.folds[0].input = value.view();
      const DevicePartial<HostExec>& got = state.update(grouped_reduce_in_place(exec, in));
      std::vector<uint64_t> keys, acc;
      download_partial(exec, got, state.fold_count(), keys, acc);
      SCOPED_TRACE("expire " + std::to_string(expire) + " batch " + std::to_string(batch));
      ASSERT_EQ(keys.size(), want.size());
      for (size_t g = 0; g < keys.size(); ++g) {
        const auto it = want.find(static_cast<int64_t>(keys[g]));
        ASSERT_NE(it, want.end());
        EXPECT_EQ(static_cast<int64_t>(acc[g]), it->second.sum);
        EXPECT_EQ(static_cast<int64_t>(acc[keys.size() + g]), it->second.count);
        EXPECT_EQ(acc[2 * keys.size() + g], it->second.last_seen);
      }
    }
  }
}

}  // namespace
}  // namespace sluice::gpu

namespace sluice::gpu {
namespace {

/// Staging in chunks reassembles every piece at its offset, whatever the chunk size.
TEST(StagingOnHost, ChunksReassembleEveryPieceAtItsOffset) {
  std::mt19937_64 rng(8);
  std::vector<std::string> buffers;
  std::vector<StagedPiece> pieces;
  size_t at = 0;
  for (int i = 0; i < 40; ++i) {
    std::string b(rng() % 3000, '\0');
    for (char& c : b) c = static_cast<char>('a' + rng() % 26);
    buffers.push_back(b);
    at += rng() % 300;  // gaps (alignment, and pieces copied directly)
    pieces.push_back({nullptr, b.size(), at});
    at += b.size();
  }
  for (size_t i = 0; i < pieces.size(); ++i) pieces[i].host = buffers[i].data();
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{256}, size_t{4096}, at}) {
    std::string block(at, '#');
    size_t next = 0;
    for (size_t from = 0; from < at; from += chunk) {
      const size_t to = std::min(at, from + chunk);
      std::string staged(to - from, '#');
      fill_chunk(pieces, next, from, to, staged.data());
      block.replace(from, to - from, staged);
    }
    for (size_t i = 0; i < pieces.size(); ++i)
      ASSERT_EQ(block.substr(pieces[i].offset, pieces[i].bytes), buffers[i]) << "piece " << i << ", chunks of " << chunk;
  }
}

// ------------------------------------------------------------------ device errors

// What the engine reports when the device fails inside an operator (checked in gpu_engine_impl.cuh
// passes a DeviceError through device_failure); the strings come from the CUDA runtime, which
// names its errors without a device.
TEST(DeviceErrors, AFailedCudaCallIsADeviceErrorNamingTheCallAndTheCode) {
  try {
    SLUICE_CUDA_TRY(cudaErrorMemoryAllocation);
    FAIL() << "SLUICE_CUDA_TRY let a failure through";
  } catch (const DeviceError& e) {
    EXPECT_EQ(e.code(), cudaErrorMemoryAllocation);
    EXPECT_NE(std::string(e.what()).find("CUDA call cudaErrorMemoryAllocation failed at"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(": cudaErrorMemoryAllocation ("), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(SLUICE_CUDA_TRY(cudaSuccess));
}

TEST(DeviceErrors, TheReportNamesTheOperatorAndSaysWhenTheContextIsLost) {
  const std::string memory = device_failure("join", "device memory: cannot allocate 9 MiB", cudaErrorMemoryAllocation).what();
  EXPECT_EQ(memory, "CUDA backend: join failed on the device: device memory: cannot allocate 9 MiB");
  const std::string fault = device_failure("parse csv", "CUDA call k failed", cudaErrorIllegalAddress).what();
  EXPECT_EQ(fault.rfind("CUDA backend: parse csv failed on the device: CUDA call k failed; ", 0), 0u) << fault;
  EXPECT_NE(fault.find("context is lost"), std::string::npos) << fault;
  for (cudaError_t lost : {cudaErrorLaunchFailure, cudaErrorMisalignedAddress, cudaErrorAssert}) EXPECT_TRUE(device_context_lost(lost));
  for (cudaError_t kept : {cudaErrorMemoryAllocation, cudaErrorInvalidValue, cudaErrorNotSupported}) EXPECT_FALSE(device_context_lost(kept));
}

}  // namespace
}  // namespace sluice::gpu
