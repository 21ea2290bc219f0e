// The CUDA execution backend, through the device engine of kernels/: keyed aggregation (per
// batch, combined, windowed with the panes on the device, running state on the device),
// joins within a batch, CSV/JSON record parsing, expressions, chains of row operations (alone
// or ending in a keyed aggregation) and grouping. Host tables are staged into pinned memory
// and copied to the device once per call; columns the device made stay there (DeviceReplica):
// the next operator reads them in place, and the host copies one back only when it reads it.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <unordered_map>

#include "aggregate_plan.hpp"
#include "cuda/device_folds.hpp"
#include "cuda/kernel_inputs.hpp"
#include "gpu_engine.hpp"
#include "join_result.hpp"
#include "sort_keys.hpp"
#include "sluice/backend.hpp"
#include "sluice/log.hpp"

namespace sluice {
namespace {

static_assert(static_cast<int32_t>(gpu::JoinKind::Inner) == static_cast<int32_t>(JoinKind::Inner) &&
                  static_cast<int32_t>(gpu::JoinKind::LeftOuter) == static_cast<int32_t>(JoinKind::LeftOuter) &&
                  static_cast<int32_t>(gpu::JoinKind::RightOuter) == static_cast<int32_t>(JoinKind::RightOuter) &&
                  static_cast<int32_t>(gpu::JoinKind::FullOuter) == static_cast<int32_t>(JoinKind::FullOuter),
              "gpu::JoinKind mirrors sluice::JoinKind");
static_assert(gpu::kBool == static_cast<int32_t>(TypeId::Bool) && gpu::kInt32 == static_cast<int32_t>(TypeId::Int32) &&
                  gpu::kInt64 == static_cast<int32_t>(TypeId::Int64) && gpu::kFloat32 == static_cast<int32_t>(TypeId::Float32) &&
                  gpu::kFloat64 == static_cast<int32_t>(TypeId::Float64) && gpu::kString == static_cast<int32_t>(TypeId::String),
              "gpu::ColumnType mirrors sluice::TypeId");

/// The device copy of a column the device made, attached to the host column: the next
/// operator on the same device reads it there instead of copying the column in again, and
/// a column made without host buffers is copied back from it on its first host read.
struct DeviceReplica final : ColumnReplica {
  DeviceReplica(std::shared_ptr<const gpu::ResidentCopy> memory_, gpu::ColumnView view_, const void* engine_, size_t rows_)
      : memory(std::move(memory_)), view(view_), engine(engine_), rows(rows_) {}
  ColumnBuffers copy_to_host() const override {
    gpu::HostColumnBuffers b = memory->copy_to_host();
    return ColumnBuffers{std::move(b.values), std::move(b.offsets), std::move(b.chars), std::move(b.validity)};
  }
  std::shared_ptr<const gpu::ResidentCopy> memory;  // owns what view points to (and keeps the engine alive)
  gpu::ColumnView view;
  const void* engine = nullptr;  // DeviceEngine::identity of the engine that made it
  size_t rows = 0;
};

/// A column the device made, typed @p type and @p nullable: a host column whose buffers
/// come back from the device on its first host read when the engine left it there,
/// otherwise one from the buffers copied to the host, with the device copy attached when
/// the engine kept one.
Column column_from(gpu::HostColumnBuffers&& b, TypeId type, bool nullable, size_t rows, const void* engine) {
  const bool same_layout = b.type == static_cast<int32_t>(type) && b.nullable == nullable;
  if (!b.on_host && same_layout)
    return Column::on_replica(type, rows, nullable, std::make_shared<DeviceReplica>(std::move(b.resident), b.resident_view, engine, rows));
  if (!b.on_host) b = b.resident->copy_to_host();  // typed otherwise than the device made it: the buffers check it
  std::shared_ptr<const gpu::ResidentCopy> resident = std::move(b.resident);
  Column c = Column::from_buffers(type, rows, nullable, std::move(b.values), std::move(b.offsets), std::move(b.chars),
                                  std::move(b.validity));
  if (resident && same_layout) c.attach_replica(std::make_shared<DeviceReplica>(std::move(resident), b.resident_view, engine, rows));
  return c;
}

/// The device copy of @p c that @p engine made, or null. Another engine's copy is not read:
/// its stream is not ordered with this one's.
const DeviceReplica* copy_made_by(const Column& c, const void* engine) {
  const auto* replica = dynamic_cast<const DeviceReplica*>(c.replica().get());
  return replica && replica->engine == engine && replica->rows == c.size() ? replica : nullptr;
}

/// Column @p c as @p engine reads it: the device copy that engine made of it, otherwise its
/// host buffers (which the engine copies in).
gpu::ColumnView engine_view(const Column& c, const void* engine) {
  const DeviceReplica* replica = copy_made_by(c, engine);
  return replica ? replica->view : host_view(c);
}

/// Rows @p at of the columns @p fields of @p table. A column whose host copy is still
/// pending is gathered where the device holds it, so that only those rows come back; the
/// others are gathered on the host.
std::vector<Column> rows_at(const Table& table, std::span<const size_t> fields, const std::vector<int64_t>& at) {
  std::vector<Column> out;
  for (size_t field : fields) {
    const Column& c = table.column(field);
    const auto* replica = dynamic_cast<const DeviceReplica*>(c.replica().get());
    if (c.host_copy_pending() && replica && replica->rows == c.size())
      out.push_back(column_from(replica->memory->rows_to_host(at), c.type(), c.nullable(), at.size(), nullptr));
    else
      out.push_back(c.gather(at));
  }
  return out;
}



std::vector<int64_t> as_rows(const std::vector<int64_t>& first_row, std::span<const size_t> kept) {
  std::vector<int64_t> out;
  out.reserve(kept.size());
  for (size_t g : kept) out.push_back(first_row[g]);
  return out;
}

/// Key columns the device gathered at each group's first row (@p groups rows each, nullable as
/// their sources are), typed as the fields @p key_fields of @p schema.
std::vector<Column> gathered_keys(std::vector<gpu::HostColumnBuffers>&& keys, const Schema& schema,
                                  std::span<const size_t> key_fields, size_t groups) {
  std::vector<Column> out;
  for (size_t k = 0; k < keys.size(); ++k) {
    const bool nullable = keys[k].nullable;
    out.push_back(column_from(std::move(keys[k]), schema[key_fields[k]].type, nullable, groups, nullptr));
  }
  return out;
}

/// Key values of state kept on the device, where keys travel as 64-bit keys: exactly for a
/// single non-null integer key (the value is the key), otherwise hashed, with a host
/// dictionary from hash to key values that only new keys enter and that a collision cannot
/// slip past.
class DeviceKeys {
 public:
  DeviceKeys(const Schema& partial_schema, const ResolvedPlan& resolved, const Schema& input) : resolved_(resolved) {
    const Field& first = input[resolved.keys.empty() ? 0 : resolved.keys[0]];
    exact_ = resolved.keys.size() == 1 && !first.nullable &&
             (first.type == TypeId::Int64 || first.type == TypeId::Int32 || first.type == TypeId::Bool);
    for (size_t k = 0; k < resolved.keys.size(); ++k) store_.push_back(Column::make_for(partial_schema[k]));
  }

  bool exact() const { return exact_; }

  /// The key columns of @p batch as @p view_of gives them (an exact key's nulls are counted
  /// on the device: BatchGroups::null_keys).
  std::vector<gpu::ColumnView> views(const Table& batch, const ViewOf& view_of) const {
    std::vector<gpu::ColumnView> out;
    for (size_t k : resolved_.keys) out.push_back(view_of(batch.column(k)));
    return out;
  }

  /// Records the key values of a batch's groups (hashed keys only) from @p keys: the key
  /// columns at the groups' first rows (row g for group g). Keys new to the dictionary enter
  /// it; a key equal in hash but not in value is an error.
  void remember_gathered(const gpu::BatchGroups& groups, const std::vector<Column>& keys, std::string_view op) {
    check_no_collision(groups, op);
    std::vector<const Column*> key_columns;
    for (const Column& k : keys) key_columns.push_back(&k);
    for (size_t g = 0; g < groups.keys.size(); ++g) {
      auto [it, inserted] = row_of_.emplace(groups.keys[g], static_cast<int64_t>(store_.empty() ? 0 : store_[0].size()));
      if (inserted) {
        for (size_t k = 0; k < keys.size(); ++k) store_[k].append_from(keys[k], g);
        continue;
      }
      SLUICE_EXPECTS(same_key_rows(key_columns, g, store_, static_cast<size_t>(it->second)),
                     std::string(op) + ": two keys share a 64-bit hash on the GPU; run this job with backend cpu");
    }
  }

  /// A batch whose rows met a 64-bit key hash collision on the device is an error.
  static void check_no_collision(const gpu::BatchGroups& groups, std::string_view op) {
    SLUICE_EXPECTS(groups.key_collisions == 0, std::string(op) + ": " + std::to_string(groups.key_collisions) +
                                                   " rows met a 64-bit key hash collision on the GPU; run this job with backend cpu");
  }

  /// Key columns for the 64-bit keys @p keys; keys not among them leave the dictionary once
  /// it has grown to twice their number.
  std::vector<Column> columns(const std::vector<uint64_t>& keys, const Schema& partial_schema) {
    std::vector<Column> out;
    if (exact_) {
      Column key(partial_schema[0].type);
      key.reserve(keys.size());
      for (uint64_t k : keys) {
        const auto v = static_cast<int64_t>(k);
        if (key.type() == TypeId::Int64) key.append<int64_t>(v);
        else if (key.type() == TypeId::Int32) key.append<int32_t>(static_cast<int32_t>(v));
        else key.append<uint8_t>(static_cast<uint8_t>(v));
      }
      out.push_back(std::move(key));
      return out;
    }
    std::vector<int64_t> rows;
    rows.reserve(keys.size());
    for (uint64_t k : keys) rows.push_back(row_of_.at(k));
    for (const Column& c : store_) out.push_back(c.gather(rows));
    if (row_of_.size() > 2 * keys.size() + 1024) {
      row_of_.clear();
      store_ = out;
      for (size_t g = 0; g < keys.size(); ++g) row_of_.emplace(keys[g], static_cast<int64_t>(g));
    }
    return out;
  }

 private:
  ResolvedPlan resolved_;
  bool exact_ = false;
  std::unordered_map<uint64_t, int64_t> row_of_;
  std::vector<Column> store_;
};

/// What device windows and states share: the plan, its device folds and the key dictionary.
class DeviceKeyedAggregation {
 protected:
  DeviceKeyedAggregation(const void* engine, ExecutionBackend& cpu, KeyedAggregation plan, const Schema& input, std::string_view op)
      : view_of_([engine](const Column& c) { return engine_view(c, engine); }),
        cpu_(cpu),
        op_(op),
        plan_(std::move(plan)),
        input_(input),
        partial_schema_(plan_.partial_schema(input)),
        resolved_(resolve_plan(plan_, input)),
        keys_(partial_schema_, resolved_, input),
        fold_plan_(input_folds(plan_, resolved_, Table::empty(input), view_of_)) {}

  /// The device input of a batch: its key columns and the plan's folds.
  gpu::GroupedInput input_of(const Table& batch) const {
    gpu::GroupedInput in;
    in.rows = batch.num_rows();
    in.keys = keys_.views(batch, view_of_);
    in.folds = input_folds(plan_, resolved_, batch, view_of_).folds;
    in.force_hashed_keys = !keys_.exact();
    in.exact_key = keys_.exact();
    return in;
  }
  bool wants_groups() const { return !keys_.exact(); }

  /// Row operations over @p batch as the engine takes them ahead of this aggregation, cut
  /// down to what it reads; nullopt when they are left to the host: steps for another
  /// schema, or a list column among those the steps read.
  std::optional<ChainForReduction> chain_of(const Table& batch, std::span<const RowChainStep> steps) const {
    if (steps.empty() || !(steps.back().output == input_)) return std::nullopt;
    gpu::ChainReduction reduction = chain_reduction(resolved_, fold_plan_);
    // As input_of: every batch keys its rows alike, an exact key by its value (its nulls
    // counted on the device), any other by a hash.
    reduction.exact_key = keys_.exact();
    reduction.force_hashed_keys = !keys_.exact();
    return chain_for_reduction(batch, steps, std::move(reduction), view_of_);
  }

  /// Records the key values of @p batch's groups; hashed keys are gathered at the groups' first
  /// rows, on the device where a key column lives only there. A batch with a null exact key
  /// changed nothing on the device, and fails here.
  void remember_batch_keys(const gpu::BatchGroups& groups, const Table& batch) {
    check_exact_key(groups);
    if (keys_.exact()) return;  // an exact key is its own value: nothing to remember
    DeviceKeys::check_no_collision(groups, op_);  // before any key row is gathered
    keys_.remember_gathered(groups, rows_at(batch, resolved_.keys, groups.first_row), op_);
  }

  /// Records the key values of a batch that went through row operations on the device, as
  /// remember_batch_keys.
  void remember_chain_keys(gpu::ChainBatchGroups& added) {
    check_exact_key(added.groups);
    if (keys_.exact()) return;
    keys_.remember_gathered(added.groups, gathered_keys(std::move(added.keys), input_, resolved_.keys, added.groups.keys.size()),
                            op_);
  }

  /// A batch whose exact key held nulls (counted on the device, which then changed nothing).
  void check_exact_key(const gpu::BatchGroups& groups) const {
    if (groups.null_keys > 0)
      throw Error(std::string(op_) + ": key field '" + input_[resolved_.keys[0]].name + "' is declared not nullable but holds nulls");
  }

  /// Finalized results of groups that came back from the device (extra accumulators after
  /// the plan's folds are ignored).
  Table finalized(const gpu::WindowGroups& g) {
    const std::vector<size_t> rows = all_rows(g.groups());
    return cpu_.finalize(
        partial_table(partial_schema_, keys_.columns(g.keys, partial_schema_), fold_plan_, g.accumulators.data(), g.groups(), rows),
        plan_);
  }

  ViewOf view_of_;
  ExecutionBackend& cpu_;
  std::string_view op_;
  KeyedAggregation plan_;
  Schema input_;
  Schema partial_schema_;
  ResolvedPlan resolved_;
  DeviceKeys keys_;
  FoldPlan fold_plan_;
};

/// reduceByKeyAndWindow with the panes on the device.
class DeviceWindowAggregation final : public WindowAggregation, DeviceKeyedAggregation {
 public:
  DeviceWindowAggregation(gpu::DeviceEngine& engine, ExecutionBackend& cpu, KeyedAggregation plan, const Schema& input,
                          size_t panes)
      : DeviceKeyedAggregation(engine.identity(), cpu, std::move(plan), input, "reduce_by_key_and_window"),
        window_(engine.make_window(fold_plan_.folds, fold_plan_.records_fold, panes, plan_.invertible())) {}

  void add_batch(const Table& batch) override { remember_batch_keys(window_->add_batch(input_of(batch), wants_groups()), batch); }

  /// The steps run on the device and their output goes into the pane where it is; only the
  /// batch's groups and their key values come back (see chain_of for what is declined).
  bool add_row_chain(const Table& batch, std::span<const RowChainStep> steps) override {
    const std::optional<ChainForReduction> chain = chain_of(batch, steps);
    if (!chain) return false;
    gpu::ChainBatchGroups added = window_->add_row_chain(chain->columns, batch.num_rows(), chain->chain.steps, chain->reduction);
    remember_chain_keys(added);
    return true;
  }
  Table slide() override { return finalized(window_->slide()); }

 private:
  std::unique_ptr<gpu::DeviceEngine::Window> window_;
};

/// update_state_by_key with the state on the device; the whole state is finalized every batch.
class DeviceStateAggregation final : public StateAggregation, DeviceKeyedAggregation {
 public:
  DeviceStateAggregation(gpu::DeviceEngine& engine, ExecutionBackend& cpu, KeyedAggregation plan, const Schema& input,
                         size_t expire_after_batches)
      : DeviceKeyedAggregation(engine.identity(), cpu, std::move(plan), input, "update_state_by_key"),
        state_(engine.make_running_state(fold_plan_.folds, fold_plan_.records_fold, expire_after_batches)) {}

  Table update(const Table& batch) override {
    gpu::WindowGroups state;  // accumulators: the plan's folds, then each key's last batch
    remember_batch_keys(state_->update(input_of(batch), wants_groups(), state), batch);
    return finalized(state);
  }

  /// As add_row_chain of the device window: the steps' output goes into the state where it is.
  std::optional<Table> update_row_chain(const Table& batch, std::span<const RowChainStep> steps) override {
    const std::optional<ChainForReduction> chain = chain_of(batch, steps);
    if (!chain) return std::nullopt;
    gpu::WindowGroups state;
    gpu::ChainBatchGroups added =
        state_->update_row_chain(chain->columns, batch.num_rows(), chain->chain.steps, chain->reduction, state);
    remember_chain_keys(added);
    return finalized(state);
  }

 private:
  std::unique_ptr<gpu::DeviceEngine::RunningState> state_;
};

class CudaBackend final : public ExecutionBackend {
 public:
  explicit CudaBackend(int device) : engine_(device), cpu_(make_cpu_backend()) {
    logging::info("backend cuda: " + engine_.description());
  }

  BackendKind kind() const override { return BackendKind::Cuda; }
  std::string_view name() const override { return "cuda"; }

  Table aggregate_partials(const Table& input, const KeyedAggregation& plan) override {
    Schema schema = plan.partial_schema(input.schema());
    const ResolvedPlan resolved = resolve_plan(plan, input.schema());
    gpu::GroupedInput in;
    in.rows = input.num_rows();
    for (size_t k : resolved.keys) in.keys.push_back(view(input.column(k)));
    const FoldPlan fp = input_folds(plan, resolved, input, viewer());
    in.folds = fp.folds;
    const gpu::GroupedResult r = engine_.reduce(in);
    if (r.key_collisions > 0) return collision_fallback("aggregate_partials", [&] { return cpu_->aggregate_partials(input, plan); });
    std::vector<Column> keys = rows_at(input, resolved.keys, r.first_row);
    const std::vector<size_t> rows = all_rows(r.groups);
    return partial_table(std::move(schema), std::move(keys), fp, r.accumulators.data(), r.groups, rows);
  }

  Table combine_partials(std::span<const Table* const> partials, std::span<const int> signs,
                         const KeyedAggregation& plan) override {
    const PartialLayout layout = partial_layout(plan);
    check_combine_inputs(partials, signs, plan, layout);
    const Table all = Table::concat(partials);
    std::vector<int8_t> row_sign;
    const bool any_negative = std::find(signs.begin(), signs.end(), -1) != signs.end();
    if (any_negative) {
      row_sign.reserve(all.num_rows());
      for (size_t t = 0; t < partials.size(); ++t) row_sign.insert(row_sign.end(), partials[t]->num_rows(), static_cast<int8_t>(signs[t]));
    }
    gpu::GroupedInput in;
    in.rows = all.num_rows();
    for (size_t k = 0; k < layout.key_count; ++k) in.keys.push_back(view(all.column(k)));
    const FoldPlan fp = partial_folds(all, plan, layout, viewer());
    in.folds = fp.folds;
    in.row_sign = any_negative ? row_sign.data() : nullptr;
    const gpu::GroupedResult r = engine_.reduce(in);
    if (r.key_collisions > 0)
      return collision_fallback("combine_partials", [&] { return cpu_->combine_partials(partials, signs, plan); });

    // Keys with no record left (a leaving pane subtracted them out) are dropped.
    std::vector<size_t> kept;
    kept.reserve(r.groups);
    const uint64_t* records = r.accumulators.data() + fp.records_fold * r.groups;
    for (size_t g = 0; g < r.groups; ++g)
      if (records[g] != 0) kept.push_back(g);
    const std::vector<int64_t> key_rows = as_rows(r.first_row, kept);
    std::vector<Field> fields;
    std::vector<Column> keys;
    for (size_t k = 0; k < layout.key_count; ++k) {
      Field f = partials[0]->schema()[k];
      for (const Table* t : partials) f.nullable = f.nullable || t->schema()[k].nullable;
      fields.push_back(std::move(f));
      keys.push_back(all.column(k).gather(key_rows));
    }
    for (size_t c = layout.key_count; c < all.num_columns(); ++c) fields.push_back(partials[0]->schema()[c]);
    return partial_table(Schema(std::move(fields)), std::move(keys), fp, r.accumulators.data(), r.groups, kept);
  }

  /// One division per key: the partials are already on the host, so the CPU's is used.
  Table finalize(const Table& partials, const KeyedAggregation& plan) override { return cpu_->finalize(partials, plan); }

  std::unique_ptr<WindowAggregation> make_window_aggregation(const KeyedAggregation& plan, const Schema& input,
                                                             size_t panes) override {
    return std::make_unique<DeviceWindowAggregation>(engine_, *cpu_, plan, input, panes);
  }

  std::unique_ptr<StateAggregation> make_state_aggregation(const KeyedAggregation& plan, const Schema& input,
                                                           size_t expire_after_batches) override {
    return std::make_unique<DeviceStateAggregation>(engine_, *cpu_, plan, input, expire_after_batches);
  }

  /// Records are split and parsed on the device; the parsed columns come back. Records the
  /// device cannot parse exactly (rare number spellings, escaped strings) and malformed
  /// ones go to the host.
  std::optional<ParsedLines> parse_records(const Column& lines, const Schema& schema, const TextRecordFormat& format) override {
    if (lines.type() != TypeId::String) return std::nullopt;  // the host parser names the problem
    std::vector<gpu::CsvFieldSpec> fields;
    std::vector<std::string> names;
    for (const Field& f : schema) {
      if (f.type == TypeId::List) return std::nullopt;
      fields.push_back(gpu::CsvFieldSpec{static_cast<int32_t>(f.type), f.nullable ? 1 : 0});
      names.push_back(f.name);
    }
    gpu::ParsedRecords parsed =
        format.kind == TextRecordFormat::Kind::Csv
            ? engine_.parse_csv(lines.chars().data(), lines.offsets().data(), lines.validity_bitmap(), lines.size(), fields,
                                format.delimiter, format.quote)
            : engine_.parse_json(lines.chars().data(), lines.offsets().data(), lines.validity_bitmap(), lines.size(), fields, names);
    std::vector<Column> columns;
    for (size_t f = 0; f < schema.size(); ++f)
      columns.push_back(
          column_from(std::move(parsed.columns[f]), schema[f].type, schema[f].nullable, parsed.rows, engine_.identity()));
    ParsedLines out{Table(schema, std::move(columns)), std::move(parsed.row_index), {}, parsed.rows_are_lines};
    out.host_lines.reserve(parsed.malformed.size() + parsed.needs_host.size());
    std::merge(parsed.malformed.begin(), parsed.malformed.end(), parsed.needs_host.begin(), parsed.needs_host.end(),
               std::back_inserter(out.host_lines));
    return out;
  }

  /// Compiled expressions run one thread per row on the device; the columns they read are
  /// copied once for all of them.
  std::optional<std::vector<Column>> evaluate(const Table& table, std::span<const RowProgram* const> programs) override {
    std::vector<Column> out;
    if (table.num_rows() == 0) {
      for (const RowProgram* p : programs) out.emplace_back(static_cast<TypeId>(p->result_type), p->result_nullable);
      return out;
    }
    std::vector<gpu::HostColumnBuffers> columns =
        engine_.evaluate({programs.begin(), programs.end()}, views_read(table, programs), table.num_rows());
    for (size_t k = 0; k < programs.size(); ++k)
      out.push_back(column_from(std::move(columns[k]), static_cast<TypeId>(programs[k]->result_type),
                                programs[k]->result_nullable, table.num_rows(), engine_.identity()));
    return out;
  }

  /// The predicate (into a byte mask) and the compaction of the kept rows' indexes run on the
  /// device. A batch that lives only on the device (parsed there, or made by device steps) is
  /// filtered as a one-step row chain, so the kept rows' indexes never leave the device;
  /// otherwise the indexes come back and each column's kept rows are gathered where the
  /// column is (gather_columns): a host gather would copy a device column back whole.
  std::optional<Table> filter(const Table& table, const RowProgram& predicate) override {
    if (table.num_rows() == 0) return table;
    const auto& columns = table.columns();
    if (std::all_of(columns.begin(), columns.end(), [this](const Column& c) { return lives_here(c); })) {
      RowChainStep step;
      step.kind = RowChainStep::Kind::Filter;
      step.programs = {predicate};
      step.output = table.schema();
      return run_row_chain(table, std::span<const RowChainStep>(&step, 1));
    }
    const RowProgram* programs[] = {&predicate};
    const std::vector<int64_t> kept = engine_.select_rows(predicate, views_read(table, programs), table.num_rows());
    if (kept.size() == table.num_rows()) return table;
    std::vector<size_t> fields(table.num_columns());
    std::iota(fields.begin(), fields.end(), size_t{0});
    return Table(table.schema(), gather_where_columns_are(table, fields, kept, Nullability::AsTheColumn));
  }

  /// The batch is copied to the device once; every step makes device columns from device
  /// columns, and only the last step's new columns come back (columns it passes on
  /// unchanged are the batch's own).
  std::optional<Table> run_row_chain(const Table& batch, std::span<const RowChainStep> steps) override {
    if (steps.empty()) return batch;
    std::vector<gpu::ColumnView> columns;
    for (size_t c = 0; c < batch.num_columns(); ++c) {
      if (batch.column(c).type() == TypeId::List) return std::nullopt;  // the host runs the steps
      columns.push_back(view(batch.column(c)));
    }
    return table_of(batch, steps.back().output, engine_.run_row_chain(columns, batch.num_rows(), kernel_steps(steps)),
                    "row operations");
  }

  /// The order is sorted on the device (a radix sort for one fixed-width key without nulls,
  /// a merge sort otherwise) and the kept rows are gathered there, where they stay as a row
  /// chain's columns do.
  Table sort_rows(const Table& batch, std::span<const SortKey> keys, int64_t limit) override {
    check_sort_keys(batch, keys);
    std::vector<gpu::SortKeySpec> specs;
    for (const SortKey& k : keys) specs.push_back(gpu::SortKeySpec{static_cast<int32_t>(k.column), k.descending ? 1 : 0});
    const size_t rows = batch.num_rows();
    if (keys.empty() && (limit < 0 || static_cast<uint64_t>(limit) >= rows)) return batch;  // nothing to order or drop
    // No row kept, or no row to move: nothing for the device to do.
    if (rows == 0 || limit == 0) return sluice::sort_rows(batch, keys, limit);
    std::vector<gpu::ColumnView> columns;
    for (const Column& c : batch.columns()) {
      if (c.type() == TypeId::List) return sluice::sort_rows(batch, keys, limit);  // the host gathers lists
      columns.push_back(view(c));
    }
    return table_of(batch, batch.schema(), engine_.sort_rows(columns, rows, specs, limit), "transform");
  }

  /// The steps run as in run_row_chain and their output is reduced where it is: only the
  /// groups and their keys come back. A 64-bit key collision declines, so that the caller
  /// runs the steps and aggregate_partials (which recomputes such a batch on the CPU).
  std::optional<Table> aggregate_row_chain(const Table& batch, std::span<const RowChainStep> steps,
                                           const KeyedAggregation& plan) override {
    if (steps.empty()) return aggregate_partials(batch, plan);
    const Schema& schema = steps.back().output;
    const ResolvedPlan resolved = resolve_plan(plan, schema);
    // The folds' inputs are the chain's columns, named by index (chain_reduction), not views.
    const FoldPlan fp = input_folds(plan, resolved, Table::empty(schema), [](const Column&) { return gpu::ColumnView{}; });
    const std::optional<ChainForReduction> chain = chain_for_reduction(batch, steps, chain_reduction(resolved, fp), viewer());
    if (!chain) return std::nullopt;  // the host runs the steps
    gpu::ChainGroupsOnHost reduced = engine_.reduce_row_chain(chain->columns, batch.num_rows(), chain->chain.steps, chain->reduction);
    if (reduced.groups.key_collisions > 0) return std::nullopt;
    // No group: the empty partials of the schema (a key column gathered from no rows cannot
    // tell whether it is nullable).
    if (reduced.groups.groups == 0) return cpu_->aggregate_partials(Table::empty(schema), plan);
    std::vector<Column> keys = gathered_keys(std::move(reduced.keys), schema, resolved.keys, reduced.groups.groups);
    const std::vector<size_t> rows = all_rows(reduced.groups.groups);
    return partial_table(plan.partial_schema(schema), std::move(keys), fp, reduced.groups.accumulators.data(), reduced.groups.groups,
                         rows);
  }

  /// Rows are grouped on the device (the keyed reduction's grouping, then each row's group by
  /// a binary search among the groups' keys); each row's group comes to the host, which
  /// orders the rows by group, and gather_columns gathers the lists' elements where the
  /// batch is. A hashed key that met another key's is grouped again on the host.
  Grouping group_rows(const Table& table, std::span<const size_t> key_columns) override {
    if (table.num_rows() == 0 || key_columns.empty()) return sluice::group_rows(table, key_columns);
    std::vector<gpu::ColumnView> keys;
    for (size_t k : key_columns) {
      if (k >= table.num_columns() || table.column(k).type() == TypeId::List)
        return sluice::group_rows(table, key_columns);  // which names the problem
      keys.push_back(view(table.column(k)));
    }
    gpu::RowGroups groups = engine_.group_rows(keys, table.num_rows());
    if (groups.key_collisions != 0) {
      logging::warn("backend cuda: group_by_key: " + std::to_string(groups.key_collisions) +
                    " rows' hashed keys collided with another key's; grouping this batch on the CPU");
      return sluice::group_rows(table, key_columns);
    }
    return Grouping{std::move(groups.group_of_row), std::move(groups.first_row)};
  }

  /// When every list element's column lives only on the device (a batch parsed there or
  /// made by device steps), the rows are grouped and ordered by group on the device and the
  /// lists' elements gathered there, so no row's group comes to the host; only the groups'
  /// first rows and the lists' offsets do. Other batches are grouped by group_rows, whose
  /// rows the host orders, and gathered where their columns are.
  std::optional<GroupedLists> group_lists(const Table& keys, std::span<const size_t> key_columns,
                                          std::span<const ListSide> sides) override {
    const size_t rows = keys.num_rows();
    if (rows == 0 || key_columns.empty()) return std::nullopt;
    std::vector<gpu::ColumnView> key_views;
    for (size_t k : key_columns) {
      if (k >= keys.num_columns() || keys.column(k).type() == TypeId::List) return std::nullopt;  // group_rows names the problem
      key_views.push_back(view(keys.column(k)));
    }
    std::vector<gpu::ListSource> sources;
    for (const ListSide& side : sides) {
      const Table& t = *side.table;
      // Lists of no field, or of columns on the host, gain nothing from the device.
      if (t.num_rows() == 0 || side.fields.empty() || side.first_row + t.num_rows() > rows) return std::nullopt;
      gpu::ListSource source;
      source.row_begin = side.first_row;
      source.row_end = side.first_row + t.num_rows();
      for (size_t f : side.fields) {
        if (f >= t.num_columns() || !lives_here(t.column(f))) return std::nullopt;
        source.columns.push_back(view(t.column(f)));
        source.nullable.push_back(t.schema()[f].nullable ? 1 : 0);
      }
      sources.push_back(std::move(source));
    }
    gpu::RowLists made = engine_.group_lists(key_views, rows, sources);
    if (made.key_collisions != 0) return std::nullopt;  // group_rows meets the collision too, says so, and groups on the CPU
    GroupedLists out;
    out.first_row_of_group = std::move(made.first_row);
    out.list_offsets = std::move(made.list_offsets);
    for (size_t s = 0; s < sides.size(); ++s) {
      std::vector<Column>& elements = out.elements.emplace_back();
      gpu::RowChainOutput& gathered = made.elements[s];
      for (size_t j = 0; j < gathered.columns.size(); ++j)
        elements.push_back(column_from(std::move(gathered.columns[j]), sides[s].table->column(sides[s].fields[j]).type(),
                                       gathered.columns[j].nullable, gathered.rows, engine_.identity()));
    }
    return out;
  }

  /// cogroup's keys of both sides: put together on the device when either side lives only
  /// there (the result stays there), on the host otherwise.
  Column concatenate(const Column& first, const Column& second, bool nullable) override {
    if (first.type() != second.type() || first.type() == TypeId::List || (!lives_here(first) && !lives_here(second)))
      return ExecutionBackend::concatenate(first, second, nullable);  // which names a problem
    // Nullable as the host's append makes it: an empty nullable side has no bitmap to say so.
    const bool any_nullable = nullable || first.nullable() || second.nullable();
    gpu::RowChainOutput out = engine_.concatenate(view(first), first.size(), view(second), second.size(), any_nullable);
    return column_from(std::move(out.columns[0]), first.type(), out.columns[0].nullable, out.rows, engine_.identity());
  }

  /// group_by_key's and cogroup's keys and list elements: a column that lives only on the
  /// device is gathered there, where the result stays, nullable where its field is (a list
  /// would otherwise make it so on the host, copying it back); the others are gathered on
  /// the host.
  std::vector<Column> gather_columns(const Table& table, std::span<const size_t> fields, std::span<const int64_t> rows) override {
    return gather_where_columns_are(table, fields, rows, Nullability::AsTheField);
  }

  /// Whether a column gathered on the device has a bitmap where its field is nullable (a
  /// list's elements) or where the column itself is (a filter's rows, as Column::gather).
  enum class Nullability { AsTheField, AsTheColumn };

  /// Rows @p rows of @p fields: columns that live only on the device gathered there, where
  /// the result stays; the others gathered on the host.
  std::vector<Column> gather_where_columns_are(const Table& table, std::span<const size_t> fields, std::span<const int64_t> rows,
                                               Nullability nullability) {
    std::vector<Column> out(fields.size());
    std::vector<gpu::ColumnView> views;
    std::vector<uint8_t> nullable;
    std::vector<size_t> on_device;  // indexes into fields, in views' order
    for (size_t k = 0; k < fields.size(); ++k) {
      const Column& c = table.column(fields[k]);
      if (rows.empty() || !lives_here(c)) {
        out[k] = c.gather(rows);
        continue;
      }
      views.push_back(view(c));
      nullable.push_back((nullability == Nullability::AsTheField ? table.schema()[fields[k]].nullable : c.nullable()) ? 1 : 0);
      on_device.push_back(k);
    }
    if (views.empty()) return out;
    gpu::RowChainOutput gathered =
        engine_.gather_rows(views, table.num_rows(), std::vector<int64_t>(rows.begin(), rows.end()), nullable);
    for (size_t j = 0; j < on_device.size(); ++j) {
      const size_t k = on_device[j];
      out[k] = column_from(std::move(gathered.columns[j]), table.column(fields[k]).type(), gathered.columns[j].nullable,
                           gathered.rows, engine_.identity());
    }
    return out;
  }

  /// Counted, scanned and scattered on the device; the tokens come back as one string column.
  SplitStrings split_strings(const Column& text, std::string_view separator) override {
    if (text.type() != TypeId::String) return sluice::split_strings(text, separator);  // which names the problem
    gpu::SplitColumn split = engine_.split_strings(view(text), text.size(), std::string(separator));
    const size_t tokens = split.source_rows.size();
    return SplitStrings{column_from(std::move(split.tokens), TypeId::String, false, tokens, engine_.identity()),
                        std::move(split.source_rows)};
  }

  /// The pairs are found on the device (keys hashed and verified there); each result column
  /// is gathered where its sources are (join_result_where_sources_are).
  Table join(const Table& left, std::span<const size_t> left_keys, const Table& right, std::span<const size_t> right_keys,
             JoinKind kind) override {
    check_join_keys(left, left_keys, right, right_keys);
    std::vector<gpu::ColumnView> l, r;
    for (size_t k : left_keys) l.push_back(view(left.column(k)));
    for (size_t k : right_keys) r.push_back(view(right.column(k)));
    const gpu::JoinPairs pairs = engine_.join(l, left.num_rows(), r, right.num_rows(), static_cast<gpu::JoinKind>(kind));
    if (pairs.left_rows.empty())  // no row: the host's empty result reads no column
      return join_result(left, left_keys, right, right_keys, kind, pairs.left_rows, pairs.right_rows, pairs.rows_with_left);
    return join_result_where_sources_are(left, left_keys, right, right_keys, kind, pairs);
  }

  /// A join's result (join_result's fields and columns) whose columns that read a column
  /// living only on the device are gathered on the device, where they stay: a gather on the
  /// host would copy such a column back whole. The other columns, lists among them, are
  /// gathered on the host, where their sources are.
  Table join_result_where_sources_are(const Table& left, std::span<const size_t> left_keys, const Table& right,
                                      std::span<const size_t> right_keys, JoinKind kind, const gpu::JoinPairs& pairs) {
    using From = JoinResultColumn::From;
    const std::vector<JoinResultColumn> result = join_result_columns(left.schema(), left_keys, right.schema(), right_keys, kind);
    const bool right_only_rows = pairs.rows_with_left < pairs.left_rows.size();
    const bool rows_with_left = pairs.rows_with_left > 0;
    std::vector<Column> columns(result.size());
    std::vector<gpu::ColumnView> left_views, right_views;
    std::vector<gpu::JoinColumnSpec> specs;
    std::vector<size_t> on_device;  // result columns, in specs' order
    for (size_t o = 0; o < result.size(); ++o) {
      const JoinResultColumn& c = result[o];
      // A key column reads the left key in rows with a left row and the right key in the others.
      const bool reads_left = c.from == From::Left || (c.from == From::Keys && rows_with_left);
      const bool reads_right = c.from == From::Right || (c.from == From::Keys && right_only_rows);
      const bool device =
          (reads_left && lives_here(left.column(c.left_field))) || (reads_right && lives_here(right.column(c.right_field)));
      if (!device) {
        columns[o] = gather_join_column(c, left, right, pairs.left_rows, pairs.right_rows, pairs.rows_with_left);
        continue;
      }
      gpu::JoinColumnSpec spec;
      spec.from = reads_left && reads_right ? gpu::kJoinFromKeys : reads_left ? gpu::kJoinFromLeft : gpu::kJoinFromRight;
      spec.nullable = c.field.nullable ? 1 : 0;
      if (reads_left) {
        spec.left_column = static_cast<int32_t>(left_views.size());
        left_views.push_back(view(left.column(c.left_field)));
      }
      if (reads_right) {
        spec.right_column = static_cast<int32_t>(right_views.size());
        right_views.push_back(view(right.column(c.right_field)));
      }
      specs.push_back(spec);
      on_device.push_back(o);
    }
    if (!specs.empty()) {
      gpu::RowChainOutput out = engine_.join_rows(left_views, left.num_rows(), right_views, right.num_rows(), specs, pairs);
      for (size_t j = 0; j < on_device.size(); ++j) {
        const size_t o = on_device[j];
        columns[o] = column_from(std::move(out.columns[j]), result[o].field.type, out.columns[j].nullable, out.rows, engine_.identity());
      }
    }
    std::vector<Field> fields;
    for (const JoinResultColumn& c : result) fields.push_back(c.field);
    return Table(Schema(std::move(fields)), std::move(columns));
  }

  /// Whether @p c lives only on this engine's device (a host read would copy it back).
  bool lives_here(const Column& c) const { return c.host_copy_pending() && copy_made_by(c, engine_.identity()) != nullptr; }

  void prefetch(Time batch, const Table& source_batch) override {
    std::vector<std::pair<const void*, size_t>> buffers;
    const size_t rows = source_batch.num_rows();
    if (rows == 0) return;
    for (const Column& c : source_batch.columns()) {
      if (c.type() == TypeId::List) continue;
      if (c.type() == TypeId::String) {
        buffers.emplace_back(c.offsets().data(), (rows + 1) * sizeof(int32_t));
        buffers.emplace_back(c.chars().data(), c.chars().size());
      } else {
        buffers.emplace_back(c.data(), rows * fixed_width(c.type()));
      }
      if (c.nullable()) buffers.emplace_back(c.validity_bitmap(), (rows + 7) / 8);
    }
    engine_.prefetch(batch.ms, buffers);
  }

  void retire_prefetched(Time through) override { engine_.retire_prefetched(through.ms); }

 private:
  gpu::ColumnView view(const Column& c) const { return engine_view(c, engine_.identity()); }

  /// The table of @p schema that a device call made of @p batch: its input columns where it
  /// passed them on, otherwise the columns it made (left on the device).
  Table table_of(const Table& batch, const Schema& schema, gpu::RowChainOutput&& out, const char* what) const {
    SLUICE_EXPECTS(schema.size() == out.input_column.size(), "CUDA backend: " + std::string(what) + " gave " +
                                                                 std::to_string(out.input_column.size()) + " columns for " +
                                                                 std::to_string(schema.size()) + " fields");
    std::vector<Column> result;
    for (size_t k = 0; k < schema.size(); ++k) {
      if (out.input_column[k] >= 0) result.push_back(batch.column(static_cast<size_t>(out.input_column[k])));
      else
        result.push_back(column_from(std::move(out.columns[k]), schema[k].type, out.columns[k].nullable, out.rows, engine_.identity()));
    }
    return Table(schema, std::move(result));
  }
  ViewOf viewer() const {
    return [this](const Column& c) { return view(c); };
  }
  /// The columns of @p table that @p programs read, as the engine reads them.
  std::vector<gpu::ColumnView> views_read(const Table& table, std::span<const RowProgram* const> programs) const {
    return columns_read(table, programs, viewer());
  }

  /// A 64-bit hash collision between two distinct keys: never merged; this batch is
  /// recomputed exactly on the CPU.
  template <class Compute> Table collision_fallback(const char* op, Compute&& compute) {
    logging::warn(std::string("backend cuda: ") + op + ": two distinct keys share a 64-bit hash; this batch is aggregated on the CPU");
    return compute();
  }

  gpu::DeviceEngine engine_;
  std::unique_ptr<ExecutionBackend> cpu_;
};

}  // namespace

std::unique_ptr<ExecutionBackend> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device); }

}  // namespace sluice
