// Tests for the replay format: the replay source (schema inference, batch order, errors at
// construction), parse_replay_batch and write_jsonl_batch, and their round trip.

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pipeline/replay.hpp"
#include "sluice/column.hpp"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

Field field(std::string name, TypeId type, bool nullable = false, std::vector<Field> children = {}) {
  return Field{std::move(name), type, nullable, std::move(children)};
}

std::string rows_of(const Table& table) {
  std::string out;
  for (size_t r = 0; r < table.num_rows(); ++r) out += table.row_json(r) + "\n";
  return out;
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// A scratch directory for one test, removed afterwards.
class ReplayFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sluice_replay_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& contents) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  std::string replay_error(const std::string& contents, std::optional<Schema> schema = std::nullopt) {
    const std::string path = write("bad.jsonl", contents);
    return error_of([&] { make_replay_source(path, schema); });
  }

  fs::path dir_;
};

// ------------------------------------------------------------------ the source

TEST_F(ReplayFiles, InfersPairsAndPlaysOneBatchPerCall) {
  const std::string path = write("pairs.jsonl", "[[\"a\",1],[\"b\",2]]\n[]\n\n[[\"c\",3]]\n");
  auto source = make_replay_source(path, std::nullopt);
  EXPECT_EQ(source->name(), "replay " + path);
  EXPECT_EQ(source->schema(), (Schema{field("_1", TypeId::String), field("_2", TypeId::Int64)}));
  EXPECT_FALSE(source->finished());
  EXPECT_EQ(rows_of(source->next_batch(Time{1000})), "[\"a\",1]\n[\"b\",2]\n");
  EXPECT_EQ(source->next_batch(Time{2000}).num_rows(), 0u);
  EXPECT_FALSE(source->finished());
  EXPECT_EQ(rows_of(source->next_batch(Time{3000})), "[\"c\",3]\n");
  EXPECT_TRUE(source->finished());
  const Table after = source->next_batch(Time{4000});
  EXPECT_EQ(after.num_rows(), 0u);
  EXPECT_EQ(after.schema(), source->schema());
  EXPECT_EQ(source->counters().records, 3u);
}

TEST_F(ReplayFiles, InfersFloatWhenAnyNumberIsFractional) {
  auto source = make_replay_source(write("f.jsonl", "[[\"a\",1],[\"b\",2.5]]\n[[\"c\",3]]\n"), std::nullopt);
  EXPECT_EQ(source->schema(), (Schema{field("_1", TypeId::String), field("_2", TypeId::Float64)}));
  EXPECT_EQ(rows_of(source->next_batch(Time{1})), "[\"a\",1.0]\n[\"b\",2.5]\n");
  EXPECT_EQ(rows_of(source->next_batch(Time{2})), "[\"c\",3.0]\n");
}

TEST_F(ReplayFiles, InfersScalarRecordsAsValue) {
  auto ints = make_replay_source(write("i.jsonl", "[]\n[1,2]\n[3,null]\n"), std::nullopt);
  EXPECT_EQ(ints->schema(), (Schema{field("value", TypeId::Int64, true)}));
  EXPECT_EQ(rows_of(ints->next_batch(Time{1})), "");
  EXPECT_EQ(rows_of(ints->next_batch(Time{2})), "1\n2\n");
  EXPECT_EQ(rows_of(ints->next_batch(Time{3})), "3\nnull\n");

  auto words = make_replay_source(write("w.jsonl", "[\"to\",\"be\"]\r\n[\"or\"]"), std::nullopt);
  EXPECT_EQ(words->schema(), (Schema{field("value", TypeId::String)}));
  EXPECT_EQ(rows_of(words->next_batch(Time{1})), "\"to\"\n\"be\"\n");
  EXPECT_EQ(rows_of(words->next_batch(Time{2})), "\"or\"\n");
  EXPECT_TRUE(words->finished());

  auto flags = make_replay_source(write("b.jsonl", "[true,false]\n"), std::nullopt);
  EXPECT_EQ(flags->schema(), (Schema{field("value", TypeId::Bool)}));

  auto nulls = make_replay_source(write("n.jsonl", "[null]\n"), std::nullopt);
  EXPECT_EQ(nulls->schema(), (Schema{field("value", TypeId::String, true)}));
}

TEST_F(ReplayFiles, InfersObjectFieldsInOrderOfFirstAppearance) {
  auto source = make_replay_source(
      write("o.jsonl", "[{\"user\":\"a\",\"n\":1},{\"n\":2,\"user\":\"b\",\"vip\":true}]\n[{\"user\":\"c\",\"n\":3}]\n"),
      std::nullopt);
  EXPECT_EQ(source->schema(),
            (Schema{field("user", TypeId::String), field("n", TypeId::Int64), field("vip", TypeId::Bool, true)}));
  EXPECT_EQ(rows_of(source->next_batch(Time{1})), "[\"a\",1,null]\n[\"b\",2,true]\n");
  EXPECT_EQ(rows_of(source->next_batch(Time{2})), "[\"c\",3,null]\n");
}

TEST_F(ReplayFiles, NullsAnywhereInTheFileMakeAnInferredFieldNullable) {
  auto source = make_replay_source(write("n.jsonl", "[[1,\"a\"]]\n[[null,\"b\"]]\n"), std::nullopt);
  EXPECT_EQ(source->schema(), (Schema{field("_1", TypeId::Int64, true), field("_2", TypeId::String)}));
  const Table first = source->next_batch(Time{1});
  EXPECT_EQ(first.schema(), source->schema());
  EXPECT_TRUE(first.column(0).nullable());
  EXPECT_FALSE(first.column(1).nullable());
  EXPECT_EQ(rows_of(source->next_batch(Time{2})), "[null,\"b\"]\n");
}

TEST_F(ReplayFiles, GivenSchemaWithListsAndObjects) {
  const Schema schema{field("id", TypeId::Int64),
                      field("items", TypeId::List, false, {field("sku", TypeId::String), field("n", TypeId::Int32)})};
  auto source = make_replay_source(write("l.jsonl",
                                         "[[1,[[\"a\",2],[\"b\",3]]],[2,[]]]\n"
                                         "[{\"id\":3,\"items\":[{\"sku\":\"c\",\"n\":4}],\"ignored\":0}]\n"),
                                   schema);
  EXPECT_EQ(source->schema(), schema);
  EXPECT_EQ(rows_of(source->next_batch(Time{1})), "[1,[[\"a\",2],[\"b\",3]]]\n[2,[]]\n");
  EXPECT_EQ(rows_of(source->next_batch(Time{2})), "[3,[[\"c\",4]]]\n");
  EXPECT_TRUE(source->finished());
}

TEST_F(ReplayFiles, EmptyFileWithSchemaIsFinishedAtOnce) {
  auto source = make_replay_source(write("e.jsonl", ""), Schema{field("value", TypeId::Int64)});
  EXPECT_TRUE(source->finished());
  EXPECT_EQ(source->next_batch(Time{1}).num_rows(), 0u);
}

TEST_F(ReplayFiles, PlaysBackRecordedOutput) {
  const Schema schema{field("word", TypeId::String), field("count", TypeId::Int64)};
  Table batch(schema, {Column(TypeId::String), Column(TypeId::Int64)});
  std::vector<Column> cols = batch.release_columns();
  cols[0].append_string("x");
  cols[1].append<int64_t>(4);
  batch = Table(schema, std::move(cols));
  std::string recorded;
  write_jsonl_batch(recorded, Time{1000}, batch);
  write_jsonl_batch(recorded, Time{2000}, Table::empty(schema));
  auto source = make_replay_source(write("rec.jsonl", recorded), std::nullopt);
  EXPECT_EQ(source->schema(), (Schema{field("_1", TypeId::String), field("_2", TypeId::Int64)}));
  EXPECT_EQ(rows_of(source->next_batch(Time{1})), "[\"x\",4]\n");
  EXPECT_EQ(source->next_batch(Time{2}).num_rows(), 0u);
  EXPECT_TRUE(source->finished());
}

TEST_F(ReplayFiles, BadFilesFailAtConstructionNamingFileAndLine) {
  const std::string path = (dir_ / "bad.jsonl").string();
  EXPECT_EQ(replay_error("[[1]]\n{\"a\":1}\n"), "replay file '" + path + "' line 2: expected a JSON array of records, got an object");
  EXPECT_EQ(replay_error("[[1]]\n\n[[1],\n"), "replay file '" + path + "' line 3: not valid JSON");
  EXPECT_EQ(replay_error("5\n"), "replay file '" + path + "' line 1: expected a JSON array of records, got a number");
  EXPECT_EQ(replay_error("[[\"a\",1]]\n[[\"b\",2.5]]\n"),
            "replay file '" + path + "' line 2: record 1: field '_2': 2.5 is not an int64");
  EXPECT_EQ(replay_error("[[\"a\",1],[2,1]]\n"),
            "replay file '" + path + "' line 1: record 2: field '_1' holds both string and int64 values; give the schema");
  EXPECT_EQ(replay_error("[[1,[2]]]\n"),
            "replay file '" + path + "' line 1: record 1: cannot infer a type for an array in field '_2'; give the schema");
  EXPECT_EQ(replay_error("[[1,2],[3]]\n"),
            "replay file '" + path + "' line 1: record 2: expected an array of 2 values like record 1, got [3]");
  EXPECT_EQ(replay_error("[]\n\n[]\n"), "replay file '" + path + "' has no records to infer a schema from; give the schema");
  EXPECT_EQ(replay_error("[[1,2]]\n", Schema{field("a", TypeId::Int64), field("b", TypeId::String)}),
            "replay file '" + path + "' line 1: record 1: field 'b': 2 is not a string");
  const std::string missing = (dir_ / "missing.jsonl").string();
  EXPECT_EQ(error_of([&] { make_replay_source(missing, std::nullopt); }),
            "replay file '" + missing + "' cannot be opened: No such file or directory");
}

// ------------------------------------------------------------------ batches

TEST(ReplayBatch, ParsesRecordsOfASchema) {
  const Schema schema{field("k", TypeId::String), field("price", TypeId::Float64, true)};
  EXPECT_EQ(rows_of(parse_replay_batch(R"([["a",1.5],{"k":"b"},["c",null]])", schema)), "[\"a\",1.5]\n[\"b\",null]\n[\"c\",null]\n");
  EXPECT_EQ(parse_replay_batch("[]", schema).num_rows(), 0u);
  EXPECT_EQ(rows_of(parse_replay_batch("[1,2]", Schema{field("value", TypeId::Int32)})), "1\n2\n");
  EXPECT_EQ(rows_of(parse_replay_batch("[[1],[2]]", Schema{field("value", TypeId::Int32)})), "1\n2\n");
}

TEST(ReplayBatch, ErrorsNameTheRecordAndField) {
  const Schema schema{field("k", TypeId::String), field("price", TypeId::Float64, true)};
  EXPECT_EQ(error_of([&] { parse_replay_batch(R"([["a",1],["b","abc"]])", schema); }),
            "replay batch: record 2: field 'price': \"abc\" is not a float64");
  EXPECT_EQ(error_of([&] { parse_replay_batch(R"([{"price":1}])", schema); }), "replay batch: record 1: field 'k' is missing");
  EXPECT_EQ(error_of([&] { parse_replay_batch(R"(["a"])", schema); }),
            "replay batch: record 1: expected a JSON object or array, got a string");
  EXPECT_EQ(error_of([&] { parse_replay_batch(R"({"k":"a"})", schema); }),
            "replay batch: expected a JSON array of records, got an object");
  EXPECT_EQ(error_of([&] { parse_replay_batch("[1,", schema); }), "replay batch: not valid JSON: [1,");
}

TEST(ReplayBatch, WritesOneJsonLinePerBatch) {
  const Schema schema{field("k", TypeId::String), field("v", TypeId::Int64)};
  const Table pairs = parse_replay_batch(R"([["a",1],["b",2]])", schema);
  std::string out;
  write_jsonl_batch(out, Time{1000}, pairs);
  EXPECT_EQ(out, "{\"time\":1000,\"records\":[[\"a\",1],[\"b\",2]]}\n");
  write_jsonl_batch(out, Time{2000}, parse_replay_batch(R"(["x","y"])", Schema{field("w", TypeId::String)}));
  write_jsonl_batch(out, Time{3000}, Table::empty(schema));
  EXPECT_EQ(out,
            "{\"time\":1000,\"records\":[[\"a\",1],[\"b\",2]]}\n"
            "{\"time\":2000,\"records\":[\"x\",\"y\"]}\n"
            "{\"time\":3000,\"records\":[]}\n");
}

/// The records array of one write_jsonl_batch() line.
std::string records_of(const std::string& line) {
  const std::string key = "\"records\":";
  const size_t at = line.find(key);
  EXPECT_NE(at, std::string::npos);
  EXPECT_EQ(line.substr(line.size() - 2), "}\n");
  return line.substr(at + key.size(), line.size() - 2 - at - key.size());
}

TEST(ReplayBatch, RoundTripsEveryType) {
  const Schema schema{
      field("flag", TypeId::Bool, true),
      field("small", TypeId::Int32),
      field("big", TypeId::Int64, true),
      field("single", TypeId::Float32),
      field("real", TypeId::Float64),
      field("text", TypeId::String, true),
      field("items", TypeId::List, true, {field("sku", TypeId::String), field("n", TypeId::Int32, true)}),
      field("tags", TypeId::List, false, {field("tag", TypeId::String)}),
  };
  std::vector<Column> cols;
  for (const Field& f : schema) cols.push_back(Column::make_for(f));
  // row 0
  cols[0].append<uint8_t>(1);
  cols[1].append<int32_t>(-2147483647 - 1);
  cols[2].append<int64_t>(9007199254740993);  // not representable as a double
  cols[3].append<float>(0.1f);
  cols[4].append<double>(1e-300);
  cols[5].append_string("quote \" backslash \\ newline \n tab \t unicode \xC3\xA9 \x01");
  cols[6].children()[0].append_string("a");
  cols[6].children()[1].append<int32_t>(1);
  cols[6].children()[0].append_string("b");
  cols[6].children()[1].append_null();
  cols[6].append_list_end();
  cols[7].children()[0].append_string("x");
  cols[7].append_list_end();
  // row 1: nulls and empties
  cols[0].append_null();
  cols[1].append<int32_t>(2147483647);
  cols[2].append_null();
  cols[3].append<float>(-0.0f);
  cols[4].append<double>(-2.5e300);
  cols[5].append_null();
  cols[6].append_null();
  cols[7].append_list_end();
  // row 2
  cols[0].append<uint8_t>(0);
  cols[1].append<int32_t>(0);
  cols[2].append<int64_t>(-9223372036854775807 - 1);
  cols[3].append<float>(3.4e38f);
  cols[4].append<double>(2.0);
  cols[5].append_string("");
  cols[6].append_list_end();
  cols[7].children()[0].append_string("");
  cols[7].children()[0].append_string("y");
  cols[7].append_list_end();
  const Table original(schema, std::move(cols));

  std::string line;
  write_jsonl_batch(line, Time{5000}, original);
  const Table back = parse_replay_batch(records_of(line), schema);
  EXPECT_EQ(back.schema(), schema);
  EXPECT_TRUE(back == original) << line << "\nvs\n" << rows_of(back);
  EXPECT_EQ(rows_of(back), rows_of(original));
  EXPECT_TRUE(parse_replay_batch(line, schema) == original);  // the whole line works too
}

TEST(ReplayBatch, RoundTripsASingleListColumn) {
  const Schema schema{field("items", TypeId::List, false, {field("x", TypeId::Int64)})};
  const Table original = parse_replay_batch("[[1,2],[],[3]]", schema);
  EXPECT_EQ(rows_of(original), "[1,2]\n[]\n[3]\n");
  std::string line;
  write_jsonl_batch(line, Time{0}, original);
  EXPECT_EQ(line, "{\"time\":0,\"records\":[[1,2],[],[3]]}\n");
  EXPECT_TRUE(parse_replay_batch(records_of(line), schema) == original);
}

}  // namespace
}  // namespace sluice::pipeline
