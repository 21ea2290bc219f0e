// Tests for the CSV and JSON record parsers: typed columns, quoting, nulls, and malformed
// records returned with their reasons.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/record_parsers.hpp"
#include "cpu_delegating_backend.hpp"
#include "sluice/column.hpp"

namespace sluice::pipeline {
namespace {

Column lines_of(const std::vector<std::string>& lines) {
  Column c(TypeId::String);
  for (const auto& l : lines) c.append_string(l);
  return c;
}

/// Every row of @p table as Table::row_json spells it, one per line.
std::string rows_of(const Table& table) {
  std::string out;
  for (size_t r = 0; r < table.num_rows(); ++r) out += table.row_json(r) + "\n";
  return out;
}

/// "record => reason" for each malformed record.
std::vector<std::string> malformed_of(const ParseResult& result) {
  std::vector<std::string> out;
  for (const auto& m : result.malformed) out.push_back(m.record + " => " + m.reason);
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

Field field(std::string name, TypeId type, bool nullable = false) { return Field{std::move(name), type, nullable, {}}; }

/// One field of every scalar type, the even ones nullable.
Schema every_scalar_type() {
  return Schema{field("flag", TypeId::Bool), field("small", TypeId::Int32, true), field("big", TypeId::Int64),
                field("single", TypeId::Float32, true), field("real", TypeId::Float64), field("text", TypeId::String, true)};
}

// ------------------------------------------------------------------ CSV

/// A backend that parses delimited lines itself, as the CUDA backend does on the device, but
/// leaves every third line to the host: checks how parse_csv merges the two in input order.
class SplittingBackend final : public CpuDelegatingBackend {
 public:
  std::string_view name() const override { return "splitting"; }

  std::optional<ParsedLines> parse_records(const Column& lines, const Schema& schema, const TextRecordFormat& format) override {
    ++calls;
    std::vector<int64_t> mine, host;
    for (size_t r = 0; r < lines.size(); ++r) (r % 3 == 2 ? host : mine).push_back(static_cast<int64_t>(r));
    ParseResult parsed = format.kind == TextRecordFormat::Kind::Csv
                             ? parse_csv(lines.gather(mine), schema, CsvOptions{format.delimiter, format.quote, false})
                             : parse_json(lines.gather(mine), schema);
    for (int64_t& r : parsed.rows) r = mine[static_cast<size_t>(r)];
    // Malformed lines go back to the host too, for the host parser's reasons.
    for (size_t r = 0; r < lines.size(); ++r)
      if (r % 3 != 2 && !std::binary_search(parsed.rows.begin(), parsed.rows.end(), static_cast<int64_t>(r)) &&
          !lines.string_at(r).empty())
        host.push_back(static_cast<int64_t>(r));
    std::sort(host.begin(), host.end());
    return ParsedLines{std::move(parsed.table), std::move(parsed.rows), std::move(host)};
  }
  int calls = 0;
};

TEST(ParseCsv, ABackendsRowsAndTheHostsMergeInInputOrder) {
  const Schema schema{{"name", TypeId::String}, {"n", TypeId::Int64, true}};
  std::vector<std::string> text;
  for (int i = 0; i < 40; ++i) text.push_back(i % 7 == 3 ? "bad," + std::to_string(i) + ",extra" : (i % 11 == 5 ? "" : "w" + std::to_string(i) + "," + (i % 4 ? std::to_string(i) : "")));
  const Column lines = lines_of(text);
  SplittingBackend backend;
  const ParseResult merged = parse_csv(lines, schema, CsvOptions{}, backend);
  const ParseResult host = parse_csv(lines, schema, CsvOptions{});
  EXPECT_EQ(backend.calls, 1);
  EXPECT_EQ(rows_of(merged.table), rows_of(host.table));
  EXPECT_EQ(merged.rows, host.rows);
  EXPECT_EQ(malformed_of(merged), malformed_of(host));
  EXPECT_FALSE(host.malformed.empty());
  // A header is skipped per batch by the host parser: the backend is not asked.
  CsvOptions header;
  header.skip_header = true;
  EXPECT_EQ(rows_of(parse_csv(lines, schema, header, backend).table), rows_of(parse_csv(lines, schema, header).table));
  EXPECT_EQ(backend.calls, 1);
}

TEST(ParseJson, ABackendsRowsAndTheHostsMergeInInputOrder) {
  const Schema schema{{"name", TypeId::String}, {"n", TypeId::Int64, true}};
  std::vector<std::string> text;
  for (int i = 0; i < 40; ++i)
    text.push_back(i % 7 == 3 ? "{\"name\": 5}" : i % 11 == 5 ? "" : "{\"name\": \"w" + std::to_string(i) + "\", \"n\": " + (i % 4 ? std::to_string(i) : "null") + "}");
  const Column lines = lines_of(text);
  SplittingBackend backend;
  const ParseResult merged = parse_json(lines, schema, backend);
  const ParseResult host = parse_json(lines, schema);
  EXPECT_EQ(backend.calls, 1);
  EXPECT_EQ(rows_of(merged.table), rows_of(host.table));
  EXPECT_EQ(merged.rows, host.rows);
  EXPECT_EQ(malformed_of(merged), malformed_of(host));
  EXPECT_FALSE(host.malformed.empty());
}

/// A backend that parses every line itself and, as the CUDA backend does when every line is a
/// row, says so instead of listing the rows' lines; with @p leave_first_line it also (against
/// the contract) leaves line 0 to the host.
class EveryLineBackend final : public CpuDelegatingBackend {
 public:
  explicit EveryLineBackend(bool leave_first_line = false) : leave_first_line_(leave_first_line) {}
  std::string_view name() const override { return "every line"; }
  std::optional<ParsedLines> parse_records(const Column& lines, const Schema& schema, const TextRecordFormat&) override {
    ParseResult parsed = parse_csv(lines, schema, CsvOptions{});
    EXPECT_EQ(parsed.table.num_rows(), lines.size()) << "the test's lines must all be rows";
    std::vector<int64_t> host;
    if (leave_first_line_) host.push_back(0);
    return ParsedLines{std::move(parsed.table), {}, std::move(host), true};
  }

 private:
  bool leave_first_line_;
};

TEST(ParseCsv, ABackendThatParsedEveryLineListsNoRows) {
  const Schema schema{{"name", TypeId::String}, {"n", TypeId::Int64}};
  const Column lines = lines_of({"a,1", "b,2", "c,3"});
  EveryLineBackend backend;
  const ParseResult parsed = parse_csv(lines, schema, CsvOptions{}, backend);
  const ParseResult host = parse_csv(lines, schema, CsvOptions{});
  EXPECT_TRUE(parsed.rows_are_lines);
  EXPECT_TRUE(parsed.rows.empty());
  EXPECT_FALSE(host.rows_are_lines);
  EXPECT_EQ(parsed.line_of_each_row(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(parsed.line_of_each_row(), host.line_of_each_row());
  EXPECT_EQ(rows_of(parsed.table), rows_of(host.table));

  EveryLineBackend contradicting(/*leave_first_line=*/true);
  EXPECT_THROW(parse_csv(lines, schema, CsvOptions{}, contradicting), Error);
}

TEST(ParseCsv, EveryScalarType) {
  const ParseResult r = parse_csv(lines_of({
                                      "true,1,9000000000,1.5,2.25,hello",
                                      "FALSE,-2147483648,-1,-0.5,1e3,",
                                      "1,,0,,-0.0,\"\"",
                                  }),
                                  every_scalar_type());
  EXPECT_TRUE(r.malformed.empty()) << malformed_of(r)[0];
  EXPECT_EQ(rows_of(r.table),
            "[true,1,9000000000,1.5,2.25,\"hello\"]\n"
            "[false,-2147483648,-1,-0.5,1000.0,null]\n"
            "[true,null,0,null,-0.0,\"\"]\n");
  EXPECT_EQ(r.table.schema(), every_scalar_type());
  EXPECT_EQ(r.table.column("small").type(), TypeId::Int32);
  EXPECT_EQ(r.table.column("single").type(), TypeId::Float32);
}

TEST(ParseCsv, QuotedFieldsFollowRfc4180) {
  const Schema schema{field("name", TypeId::String), field("age", TypeId::Int64), field("quote", TypeId::String)};
  const ParseResult r = parse_csv(lines_of({
                                      "\"Smith, John\",42,\"He said \"\"hi\"\"\"",
                                      "plain,\"7\",\"\"",
                                      "5'10\",1,a\"b",  // quotes inside unquoted fields are ordinary characters
                                      "\"\",0,\",\"",
                                  }),
                                  schema);
  EXPECT_TRUE(r.malformed.empty()) << malformed_of(r)[0];
  EXPECT_EQ(rows_of(r.table),
            "[\"Smith, John\",42,\"He said \\\"hi\\\"\"]\n"
            "[\"plain\",7,\"\"]\n"
            "[\"5'10\\\"\",1,\"a\\\"b\"]\n"
            "[\"\",0,\",\"]\n");
}

TEST(ParseCsv, MalformedRecordsAreReturnedWithReasons) {
  const Schema schema{field("user", TypeId::String), field("price", TypeId::Float64, true), field("qty", TypeId::Int32)};
  const ParseResult r = parse_csv(lines_of({
                                      "alice,1.5,2",
                                      "bob,abc,1",
                                      "carol,1.0",
                                      "dave,1.0,2,extra",
                                      "erin,2.0,12x",
                                      "frank,2.0,",
                                      "gina,2.0,3000000000",
                                      "\"hank,1.0,1",
                                      "\"ivy\"x,1.0,1",
                                      "judy,1e999,1",
                                      "kim,,4",
                                  }),
                                  schema);
  EXPECT_EQ(rows_of(r.table), "[\"alice\",1.5,2]\n[\"kim\",null,4]\n");
  EXPECT_EQ(malformed_of(r), (std::vector<std::string>{
                                 "bob,abc,1 => field 'price': 'abc' is not a float64",
                                 "carol,1.0 => expected 3 fields, got 2",
                                 "dave,1.0,2,extra => expected 3 fields, got 4",
                                 "erin,2.0,12x => field 'qty': '12x' is not an int32",
                                 "frank,2.0, => field 'qty': empty value for non-nullable int32",
                                 "gina,2.0,3000000000 => field 'qty': '3000000000' is out of range for int32",
                                 "\"hank,1.0,1 => field 1: quoted field is not closed",
                                 "\"ivy\"x,1.0,1 => field 1: unexpected 'x' after the closing quote",
                                 "judy,1e999,1 => field 'price': '1e999' is out of range for float64",
                             }));
}

TEST(ParseCsv, NumbersAreStrict) {
  const Schema schema{field("n", TypeId::Int64), field("x", TypeId::Float64), field("b", TypeId::Bool)};
  const ParseResult r = parse_csv(lines_of({" 1,1.0,true", "+1,1.0,true", "1,1.0 ,true", "1,0x10,true", "1,1.0,yes",
                                            "1,inf,True", "-0,nan,0", "1,1e-400,1"}),
                                  schema);
  EXPECT_EQ(malformed_of(r), (std::vector<std::string>{
                                 " 1,1.0,true => field 'n': ' 1' is not an int64",
                                 "+1,1.0,true => field 'n': '+1' is not an int64",
                                 "1,1.0 ,true => field 'x': '1.0 ' is not a float64",
                                 "1,0x10,true => field 'x': '0x10' is not a float64",
                                 "1,1.0,yes => field 'b': 'yes' is not a bool",
                             }));
  EXPECT_EQ(rows_of(r.table), "[1,null,true]\n[0,null,false]\n[1,0.0,true]\n");  // JSON writes inf and nan as null
  EXPECT_TRUE(std::isinf(r.table.column("x").values<double>()[0]));
  EXPECT_TRUE(std::isnan(r.table.column("x").values<double>()[1]));
}

TEST(ParseCsv, EmptyFields) {
  const Schema schema{field("s", TypeId::String), field("ns", TypeId::String, true), field("ni", TypeId::Int64, true)};
  const ParseResult r = parse_csv(lines_of({",,", "\"\",\"\",\"\"", "a,b,1"}), schema);
  EXPECT_TRUE(r.malformed.empty());
  EXPECT_EQ(rows_of(r.table), "[\"\",null,null]\n[\"\",\"\",null]\n[\"a\",\"b\",1]\n");
}

TEST(ParseCsv, HeaderCrlfBlankLinesAndOptions) {
  const Schema schema{field("k", TypeId::String), field("v", TypeId::Int64)};
  CsvOptions options;
  options.skip_header = true;
  options.delimiter = ';';
  options.quote = '\'';
  const ParseResult r = parse_csv(lines_of({"k;v", "'a;b';1\r", "", "\r", "'it''s';2", "c,d;3"}), schema, options);
  EXPECT_TRUE(r.malformed.empty()) << malformed_of(r)[0];
  EXPECT_EQ(rows_of(r.table), "[\"a;b\",1]\n[\"it's\",2]\n[\"c,d\",3]\n");
}

TEST(ParseCsv, NullLinesAreMalformed) {
  Column lines(TypeId::String, true);
  lines.append_string("x");
  lines.append_null();
  const ParseResult r = parse_csv(lines, Schema{field("s", TypeId::String)});
  EXPECT_EQ(rows_of(r.table), "\"x\"\n");
  EXPECT_EQ(malformed_of(r), std::vector<std::string>{" => record is null"});
}

TEST(ParseCsv, BadCallsThrow) {
  EXPECT_EQ(error_of([] { parse_csv(Column(TypeId::Int64), Schema{field("s", TypeId::String)}); }),
            "parse_csv: records must be a string column, got int64");
  const Schema with_list{field("id", TypeId::Int64), Field{"items", TypeId::List, false, {field("x", TypeId::Int64)}}};
  EXPECT_EQ(error_of([&] { parse_csv(lines_of({"1"}), with_list); }),
            "parse_csv: field 'items' is a list; CSV records hold scalar fields only (schema {id: int64, items: "
            "list<x: int64>})");
}

TEST(ParseCsv, ManyRecords) {
  std::vector<std::string> lines;
  for (int i = 0; i < 10000; ++i) lines.push_back("w" + std::to_string(i % 10) + "," + std::to_string(i) + (i % 1000 == 0 ? "x" : ""));
  const ParseResult r = parse_csv(lines_of(lines), Schema{field("word", TypeId::String), field("n", TypeId::Int64)});
  EXPECT_EQ(r.table.num_rows(), 9990u);
  EXPECT_EQ(r.malformed.size(), 10u);
  EXPECT_EQ(r.table.column("n").values<int64_t>()[0], 1);
  EXPECT_EQ(r.table.column("word").string_at(9989), "w9");
  EXPECT_EQ(r.table.column("n").values<int64_t>()[9989], 9999);
}

// ------------------------------------------------------------------ JSON

TEST(ParseJson, ObjectsByNameAndArraysByPosition) {
  const Schema schema{field("user", TypeId::String), field("price", TypeId::Float64, true), field("qty", TypeId::Int64)};
  const ParseResult r = parse_json(lines_of({
                                       R"({"user":"alice","price":1.5,"qty":2})",
                                       R"({"qty":3,"user":"bob","extra":[1,2]})",  // missing nullable: null; extra: ignored
                                       R"(["carol",2,4])",
                                       R"(["dave",null,5.0])",
                                       "  ",
                                       R"({"user":"erin","price":null,"qty":-1}  )",
                                   }),
                                   schema);
  EXPECT_TRUE(r.malformed.empty()) << malformed_of(r)[0];
  EXPECT_EQ(rows_of(r.table),
            "[\"alice\",1.5,2]\n[\"bob\",null,3]\n[\"carol\",2.0,4]\n[\"dave\",null,5]\n[\"erin\",null,-1]\n");
}

TEST(ParseJson, MalformedRecordsAreReturnedWithReasons) {
  const Schema schema{field("user", TypeId::String), field("price", TypeId::Float64, true), field("qty", TypeId::Int32)};
  const ParseResult r = parse_json(lines_of({
                                       R"({"user":"ok","qty":1})",
                                       R"({"user":"a","price":"abc","qty":1})",
                                       R"({"user":"b","price":1})",
                                       R"({"user":"c","qty":null})",
                                       R"({"user":"d","qty":1.5})",
                                       R"({"user":"e","qty":3000000000})",
                                       R"({"user":5,"qty":1})",
                                       R"(["f",1.0])",
                                       R"({"user":"g")",
                                       R"("just a string")",
                                       R"({"user":"h","qty":true})",
                                   }),
                                   schema);
  EXPECT_EQ(rows_of(r.table), "[\"ok\",null,1]\n");
  EXPECT_EQ(malformed_of(r), (std::vector<std::string>{
                                 R"({"user":"a","price":"abc","qty":1} => field 'price': "abc" is not a float64)",
                                 R"({"user":"b","price":1} => field 'qty' is missing)",
                                 R"({"user":"c","qty":null} => field 'qty': null for non-nullable int32)",
                                 R"({"user":"d","qty":1.5} => field 'qty': 1.5 is not an int32)",
                                 R"({"user":"e","qty":3000000000} => field 'qty': 3000000000 is out of range for int32)",
                                 R"({"user":5,"qty":1} => field 'user': 5 is not a string)",
                                 R"(["f",1.0] => expected an array of 3 values, got 2)",
                                 R"({"user":"g" => not valid JSON)",
                                 R"("just a string" => expected a JSON object or array, got a string)",
                                 R"({"user":"h","qty":true} => field 'qty': true is not an int32)",
                             }));
}

TEST(ParseJson, EveryTypeIncludingLists) {
  const Field items{"items", TypeId::List, true, {field("sku", TypeId::String), field("n", TypeId::Int32, true)}};
  const Field tags{"tags", TypeId::List, false, {field("tag", TypeId::String)}};
  Schema schema = every_scalar_type();
  schema.fields().push_back(items);
  schema.fields().push_back(tags);
  const ParseResult r = parse_json(
      lines_of({
          R"({"flag":true,"small":7,"big":-9000000000,"single":0.25,"real":1e-3,"text":"t","items":[["a",1],{"sku":"b"}],"tags":["x","y"]})",
          R"([false,null,0,null,2,null,null,[]])",
          R"({"flag":false,"big":1,"real":0,"items":[["a"]],"tags":[]})",
          R"({"flag":false,"big":1,"real":0,"items":[["a",1.5]],"tags":[]})",
          R"({"flag":false,"big":1,"real":0,"tags":"x"})",
      }),
      schema);
  EXPECT_EQ(rows_of(r.table),
            "[true,7,-9000000000,0.25,0.001,\"t\",[[\"a\",1],[\"b\",null]],[\"x\",\"y\"]]\n"
            "[false,null,0,null,2.0,null,null,[]]\n");
  EXPECT_EQ(malformed_of(r),
            (std::vector<std::string>{
                R"({"flag":false,"big":1,"real":0,"items":[["a"]],"tags":[]} => field 'items': element 1: expected an array of 2 values, got 1)",
                R"({"flag":false,"big":1,"real":0,"items":[["a",1.5]],"tags":[]} => field 'items': element 1: field 'n': 1.5 is not an int32)",
                R"({"flag":false,"big":1,"real":0,"tags":"x"} => field 'tags': "x" is not a list (a JSON array))",
            }));
  EXPECT_EQ(r.table.column("items").children()[0].size(), 2u);
}

TEST(ParseJson, LongValuesAreCutInReasons) {
  const std::string long_text(100, 'z');
  const ParseResult r = parse_json(lines_of({R"({"n":")" + long_text + R"("})"}), Schema{field("n", TypeId::Int64)});
  ASSERT_EQ(r.malformed.size(), 1u);
  EXPECT_EQ(r.malformed[0].reason, "field 'n': \"" + std::string(39, 'z') + "... is not an int64");
}

TEST(CsvParser, LargeInputsParsedInSlicesKeepInputOrderRowsAndMalformedRecords) {
  // Above the parallel threshold: the slices must join back exactly as one pass would.
  const Schema schema{{"id", TypeId::Int64}, {"name", TypeId::String}, {"score", TypeId::Float64, true}};
  std::vector<std::string> lines{"id,name,score"};
  std::vector<std::string> expected_malformed;
  for (int i = 0; i < 100'000; ++i) {
    if (i % 9973 == 0) {
      lines.push_back(std::to_string(i) + ",bad");
      expected_malformed.push_back(lines.back() + " => expected 3 fields, got 2");
    } else {
      lines.push_back(std::to_string(i) + ",\"n" + std::to_string(i) + "\"," + (i % 7 ? std::to_string(i) + ".5" : ""));
    }
  }
  const ParseResult r = parse_csv(lines_of(lines), schema, CsvOptions{.skip_header = true});
  EXPECT_EQ(malformed_of(r), expected_malformed);
  ASSERT_EQ(r.table.num_rows(), 100'000u - expected_malformed.size());
  ASSERT_EQ(r.rows.size(), r.table.num_rows());
  const auto ids = r.table.column("id").values<int64_t>();
  const Column& names = r.table.column("name");
  const Column& scores = r.table.column("score");
  for (size_t row = 0; row < r.table.num_rows(); ++row) {
    const int64_t id = ids[row];
    ASSERT_EQ(r.rows[row], id + 1) << "row " << row;  // line index: the header is line 0
    ASSERT_EQ(names.string_at(row), "n" + std::to_string(id));
    ASSERT_EQ(scores.is_valid(row), id % 7 != 0) << "row " << row;
    if (id % 7) ASSERT_EQ(scores.values<double>()[row], static_cast<double>(id) + 0.5);
    if (row > 0) ASSERT_LT(ids[row - 1], id);
  }
}

}  // namespace
}  // namespace sluice::pipeline
