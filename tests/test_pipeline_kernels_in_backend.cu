// Pipelines on a backend that runs the device kernels for expressions (map, filter) and
// flat_map splits: the same __host__ __device__ kernels the CUDA backend launches, run on the
// CPU through HostExec. The output of each pipeline must equal its output on the CPU backend,
// and the backend must have been asked (so the pipeline really hands those operators over).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "aggregate_plan.hpp"
#include "column_buffers_of.hpp"
#include "cpu_delegating_backend.hpp"
#include "cuda/device_folds.hpp"
#include "cuda/kernel_inputs.hpp"
#include "grouped_reduce.cuh"
#include "host_exec.cuh"
#include "owned_column_on_host.cuh"
#include "pipeline/pipeline_spec.hpp"
#include "reduce_row_chain.cuh"
#include "row_chain.cuh"
#include "row_program.cuh"
#include "sort_rows.cuh"
#include "sluice/backend.hpp"
#include "split_strings.cuh"

namespace sluice {
namespace {

namespace fs = std::filesystem;

/// Counts of the columns the kernels made: all are left where the kernels made them (as the
/// CUDA backend leaves them on the device), and the host copies back those it reads.
struct MadeColumnCounts {
  std::atomic<int> left_in_kernels{0};
  std::atomic<int> copied_back{0};
};

/// A column the kernels made, kept in HostExec's memory as a resident device copy would be.
struct KernelsReplica final : ColumnReplica {
  KernelsReplica(gpu::OwnedColumn<gpu::HostExec>&& column_, std::shared_ptr<MadeColumnCounts> counts_)
      : column(std::move(column_)), counts(std::move(counts_)) {}
  ColumnBuffers copy_to_host() const override {
    ++counts->copied_back;
    return buffers_of(gpu::to_column(column));
  }
  gpu::OwnedColumn<gpu::HostExec> column;
  std::shared_ptr<MadeColumnCounts> counts;
};

/// Where the kernels read @p c: in place when they made it, otherwise its host buffers.
gpu::ColumnView kernels_view(const Column& c) {
  if (const auto* made = dynamic_cast<const KernelsReplica*>(c.replica().get()); made && made->column.rows == c.size())
    return made->column.view();
  return host_view(c);
}


/// A CPU window that takes row chains: it runs them through the kernels (HostExec) and adds
/// their output, counting the chains it took.
class ChainTakingWindow final : public WindowAggregation {
 public:
  ChainTakingWindow(std::unique_ptr<WindowAggregation> window, std::atomic<int>& chains) : window_(std::move(window)), chains_(chains) {}
  void add_batch(const Table& batch) override { window_->add_batch(batch); }
  bool add_row_chain(const Table& batch, std::span<const RowChainStep> steps) override;
  Table slide() override { return window_->slide(); }

 private:
  std::unique_ptr<WindowAggregation> window_;
  std::atomic<int>& chains_;
};

/// A CPU running state that takes row chains, as ChainTakingWindow.
class ChainTakingState final : public StateAggregation {
 public:
  ChainTakingState(std::unique_ptr<StateAggregation> state, std::atomic<int>& chains) : state_(std::move(state)), chains_(chains) {}
  Table update(const Table& batch) override { return state_->update(batch); }
  std::optional<Table> update_row_chain(const Table& batch, std::span<const RowChainStep> steps) override;

 private:
  std::unique_ptr<StateAggregation> state_;
  std::atomic<int>& chains_;
};

/// The CPU backend, except that expressions and splits run through the device kernels.
class KernelsOnHostBackend final : public CpuDelegatingBackend {
 public:
  std::string_view name() const override { return "kernels-on-host"; }
  std::unique_ptr<WindowAggregation> make_window_aggregation(const KeyedAggregation& plan, const Schema& input, size_t panes) override {
    return std::make_unique<ChainTakingWindow>(cpu_->make_window_aggregation(plan, input, panes), window_chain_calls);
  }
  std::unique_ptr<StateAggregation> make_state_aggregation(const KeyedAggregation& plan, const Schema& input,
                                                           size_t expire_after_batches) override {
    return std::make_unique<ChainTakingState>(cpu_->make_state_aggregation(plan, input, expire_after_batches), state_chain_calls);
  }

  std::optional<std::vector<Column>> evaluate(const Table& table, std::span<const RowProgram* const> programs) override {
    ++evaluate_calls;
    programs_evaluated += static_cast<int>(programs.size());
    gpu::HostExec exec;
    const std::vector<gpu::ColumnView> columns = columns_read(table, programs, kernels_view);
    std::vector<Column> out;
    for (const RowProgram* program : programs)
      out.push_back(left_in_kernels(gpu::evaluate_column(exec, gpu::bind_row_program(exec, *program, columns), table.num_rows(),
                                                         program->result_nullable)));
    return out;
  }

  std::optional<Table> filter(const Table& table, const RowProgram& predicate) override {
    ++filter_calls;
    gpu::HostExec exec;
    const RowProgram* programs[] = {&predicate};
    const gpu::BoundRowProgram<gpu::HostExec> bound = gpu::bind_row_program(exec, predicate, columns_read(table, programs, kernels_view));
    std::vector<int64_t> rows(table.num_rows());
    rows.resize(gpu::select_rows(exec, bound.program, bound.inputs.data(), table.num_rows(), rows.data()));
    return table.gather(rows);
  }

  SplitStrings split_strings(const Column& text, std::string_view separator) override {
    ++split_calls;
    gpu::HostExec exec;
    gpu::SplitTokens<gpu::HostExec> t = gpu::split_strings(exec, kernels_view(text), text.size(), separator.data(),
                                                           static_cast<int32_t>(separator.size()));
    std::vector<int64_t> source_rows(t.source_rows.data(), t.source_rows.data() + t.tokens);
    gpu::OwnedColumn<gpu::HostExec> tokens;
    tokens.type = gpu::kString;
    tokens.rows = t.tokens;
    tokens.offsets = std::move(t.offsets);
    tokens.chars = std::move(t.chars);
    return SplitStrings{left_in_kernels(std::move(tokens)), std::move(source_rows)};
  }

  std::optional<Table> run_row_chain(const Table& batch, std::span<const RowChainStep> steps) override {
    ++chain_calls;
    std::vector<gpu::ColumnView> columns;
    for (size_t c = 0; c < batch.num_columns(); ++c) columns.push_back(kernels_view(batch.column(c)));
    gpu::HostExec exec;
    gpu::RowChainResult<gpu::HostExec> chain =
        gpu::run_row_chain(exec, columns, batch.num_rows(), kernel_steps(steps));
    const Schema& schema = steps.back().output;
    std::vector<Column> out;
    for (size_t k = 0; k < schema.size(); ++k) {
      if (chain.input_column[k] >= 0) {
        out.push_back(batch.column(static_cast<size_t>(chain.input_column[k])));
        continue;
      }
      out.push_back(left_in_kernels(std::move(chain.columns[k])));
    }
    return Table(schema, std::move(out));
  }

  /// As the CUDA backend does it: the folds of the plan over the chain's output, reduced where
  /// the chain left its columns, and the partial table made from the groups.
  std::optional<Table> aggregate_row_chain(const Table& batch, std::span<const RowChainStep> steps,
                                           const KeyedAggregation& plan) override {
    const Schema& schema = steps.back().output;
    const ResolvedPlan resolved = resolve_plan(plan, schema);
    const FoldPlan fp = input_folds(plan, resolved, Table::empty(schema), [](const Column&) { return gpu::ColumnView{}; });
    const std::optional<ChainForReduction> chain = chain_for_reduction(batch, steps, chain_reduction(resolved, fp), kernels_view);
    if (!chain) return std::nullopt;  // as the CUDA backend: the host runs the steps
    ++aggregate_chain_calls;
    columns_read_by_chains += static_cast<int>(chain->columns.size());
    gpu::HostExec exec;
    const gpu::ChainGroups<gpu::HostExec> reduced =
        gpu::reduce_row_chain(exec, chain->columns, batch.num_rows(), chain->chain.steps, chain->reduction);
    EXPECT_EQ(reduced.groups.key_collisions, 0u);
    std::vector<Column> keys;
    for (const gpu::OwnedColumn<gpu::HostExec>& key : reduced.keys) keys.push_back(gpu::to_column(key));
    const size_t groups = reduced.groups.groups;
    return partial_table(plan.partial_schema(schema), std::move(keys), fp, reduced.groups.accumulators.data(), groups,
                         all_rows(groups));
  }

  Table sort_rows(const Table& batch, std::span<const SortKey> keys, int64_t limit) override {
    for (const Column& c : batch.columns())
      if (c.type() == TypeId::List) return sluice::sort_rows(batch, keys, limit);
    ++sort_calls;
    std::vector<gpu::SortKeyView> views;
    for (const SortKey& k : keys) views.push_back(gpu::SortKeyView{kernels_view(batch.column(k.column)), k.descending ? 1 : 0});
    gpu::HostExec exec;
    const gpu::SortedRows<gpu::HostExec> sorted = gpu::sort_rows(exec, views, batch.num_rows(), limit);
    std::vector<Column> out;
    for (const Column& c : batch.columns())
      out.push_back(left_in_kernels(gpu::gather_column(exec, kernels_view(c), sorted.order.data(), sorted.rows)));
    return Table(batch.schema(), std::move(out));
  }

  Grouping group_rows(const Table& table, std::span<const size_t> key_columns) override {
    ++group_calls;
    gpu::GroupedInput in;
    in.rows = table.num_rows();
    for (size_t k : key_columns) in.keys.push_back(kernels_view(table.column(k)));
    gpu::HostExec exec;
    const gpu::DeviceGroupIds<gpu::HostExec> ids = gpu::group_ids(exec, in);
    EXPECT_EQ(ids.key_collisions, 0u);
    return Grouping{std::vector<int32_t>(ids.group_of_row.data(), ids.group_of_row.data() + in.rows),
                    std::vector<int64_t>(ids.first_row.data(), ids.first_row.data() + ids.groups)};
  }

  /// group_by_key's and cogroup's keys and list elements, gathered by the kernels and left
  /// there, nullable where their fields are (as the CUDA backend gathers them); lists, which
  /// the kernels do not gather, and gathers of no rows on the host.
  std::vector<Column> gather_columns(const Table& table, std::span<const size_t> fields, std::span<const int64_t> rows) override {
    ++gather_calls;
    gpu::HostExec exec;
    std::vector<Column> out;
    for (size_t f : fields) {
      const Column& c = table.column(f);
      if (c.type() == TypeId::List || rows.empty()) {
        out.push_back(c.gather(rows));
        continue;
      }
      const gpu::ColumnView source = kernels_view(c);
      const bool nullable = table.schema()[f].nullable || source.validity != nullptr;
      out.push_back(left_in_kernels(gpu::detail::gather_column(exec, source, nullable, rows.data(), rows.size())));
    }
    return out;
  }

  /// cogroup's keys of both sides, put together by the kernels and left there.
  Column concatenate(const Column& first, const Column& second, bool nullable) override {
    if (first.type() == TypeId::List) return ExecutionBackend::concatenate(first, second, nullable);
    ++concatenate_calls;
    gpu::HostExec exec;
    const bool any_nullable = nullable || first.nullable() || second.nullable();  // as the CUDA backend
    return left_in_kernels(
        gpu::concatenate_columns(exec, kernels_view(first), first.size(), kernels_view(second), second.size(), any_nullable));
  }

  std::atomic<int> evaluate_calls{0};
  std::atomic<int> programs_evaluated{0};
  std::atomic<int> filter_calls{0};
  std::atomic<int> split_calls{0};
  std::atomic<int> group_calls{0};
  std::atomic<int> gather_calls{0};
  std::atomic<int> concatenate_calls{0};
  std::atomic<int> sort_calls{0};
  std::atomic<int> chain_calls{0};
  std::atomic<int> aggregate_chain_calls{0};
  std::atomic<int> columns_read_by_chains{0};
  std::atomic<int> window_chain_calls{0};
  std::atomic<int> state_chain_calls{0};
  std::shared_ptr<MadeColumnCounts> made_columns = std::make_shared<MadeColumnCounts>();

 private:
  /// A column the kernels made, left in their memory: the host copies it back when it reads it.
  Column left_in_kernels(gpu::OwnedColumn<gpu::HostExec>&& c) {
    ++made_columns->left_in_kernels;
    const auto type = static_cast<TypeId>(c.type);
    const size_t rows = c.rows;
    const bool nullable = c.nullable;
    return Column::on_replica(type, rows, nullable, std::make_shared<KernelsReplica>(std::move(c), made_columns));
  }
};

bool ChainTakingWindow::add_row_chain(const Table& batch, std::span<const RowChainStep> steps) {
  ++chains_;
  KernelsOnHostBackend kernels;
  window_->add_batch(*kernels.run_row_chain(batch, steps));
  return true;
}

std::optional<Table> ChainTakingState::update_row_chain(const Table& batch, std::span<const RowChainStep> steps) {
  ++chains_;
  KernelsOnHostBackend kernels;
  return state_->update(*kernels.run_row_chain(batch, steps));
}

class PipelineKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice-kernels-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }

  /// The `sources:` of a pipeline: `raw`, replaying @p batches (one JSON array of lines per
  /// batch, a batch per line) as a stream of `line` strings.
  std::string replayed_lines(const std::string& batches) {
    return "sources:\n  raw: {type: replay, path: " + write("in.jsonl", batches) + ", schema: {line: string}}\n";
  }

  /// Runs the pipeline @p body (sources, streams; its sink writes out.jsonl) on @p backend
  /// and returns what the sink wrote.
  std::string run(const std::string& body, std::shared_ptr<ExecutionBackend> backend) {
    const fs::path out = dir_ / "out.jsonl";
    fs::remove(out);
    pipeline::RunOverrides overrides;
    overrides.backend_instance = std::move(backend);
    const std::string path = write("p.yaml", "batch_interval: 1s\n" + body + "sinks:\n  - {stream: result, type: jsonl, path: " +
                                                 out.string() + "}\n");
    pipeline::Pipeline p = pipeline::load_pipeline(path, overrides);
    p.context->start();
    p.context->await_termination();
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  /// Runs @p body on the kernels and on the CPU backend and expects the same output; returns
  /// the CPU's output and the kernels backend, for its counts.
  std::pair<std::string, std::shared_ptr<KernelsOnHostBackend>> run_on_both(const std::string& body) {
    auto kernels = std::make_shared<KernelsOnHostBackend>();
    const std::string on_kernels = run(body, kernels);
    const std::string on_cpu = run(body, make_cpu_backend());
    EXPECT_EQ(on_kernels, on_cpu);
    return {on_cpu, kernels};
  }

  fs::path dir_;
};

/// qty + qty + ...: more instructions than a row program may have, so the host evaluates it.
std::string longer_than_a_program() {
  std::string text = "qty";
  for (int k = 0; k <= RowProgram::kMaxInstructions; ++k) text += " + qty";
  return text;
}

TEST_F(PipelineKernelsTest, FilterAndMapExpressionsRunInTheKernelsAndAgreeWithTheHost) {
  const std::string sources = replayed_lines("[\"eu,3,10.5,\", \"us,0,1.0,gift\", \"eu,-2,4.25,x\", \"test,5,1.0,\"]\n"
                                             "[\"asia,7,0.1,\", \"us,2,nan,late\", \"eu,1,-0.0,\"]\n"
                                             "[]\n"
                                             "[\"us,9223372036854775807,2.5,\", \"eu,4,1e300,big\"]\n");
  // on_the_host is longer than a row program: the map is no chain of device operations, and
  // its other expressions go to the device on their own.
  const std::string body = sources + R"Y(
streams:
  result:
    from: raw
    ops:
      - parse: {format: csv, schema: {region: string, qty: int64, price: float64, note: "string?"}}
      - filter: "qty != 0 and region != 'test'"
      - map:
          region: region
          total: "price * qty"
          wrapped: "qty * 2 + 1"
          share: "qty / (qty - 3)"
          flagged: "is_null(note) or starts_with(note, 'g') or len(region) > 3"
          band: "if(price > 5.0, 'high', 'low') == 'high'"
          label: "upper(region)"
          short: "coalesce(substr(trim(note), 0, 2), lower(region))"
          tag: "concat(region, '-', string(qty))"
          price_text: "string(price)"
          on_the_host: ")Y" + longer_than_a_program() + "\"\n";
  const auto [on_cpu, kernels] = run_on_both(body);
  EXPECT_NE(on_cpu.find("\"EU\""), std::string::npos) << on_cpu;
  // Four batches: a filter each, and per batch one evaluate call carrying the nine
  // expressions the device runs (region is a bare field, copied on the host, and
  // on_the_host is too long).
  EXPECT_EQ(kernels->filter_calls.load(), 4);
  EXPECT_EQ(kernels->evaluate_calls.load(), 4);
  EXPECT_EQ(kernels->programs_evaluated.load(), 4 * 9);
  EXPECT_NE(on_cpu.find("\"eu-3\""), std::string::npos) << on_cpu;
}

TEST_F(PipelineKernelsTest, FlatMapSplitRunsInTheKernelsAndAgreesWithTheHost) {
  const std::string sources = replayed_lines("[\"the quick  brown\", \"\", \"fox\\tjumps\"]\n"
                                             "[\"a,b,,c\", \"  \"]\n");
  const std::string body = sources + R"Y(
streams:
  words:
    from: raw
    ops:
      - flat_map: {split: line, as: word}
  result:
    from: words
    ops:
      - flat_map: {split: word, separator: ",", as: part}
      - count_by_value: {}
)Y";
  const auto [on_cpu, kernels] = run_on_both(body);
  EXPECT_NE(on_cpu.find("[\"quick\",1]"), std::string::npos) << on_cpu;
  // words splits on its own; result's split and count_by_value run as one reduction.
  EXPECT_EQ(kernels->split_calls.load(), 2);
  EXPECT_EQ(kernels->aggregate_chain_calls.load(), 2);
}

TEST_F(PipelineKernelsTest, GroupByKeyAndCogroupGroupInTheKernelsAndAgreeWithTheHost) {
  const std::string sources = replayed_lines("[\"eu,3\", \"us,1\", \"eu,4\", \",9\", \"asia,2\", \",8\"]\n"
                                             "[\"us,5\"]\n"
                                             "[]\n");
  const std::string body = sources + R"Y(
streams:
  sales:
    from: raw
    ops:
      - parse: {format: csv, schema: {region: "string?", amount: int64}}
  big:
    from: sales
    ops:
      - filter: "amount > 2"
  result:
    from: sales
    ops:
      - group_by_key: {key: region}
      - cogroup: {with: big, key: region}
)Y";
  const auto [on_cpu, kernels] = run_on_both(body);
  EXPECT_NE(on_cpu.find("\"eu\""), std::string::npos) << on_cpu;
  EXPECT_EQ(kernels->group_calls.load(), 3 * 2);  // group_by_key and cogroup, every batch (the empty one too)
  // Per batch: group_by_key's keys and its list's elements, cogroup's keys and its two lists'
  // elements.
  EXPECT_EQ(kernels->gather_calls.load(), 3 * 5);
  EXPECT_EQ(kernels->concatenate_calls.load(), 3);  // cogroup's one key, both sides
}

TEST_F(PipelineKernelsTest, ConsecutiveRowOperationsRunAsOneChainInTheKernelsAndAgreeWithTheHost) {
  const std::string sources = replayed_lines(
      "[\"eu,3,The Quick fox\", \"us,0,jumps\", \"eu,-2,\", \"asia,7,over  the LAZY dog\"]\n"
      "[]\n"
      "[\"us,2,a b c\", \"test,5,x\"]\n");
  const std::string body = sources + R"Y(
streams:
  result:
    from: raw
    ops:
      - parse: {format: csv, schema: {region: string, qty: int64, text: "string?"}}
      - filter: "qty != 0 and region != 'test'"
      - map: {region: region, big: "qty * 10", text: "lower(text)"}
      - flat_map: {split: text, as: word}
      - filter: "len(word) > 1 or big > 20"
      - select: [word, region, big]
)Y";
  const auto [on_cpu, kernels] = run_on_both(body);
  EXPECT_NE(on_cpu.find("[\"quick\",\"eu\",30]"), std::string::npos) << on_cpu;
  // The five row operations after parse run as one chain per batch; none of them alone.
  EXPECT_EQ(kernels->chain_calls.load(), 3);
  EXPECT_EQ(kernels->filter_calls.load(), 0);
  EXPECT_EQ(kernels->evaluate_calls.load(), 0);
  EXPECT_EQ(kernels->split_calls.load(), 0);
}

TEST_F(PipelineKernelsTest, ColumnsTheKernelsMadeComeBackOnlyWhenTheHostReadsThem) {
  const std::string sources = replayed_lines("[\"EU,3\", \"us,1\", \"Asia,4\"]\n"
                                             "[\"us,5\", \"EU,2\"]\n");
  const std::string body = sources + R"Y(
streams:
  measured:
    from: raw
    ops:
      - parse: {format: csv, schema: {region: string, qty: int64}}
      - map: {region: "lower(region)", doubled: "qty * 2"}
  result:
    from: measured
    ops:
      - filter: "doubled > 4"
)Y";
  const auto [on_cpu, kernels] = run_on_both(body);
  EXPECT_EQ(on_cpu, "{\"time\":1000,\"records\":[[\"eu\",6],[\"asia\",8]]}\n{\"time\":2000,\"records\":[[\"us\",10]]}\n");
  // result's filter, alone in its stream, runs as a chain because its batch is still in the
  // kernels' memory: a filter alone would gather the batch's rows on the host.
  EXPECT_EQ(kernels->chain_calls.load(), 2);
  EXPECT_EQ(kernels->filter_calls.load(), 0);
  // Per batch, measured's map makes region and doubled, and result's filter gathers both where
  // they are. Only the sink reads on the host, so only result's columns come back.
  EXPECT_EQ(kernels->made_columns->left_in_kernels.load(), 2 * 4);
  EXPECT_EQ(kernels->made_columns->copied_back.load(), 2 * 2);
}

TEST_F(PipelineKernelsTest, TransformSortsAndLimitsInTheKernelsAndAgreesWithTheHost) {
  const std::string sources = replayed_lines(
      "[\"b,3,nan,true\", \"a,2,-0.0,false\", \"a,2,0.0,false\", \",5,,false\", \"\u00e9t\u00e9,4,2.5,true\", \"A,7,2.5,false\","
      " \"a,,2.5,true\", \"b,3,inf,false\", \"ab,3,-inf,true\", \"a,9,nan,false\"]\n"
      "[]\n"
      "[\"z,1,1.0,true\", \"y,2,1.0,false\", \"x,3,1.0,true\"]\n");
  const std::string body = sources + R"Y(
streams:
  result:
    from: raw
    ops:
      - parse: {format: csv, schema: {name: "string?", qty: "int64?", price: "float64?", ok: bool}}
      - transform: {sort_by: ["price desc", "name", "qty desc"], limit: 8}
      - map: {name: name, price: price, ok: ok, qty: qty}
      - transform: {sort_by: [ok], limit: 7}
)Y";
  const auto [on_cpu, kernels] = run_on_both(body);
  // Price descending: NaN (written as null) above inf above every other number, nulls last;
  // then names by their bytes ("A" before "a" before "\u00e9t\u00e9"), then qty descending;
  // -0.0 and 0.0 tie in every key, so they keep their input order. The eight kept rows then
  // go stably by ok, false first, and seven stay.
  EXPECT_NE(on_cpu.find("{\"time\":1000,\"records\":[[\"a\",null,false,9],[\"b\",null,false,3],[\"A\",2.5,false,7],"
                        "[\"a\",-0.0,false,2],[\"a\",0.0,false,2],[\"b\",null,true,3],[\"a\",2.5,true,null]]}"),
            std::string::npos)
      << on_cpu;
  EXPECT_NE(on_cpu.find("[[\"y\",1.0,false,2],[\"x\",1.0,true,3],[\"z\",1.0,true,1]]"), std::string::npos) << on_cpu;
  EXPECT_EQ(kernels->sort_calls.load(), 2 * 3);
}

TEST_F(PipelineKernelsTest, RowOperationsEndingInAKeyedAggregationReduceInTheKernelsAndAgreeWithTheHost) {
  const std::string sources = replayed_lines(
      "[\"eu,3,10.5,The Quick fox\", \"us,0,1.0,jumps\", \"eu,-2,4.25,\", \"asia,7,0.5,over the LAZY dog\"]\n"
      "[]\n"
      "[\"us,2,2.5,a b c a\", \"test,5,1.0,x\", \"us,2,-1.5,B\"]\n"
      "[\"eu,9,nan,q\"]\n");
  const std::string up_to_result_ops = sources + R"Y(
streams:
  sales:
    from: raw
    ops:
      - parse: {format: csv, schema: {region: string, qty: int64, price: float64, text: "string?"}}
  result:
    from: sales
    ops:
)Y";
  const std::string host_map = "      - map: {tag: \"coalesce(region, string(" + longer_than_a_program() +
                               "))\", qty: qty}\n      - reduce_by_key: {key: tag, aggregates: {items: \"sum(qty)\"}}\n";
  struct Case {
    const char* ops;
    const char* expected;     // a row of the output
    int fused_per_batch;      // aggregate_row_chain calls per batch
    int columns_read;         // of the 4 parsed columns, those a fused call reads
  };
  const Case cases[] = {
      {R"Y(      - filter: "region != 'test'"
      - map: {region: region, qty: qty, value: "price * qty", code: "len(region) > 2", text: text}
      - reduce_by_key:
          key: [region, code]
          aggregates: {n: "count()", items: "sum(qty)", total: "sum(value)", low: "min(value)", high: "max(qty)", avg: "mean(value)", texts: "count(text)"}
)Y",
       "[\"us\",false,2,4,", 1, 4},
      {R"Y(      - map: {region: region, text: "lower(text)"}
      - flat_map: {split: text, as: word}
      - count_by_value: {}
)Y",
       "[\"us\",\"a\",2]", 1, 2},
      // One operation fuses too (and reads region and qty only, not price or text); a map
      // with a host expression does not fuse.
      {"      - filter: \"qty > 0\"\n      - combine_by_key: {key: region, aggregates: {items: \"sum(qty)\"}}\n", "[\"eu\",3]", 1, 2},
      {host_map.c_str(), "[\"us\",4]", 0, 0},
      {"      - map: {tag: \"concat(region, '!', qty)\", qty: qty}\n      - reduce_by_key: {key: tag, aggregates: {items: \"sum(qty)\"}}\n",
       "[\"us!2\",4]", 1, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.ops);
    const auto [on_cpu, kernels] = run_on_both(up_to_result_ops + c.ops);
    EXPECT_NE(on_cpu.find(c.expected), std::string::npos) << on_cpu;
    EXPECT_EQ(kernels->aggregate_chain_calls.load(), 4 * c.fused_per_batch);
    EXPECT_EQ(kernels->columns_read_by_chains.load(), 4 * c.fused_per_batch * c.columns_read);
  }
}

TEST_F(PipelineKernelsTest, RowOperationsBeforeAWindowedAggregationGoToTheWindowAndAgreeWithTheHost) {
  const std::string sources = replayed_lines("[\"The quick  brown\", \"fox the\"]\n"
                                             "[]\n"
                                             "[\"THE fox\", \"a b\"]\n"
                                             "[\"quick quick\"]\n");
  const std::string body = sources + R"Y(
streams:
  result:
    from: raw
    ops:
      - flat_map: {split: line, as: word}
      - map: {word: "lower(word)", size: "len(word)"}
      - filter: "size > 1"
      - reduce_by_key_and_window: {key: word, aggregates: {n: "count()", letters: "sum(size)"}, window: 2s, slide: 1s}
)Y";
  const auto [on_cpu, kernels] = run_on_both(body);
  EXPECT_NE(on_cpu.find("[\"the\",2,6]"), std::string::npos) << on_cpu;
  // Every batch (4) goes to the window with its three row operations as one chain; none of
  // them runs as a transform of its own.
  EXPECT_EQ(kernels->window_chain_calls.load(), 4);
  EXPECT_EQ(kernels->chain_calls.load(), 0);
  EXPECT_EQ(kernels->split_calls.load(), 0);

  // count_by_value_and_window takes a single operation along too.
  const auto [counted_on_cpu, counting] = run_on_both(sources + R"Y(
streams:
  result:
    from: raw
    ops:
      - flat_map: {split: line, as: word}
      - count_by_value_and_window: {window: 2s, slide: 1s}
)Y");
  EXPECT_NE(counted_on_cpu.find("[\"quick\",2]"), std::string::npos) << counted_on_cpu;
  EXPECT_EQ(counting->window_chain_calls.load(), 4);
}

TEST_F(PipelineKernelsTest, RowOperationsBeforeRunningStateGoToTheStateAndAgreeWithTheHost) {
  const std::string sources = replayed_lines("[\"The quick  brown\", \"fox the\"]\n"
                                             "[]\n"
                                             "[\"THE fox\", \"a b\"]\n");
  const std::string body = sources + R"Y(
streams:
  result:
    from: raw
    ops:
      - flat_map: {split: line, as: word}
      - map: {word: "lower(word)"}
      - update_state_by_key: {key: word, aggregates: {seen: "count()"}, expire_after: 5}
)Y";
  const auto [on_cpu, kernels] = run_on_both(body);
  EXPECT_NE(on_cpu.find("[\"the\",3]"), std::string::npos) << on_cpu;
  EXPECT_EQ(kernels->state_chain_calls.load(), 3);
  EXPECT_EQ(kernels->chain_calls.load(), 0);
  EXPECT_EQ(kernels->split_calls.load(), 0);
}

}  // namespace
}  // namespace sluice
