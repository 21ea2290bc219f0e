#include "sluice/table_ops.hpp"

#include "aggregate_plan.hpp"
#include "sluice/context.hpp"

namespace sluice {

std::vector<size_t> field_indexes(std::string_view op, const Schema& schema, const std::vector<std::string>& names) {
  SLUICE_EXPECTS(!names.empty(), std::string(op) + ": at least one key field is required");
  std::vector<size_t> out;
  for (const auto& n : names) {
    const int i = schema.find(n);
    SLUICE_EXPECTS(i >= 0, std::string(op) + ": no field '" + n + "' in {" + schema.to_string() + "}");
    out.push_back(static_cast<size_t>(i));
  }
  return out;
}

void check_row_operations(const char* op, const Schema& input, const RowOperations& before) {
  SLUICE_EXPECTS(!before.steps.empty() && before.run, std::string(op) + ": row operations before it need steps and their host run");
  SLUICE_EXPECTS(input == before.input, std::string(op) + ": the row operations before it were compiled for {" +
                                            before.input.to_string() + "}, not for the stream's {" + input.to_string() + "}");
}

TableStream aggregate_by_key(const TableStream& input, KeyedAggregation plan, std::optional<RowOperations> before) {
  if (!before) {
    const Schema result = plan.result_schema(input.schema());  // validates the plan
    return input.transform("reduce_by_key", result, [plan = std::move(plan)](std::span<const Table* const> in, StepContext& ctx) {
      return ctx.backend->finalize(ctx.backend->aggregate_partials(*in[0], plan), plan);
    });
  }
  check_row_operations("reduce_by_key", input.schema(), *before);
  const Schema result = plan.result_schema(before->output());
  const std::string name = before->name + ", reduce_by_key";
  return input.transform(name, result, [plan = std::move(plan), before = std::move(*before)](std::span<const Table* const> in,
                                                                                             StepContext& ctx) {
    const Table& batch = *in[0];
    std::optional<Table> partials;
    if (batch.schema() == before.input) partials = ctx.backend->aggregate_row_chain(batch, before.steps, plan);
    if (!partials) partials = ctx.backend->aggregate_partials(before.run(batch, ctx), plan);
    return ctx.backend->finalize(*partials, plan);
  });
}

TableStream join_streams(const TableStream& left, std::vector<std::string> left_keys, const TableStream& right,
                         std::vector<std::string> right_keys, JoinKind kind) {
  const auto lk = field_indexes("join", left.schema(), left_keys);
  const auto rk = field_indexes("join", right.schema(), right_keys);
  SLUICE_EXPECTS(lk.size() == rk.size(), "join: " + std::to_string(lk.size()) + " left keys but " +
                                             std::to_string(rk.size()) + " right keys");
  // The output schema comes from joining two empty batches, so definition errors surface now.
  const Schema schema = join_tables(Table::empty(left.schema()), lk, Table::empty(right.schema()), rk, kind).schema();
  return left.transform_with("join", schema, {right}, [lk, rk, kind, schema](std::span<const Table* const> in, StepContext& ctx) {
    return ctx.backend->join(*in[0], lk, *in[1], rk, kind).with_schema(schema);
  });
}

TableStream cogroup_streams(const TableStream& left, std::vector<std::string> left_keys, const TableStream& right,
                            std::vector<std::string> right_keys) {
  const auto lk = field_indexes("cogroup", left.schema(), left_keys);
  const auto rk = field_indexes("cogroup", right.schema(), right_keys);
  SLUICE_EXPECTS(lk.size() == rk.size(), "cogroup: " + std::to_string(lk.size()) + " left keys but " +
                                             std::to_string(rk.size()) + " right keys");
  const Schema schema = cogroup_tables(Table::empty(left.schema()), lk, Table::empty(right.schema()), rk).schema();
  return left.transform_with("cogroup", schema, {right}, [lk, rk, schema](std::span<const Table* const> in, StepContext& ctx) {
    return cogroup_tables(*in[0], lk, *in[1], rk, ctx.backend).with_schema(schema);
  });
}

TableStream group_by_key(const TableStream& input, std::vector<std::string> keys) {
  const auto k = field_indexes("group_by_key", input.schema(), keys);
  const Schema schema = group_by_key_table(Table::empty(input.schema()), k).schema();
  return input.transform("group_by_key", schema, [k, schema](std::span<const Table* const> in, StepContext& ctx) {
    return group_by_key_table(*in[0], k, ctx.backend).with_schema(schema);
  });
}

}  // namespace sluice
