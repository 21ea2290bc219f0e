// The sluice command run as a user would: pipeline files with replay sources and jsonl
// sinks, exit statuses, and errors that name the file and the line.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

CommandResult run_command(const std::string& command) {
  CommandResult r;
  std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string read(const std::string& name) {
    std::ifstream in(dir_ / name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  CommandResult sluice(const std::string& args) { return run_command(std::string(SLUICE_CLI_PATH) + " " + args); }

  fs::path dir_;
};

TEST_F(CliTest, ReplayWordCountWithWindowWritesExactBatches) {
  const std::string input = write("in.jsonl",
                                  "[\"a b a\", \"c\"]\n"
                                  "[\"b\"]\n"
                                  "[]\n"
                                  "[\"c c\"]\n");
  const std::string pipeline = write("p.yaml", R"Y(
name: wc
batch_interval: 1s
sources:
  lines: {type: replay, path: )Y" + input + R"Y(, schema: {line: string}}
streams:
  counts:
    from: lines
    ops:
      - flat_map: {split: line, as: word}
      - reduce_by_key_and_window: {key: word, aggregates: {n: "count()"}, window: 2s, slide: 1s}
      - transform: {sort_by: [word]}
sinks:
  - {stream: counts, type: jsonl, path: )Y" + (dir_ / "out.jsonl").string() + R"Y(}
)Y");
  const CommandResult r = sluice("run " + pipeline);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read("out.jsonl"),
            "{\"time\":1000,\"records\":[[\"a\",2],[\"b\",1],[\"c\",1]]}\n"
            "{\"time\":2000,\"records\":[[\"a\",2],[\"b\",2],[\"c\",1]]}\n"
            "{\"time\":3000,\"records\":[[\"b\",1]]}\n"
            "{\"time\":4000,\"records\":[[\"c\",2]]}\n");
}

TEST_F(CliTest, CsvRecordsWithMalformedLinesAreCountedAndDeadLettered) {
  const std::string input = write("in.jsonl",
                                  "[\"eu,3\", \"us,x\", \"eu,4\"]\n"
                                  "[\"us,1\", \"broken\"]\n");
  const std::string pipeline = write("p.yaml", R"Y(
batch_interval: 1s
dead_letter: )Y" + (dir_ / "dead.jsonl").string() + R"Y(
sources:
  raw: {type: replay, path: )Y" + input + R"Y(, schema: {line: string}}
streams:
  sales:
    from: raw
    ops:
      - parse: {format: csv, schema: {region: string, amount: int64}}
      - reduce_by_key: {key: region, aggregates: {total: "sum(amount)", orders: "count()"}}
      - filter: "total > 0"
sinks:
  - {stream: sales, type: jsonl, path: )Y" + (dir_ / "out.jsonl").string() + R"Y(}
)Y");
  const CommandResult r = sluice("run " + pipeline);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read("out.jsonl"),
            "{\"time\":1000,\"records\":[[\"eu\",7,2]]}\n"
            "{\"time\":2000,\"records\":[[\"us\",1,1]]}\n");
  const std::string dead = read("dead.jsonl");
  EXPECT_NE(dead.find("us,x"), std::string::npos) << dead;
  EXPECT_NE(dead.find("broken"), std::string::npos) << dead;
  EXPECT_NE(r.output.find("2 malformed"), std::string::npos) << r.output;
}

TEST_F(CliTest, JoinOfTwoReplayStreams) {
  const std::string left = write("l.jsonl", "[[\"a\", 1], [\"b\", 2]]\n[[\"c\", 3]]\n");
  const std::string right = write("r.jsonl", "[[\"a\", \"x\"], [\"z\", \"y\"]]\n[[\"c\", \"w\"]]\n");
  const std::string pipeline = write("p.yaml", R"Y(
sources:
  l: {type: replay, path: )Y" + left + R"Y(, schema: {k: string, v: int64}}
  r: {type: replay, path: )Y" + right + R"Y(, schema: {k: string, w: string}}
streams:
  j:
    from: l
    ops:
      - left_outer_join: {with: r, key: k}
sinks:
  - {stream: j, type: jsonl, path: )Y" + (dir_ / "out.jsonl").string() + R"Y(}
)Y");
  const CommandResult r = sluice("run " + pipeline);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read("out.jsonl"),
            "{\"time\":1000,\"records\":[[\"a\",1,\"x\"],[\"b\",2,null]]}\n"
            "{\"time\":2000,\"records\":[[\"c\",3,\"w\"]]}\n");
}

TEST_F(CliTest, BadPipelineNamesFileLineAndProblem) {
  const std::string pipeline = write("bad.yaml",
                                     "batch_interval: 1s\n"
                                     "sources:\n"
                                     "  s: {type: generator}\n"
                                     "streams:\n"
                                     "  w:\n"
                                     "    from: s\n"
                                     "    ops:\n"
                                     "      - window: {window: 2500ms, slide: 1s}\n"
                                     "sinks:\n"
                                     "  - {stream: w, type: print}\n");
  for (const char* command : {"validate ", "run "}) {
    const CommandResult r = sluice(command + pipeline);
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find("bad.yaml:8:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("window 2500 ms is not a multiple of the batch interval 1000 ms"), std::string::npos)
        << r.output;
  }
}

TEST_F(CliTest, UnknownFieldAndUnknownOperationAreReported) {
  const std::string unknown_field = write("f.yaml",
                                          "sources:\n"
                                          "  s: {type: generator, kind: pairs}\n"
                                          "streams:\n"
                                          "  t:\n"
                                          "    from: s\n"
                                          "    ops:\n"
                                          "      - reduce_by_key: {key: kee, aggregates: {n: \"count()\"}}\n"
                                          "sinks:\n"
                                          "  - {stream: t, type: print}\n");
  CommandResult r = sluice("validate " + unknown_field);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("f.yaml:7:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'kee'"), std::string::npos) << r.output;

  const std::string unknown_op = write("o.yaml",
                                       "sources:\n"
                                       "  s: {type: generator}\n"
                                       "streams:\n"
                                       "  t:\n"
                                       "    from: s\n"
                                       "    ops:\n"
                                       "      - frobnicate: {}\n"
                                       "sinks:\n"
                                       "  - {stream: t, type: print}\n");
  r = sluice("validate " + unknown_op);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("o.yaml:7:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unknown operation 'frobnicate'"), std::string::npos) << r.output;

  const std::string list_key = write("l.yaml",
                                     "sources:\n"
                                     "  s: {type: generator, kind: pairs}\n"
                                     "streams:\n"
                                     "  t:\n"
                                     "    from: s\n"
                                     "    ops:\n"
                                     "      - group_by_key: {key: key}\n"
                                     "      - transform: {sort_by: [values desc]}\n"
                                     "sinks:\n"
                                     "  - {stream: t, type: print}\n");
  r = sluice("validate " + list_key);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("l.yaml:8:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("sort_by field 'values' is a list, which has no order"), std::string::npos) << r.output;

  r = sluice("validate " + (dir_ / "missing.yaml").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("missing.yaml: cannot open"), std::string::npos) << r.output;
}

TEST_F(CliTest, ValidateAcceptsEveryExamplePipeline) {
  for (const auto& entry : fs::directory_iterator(fs::path(SLUICE_SOURCE_DIR) / "examples")) {
    if (entry.path().extension() != ".yaml") continue;
    const CommandResult r = run_command("cd " + std::string(SLUICE_SOURCE_DIR) + " && " + SLUICE_CLI_PATH +
                                        " validate " + entry.path().string());
    EXPECT_EQ(r.status, 0) << entry.path() << ": " << r.output;
  }
}

TEST_F(CliTest, EmbeddedWordCountRunsAndPrintsWindowedCounts) {
  const CommandResult r = run_command("cd " + std::string(SLUICE_SOURCE_DIR) + " && " + SLUICE_CLI_PATH +
                                      " run examples/wordcount.yaml --batches 4");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Time: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[\""), std::string::npos) << r.output;  // a [word, count] record
}

}  // namespace
