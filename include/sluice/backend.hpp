#pragma once
/// @file backend.hpp
/// @brief The execution backend interface: the columnar operations that built-in operators
/// are made of. The CPU backend implements them on the host; the CUDA backend implements
/// the same interface on device columns. Operators call the backend of their context.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/column.hpp"
#include "sluice/row_program.hpp"

namespace sluice {

/// @brief Which backend a context runs on.
enum class BackendKind {
  Cpu,   ///< host memory, the reference implementation
  Cuda,  ///< device memory and CUDA kernels (requires a GPU)
  Auto,  ///< Cuda when a GPU and the CUDA backend are present, otherwise Cpu
};

/// @brief "cpu", "cuda", "auto"; throws sluice::Error naming @p name otherwise.
BackendKind parse_backend(std::string_view name);
std::string_view backend_name(BackendKind kind);

/// @brief A built-in aggregate function.
enum class AggregateKind {
  Count,  ///< rows (no input field) or non-null values of the input field; int64
  Sum,    ///< int64 for integer and bool inputs, float64 for floating point; nulls skipped
  Min,    ///< type of the input; nulls skipped
  Max,    ///< type of the input; nulls skipped
  Mean,   ///< float64; nulls skipped
};

/// @brief "count", "sum", "min", "max", "mean" (also "avg"); throws naming @p name otherwise.
AggregateKind parse_aggregate(std::string_view name);
std::string_view aggregate_name(AggregateKind kind);
/// @brief Count, Sum and Mean can be subtracted out of a window; Min and Max cannot.
constexpr bool is_invertible(AggregateKind k) { return k == AggregateKind::Count || k == AggregateKind::Sum || k == AggregateKind::Mean; }

/// @brief One aggregate of a keyed aggregation: kind, input field (empty for count of
/// rows) and the name of the output field.
struct AggregateSpec {
  AggregateKind kind = AggregateKind::Count;
  std::string input;
  std::string output;
};

/// @brief reduceByKey with built-in aggregates. Aggregation runs in two steps so that
/// partial results can be kept per window pane and combined:
///   partials(batch) -> combine(partials..., with signs) -> finalize.
/// A partial table holds the key fields, then per aggregate its partial state fields
/// ("OUT#sum", "OUT#count", "OUT#min", "OUT#max"), then "#records" (input rows per key).
struct KeyedAggregation {
  std::vector<std::string> keys;
  std::vector<AggregateSpec> aggregates;

  /// Validates against @p input (fields exist, inputs numeric where needed) and returns the
  /// schema of partial tables; throws sluice::Error naming the field.
  Schema partial_schema(const Schema& input) const;
  /// The schema of finalized results: keys then one field per aggregate.
  Schema result_schema(const Schema& input) const;
  /// True when every aggregate is invertible.
  bool invertible() const;
};

/// @brief Joins within a batch: rows of @p left and @p right whose key fields are equal.
enum class JoinKind { Inner, LeftOuter, RightOuter, FullOuter };

struct RowChainStep;

/// @brief The state of one reduceByKeyAndWindow with built-in aggregates: batches go into
/// the open pane; a slide closes it and returns the window's finalized results. The CPU keeps
/// panes as partial tables; the CUDA backend keeps them in device memory.
class WindowAggregation {
 public:
  virtual ~WindowAggregation() = default;
  virtual void add_batch(const Table& batch) = 0;
  /// Adds what row operations @p steps (compiled for batches of @p batch's schema) make of
  /// @p batch, the steps' output never leaving the backend's memory; false when this window
  /// leaves that to the caller (the default), which then runs the steps and add_batch.
  virtual bool add_row_chain(const Table& batch, std::span<const RowChainStep> steps);
  virtual Table slide() = 0;
};

/// @brief The running state of one update_state_by_key with built-in aggregates: each batch
/// updates it and returns the whole state, finalized. A key with no record for
/// expire_after_batches batches leaves it (0: never).
class StateAggregation {
 public:
  virtual ~StateAggregation() = default;
  virtual Table update(const Table& batch) = 0;
  /// update() of what row operations @p steps (compiled for batches of @p batch's schema)
  /// make of @p batch, the steps' output never leaving the backend's memory; nullopt when
  /// this state leaves that to the caller (the default), which then runs the steps and update.
  virtual std::optional<Table> update_row_chain(const Table& batch, std::span<const RowChainStep> steps);
};

/// @brief How text records are spelled: CSV with a delimiter and a quote character, or JSON
/// (one object or array per line).
struct TextRecordFormat {
  enum class Kind { Csv, Json } kind = Kind::Csv;
  char delimiter = ',';
  char quote = '"';
};

/// @brief Text records parsed by a backend (see ExecutionBackend::parse_records).
struct ParsedLines {
  Table table;                      ///< the good records, in input order
  std::vector<int64_t> rows;        ///< per row of table, the index of its line (empty when rows_are_lines)
  /// Lines the caller parses itself, ascending: malformed ones (so that their reasons are
  /// the host parser's) and any the backend leaves to the host.
  std::vector<int64_t> host_lines;
  bool rows_are_lines = false;  ///< every line is a row: row r is line r, and rows is empty
};

/// @brief Rows grouped by key fields: a dense group id per row (in order of first appearance)
/// and the first row of each group.
struct Grouping {
  std::vector<int32_t> group_of_row;
  std::vector<int64_t> first_row_of_group;
};

/// @brief One side of group_by_key's or cogroup's lists (ExecutionBackend::group_lists):
/// fields of @p table, whose rows are rows [first_row, first_row + table->num_rows()) of the
/// grouped keys.
struct ListSide {
  const Table* table = nullptr;
  size_t first_row = 0;
  std::vector<size_t> fields;
};

/// @brief Rows grouped by key with each side's lists made (ExecutionBackend::group_lists):
/// per group (in order of first appearance) its first row of the grouped keys, and per side
/// its lists' offsets (groups + 1) and elements, one column per field, each group's rows in
/// row order.
struct GroupedLists {
  std::vector<int64_t> first_row_of_group;
  std::vector<std::vector<int32_t>> list_offsets;
  std::vector<std::vector<Column>> elements;
};

/// @brief A string column split into tokens (flatMap): the tokens, never null, and per token
/// the input row it came from, in input order.
struct SplitStrings {
  Column tokens{TypeId::String};
  std::vector<int64_t> source_rows;
};

/// @brief A key of sort_rows: a field of the batch (by index) and its order.
struct SortKey {
  size_t column = 0;
  bool descending = false;
};

/// @brief One step of a chain of row operations that a backend may run without the batch's
/// columns leaving its memory between steps (see ExecutionBackend::run_row_chain).
struct RowChainStep {
  enum class Kind {
    Filter,  ///< the rows where programs[0] (bool) is true
    Map,     ///< output column k is input column sources[k] when >= 0, else the result of
             ///< programs[-sources[k] - 1] (map, map_values and select)
    Split,   ///< flatMap: string column split_field becomes its tokens (split_strings)
  };
  Kind kind = Kind::Filter;
  std::vector<RowProgram> programs;  ///< compiled for the step's input schema
  std::vector<int32_t> sources;
  size_t split_field = 0;
  std::string separator;
  Schema output;  ///< the step's output schema
};

/// @brief Columnar operations of one backend.
class ExecutionBackend {
 public:
  virtual ~ExecutionBackend() = default;
  virtual BackendKind kind() const = 0;
  virtual std::string_view name() const = 0;

  /// Per-key partial aggregates of @p input (one row per distinct key).
  virtual Table aggregate_partials(const Table& input, const KeyedAggregation& plan) = 0;
  /// Combines partial tables (same partial schema) key by key. @p signs holds +1 or -1 per
  /// table (-1 subtracts a leaving pane; only for invertible plans). Keys whose #records
  /// reaches 0 are removed.
  virtual Table combine_partials(std::span<const Table* const> partials, std::span<const int> signs,
                                 const KeyedAggregation& plan) = 0;
  /// Turns partials into results (count, sum, min, max, mean values).
  virtual Table finalize(const Table& partials, const KeyedAggregation& plan) = 0;
  /// A window of @p panes slides over batches of @p input. By default panes are partial
  /// tables combined with this backend's combine_partials.
  virtual std::unique_ptr<WindowAggregation> make_window_aggregation(const KeyedAggregation& plan, const Schema& input,
                                                                     size_t panes);
  /// Running state over batches of @p input. By default the state is a partial table
  /// combined with this backend's combine_partials.
  virtual std::unique_ptr<StateAggregation> make_state_aggregation(const KeyedAggregation& plan, const Schema& input,
                                                                   size_t expire_after_batches);
  /// Parses each line of @p lines (a string column) as a record of @p schema, or returns
  /// nullopt when this backend leaves parsing to the host parser (the default).
  virtual std::optional<ParsedLines> parse_records(const Column& lines, const Schema& schema, const TextRecordFormat& format);
  /// Called on the batch cutter's thread with each source batch before the batch is handed
  /// on: a backend may start copying it to its device so that the copy overlaps the
  /// processing of the batch before (the default does nothing). @p source_batch stays alive
  /// and unchanged until retire_prefetched(batch) has been called for its time.
  virtual void prefetch(Time batch, const Table& source_batch);
  /// Called on the processing thread: source batches of times up to @p through are no longer
  /// in use; what was prefetched for them is dropped.
  virtual void retire_prefetched(Time through);
  /// Evaluates @p programs (expressions compiled for tables of @p table's schema) over
  /// @p table, one column per program, or returns nullopt when this backend leaves
  /// expressions to the host evaluator (the default).
  virtual std::optional<std::vector<Column>> evaluate(const Table& table, std::span<const RowProgram* const> programs);
  /// A filter by a compiled bool expression: the rows of @p table where it is true, or
  /// nullopt when this backend leaves it to the host evaluator (the default).
  virtual std::optional<Table> filter(const Table& table, const RowProgram& predicate);
  /// Runs @p steps (compiled for batches of @p batch's schema) one after another, the columns
  /// staying in the backend's memory between steps, and returns the last step's table; or
  /// nullopt when this backend leaves the steps to the host, one at a time (the default).
  virtual std::optional<Table> run_row_chain(const Table& batch, std::span<const RowChainStep> steps);
  /// The partials of @p plan (as aggregate_partials gives them) over what @p steps make of
  /// @p batch, the steps' output never leaving the backend's memory; or nullopt when this
  /// backend leaves it to run_row_chain and aggregate_partials (the default).
  virtual std::optional<Table> aggregate_row_chain(const Table& batch, std::span<const RowChainStep> steps,
                                                   const KeyedAggregation& plan);
  /// Groups rows by key for group_by_key and cogroup (see group_rows, which is the default).
  virtual Grouping group_rows(const Table& table, std::span<const size_t> key_columns);
  /// group_by_key's and cogroup's grouping and lists at once: @p keys grouped by
  /// @p key_columns, and each side's lists made where the backend keeps the rows, so that no
  /// row's group need come to the host; or nullopt, which leaves them to group_rows and
  /// gather_columns (the default).
  virtual std::optional<GroupedLists> group_lists(const Table& keys, std::span<const size_t> key_columns,
                                                  std::span<const ListSide> sides);
  /// Rows @p rows of the fields @p fields of @p table, one column per field, gathered where
  /// the columns are (the default gathers on the host): group_by_key's and cogroup's keys
  /// and list elements.
  virtual std::vector<Column> gather_columns(const Table& table, std::span<const size_t> fields, std::span<const int64_t> rows);
  /// The rows of @p first, then those of @p second (of one type), as one column, nullable
  /// when @p nullable is set or either is; made where the columns are (the default appends on
  /// the host): cogroup's keys of both sides.
  virtual Column concatenate(const Column& first, const Column& second, bool nullable);
  /// flatMap of a string column (see split_strings, which is the default).
  virtual SplitStrings split_strings(const Column& text, std::string_view separator);
  /// Joins within a batch (see join_tables, which is the default).
  virtual Table join(const Table& left, std::span<const size_t> left_keys, const Table& right, std::span<const size_t> right_keys,
                     JoinKind kind);
  /// transform's sort_by and limit (see sort_rows, which is the default).
  virtual Table sort_rows(const Table& batch, std::span<const SortKey> keys, int64_t limit);
};

/// @brief The host backend (always available).
std::unique_ptr<ExecutionBackend> make_cpu_backend();

/// @brief The backend for @p requested: Cpu always; Cuda throws a clear sluice::Error when
/// no GPU is present or this build has no CUDA; Auto picks the GPU when it can, otherwise
/// the CPU (logging which and why).
std::unique_ptr<ExecutionBackend> make_backend(BackendKind requested);

/// @brief How many CUDA devices this build can see (0 without CUDA support or a device).
int cuda_device_count();

/// @brief Rows of @p table grouped by the fields @p key_columns, on the host.
Grouping group_rows(const Table& table, std::span<const size_t> key_columns);

/// @brief Splits each valid string of @p text: at runs of whitespace (std::isspace in the C
/// locale) when @p separator is empty, as split_words() does, otherwise at each occurrence of
/// @p separator, left to right, keeping empty tokens ("a,,b" gives "a", "", "b"). Null rows
/// give no token. @p text must be a string column.
SplitStrings split_strings(const Column& text, std::string_view separator);

/// @brief The rows of @p batch in a stable sort by @p keys in turn, each ascending or
/// descending, and of those the first @p limit (all when negative; no key keeps the batch's
/// order). Ascending puts nulls first, descending last. Numbers compare by value, NaN above
/// every other number and equal to NaN, -0.0 equal to 0.0; strings by their bytes as unsigned,
/// a proper prefix first. Throws naming a key that is out of range or a List field.
Table sort_rows(const Table& batch, std::span<const SortKey> keys, int64_t limit);

/// @brief Result fields: left keys, then left's other fields, then right's other fields
/// (nullable where the join is outer on the other side). Key fields of a right-only row come
/// from the right table. Key types must match: throws naming the field otherwise.
Table join_tables(const Table& left, std::span<const size_t> left_keys, const Table& right,
                  std::span<const size_t> right_keys, JoinKind kind);

/// @brief cogroup: one row per key in either table: the keys, then a List field "left" of
/// left's other fields and a List field "right" of right's other fields. Both sides' keys are
/// put together by @p grouping_backend's concatenate; rows are grouped and the lists made by
/// its group_lists, or where it declines, grouped by its group_rows and the lists' elements
/// gathered by its gather_columns (all on the host when null).
Table cogroup_tables(const Table& left, std::span<const size_t> left_keys, const Table& right,
                     std::span<const size_t> right_keys, ExecutionBackend* grouping_backend = nullptr);

/// @brief group_by_key: one row per key: the keys, then a List field "values" of the other
/// fields. Rows are grouped and the lists made by @p grouping_backend's group_lists, or
/// where it declines, grouped by its group_rows and the keys and the lists' elements
/// gathered by its gather_columns (on the host when null).
Table group_by_key_table(const Table& input, std::span<const size_t> key_columns, ExecutionBackend* grouping_backend = nullptr);

}  // namespace sluice
