#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>

#include "sluice/log.hpp"
#include "sluice/source.hpp"

namespace sluice {
namespace {

namespace fs = std::filesystem;

bool incomplete_name(const std::string& name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return name.empty() || name[0] == '.' || name[0] == '_' || ends_with(".tmp") || ends_with("._COPYING_");
}

/// Spark's textFileStream: each batch holds the lines of the files that appeared since the
/// last one; every file is read once. Lines over max_rate wait for later batches.
class FileStreamSource final : public Source {
 public:
  FileStreamSource(std::string directory, SourceOptions options) : directory_(std::move(directory)), options_(options) {
    SLUICE_EXPECTS(!directory_.empty(), "text_file_stream: directory must not be empty");
  }
  std::string name() const override { return "directory " + directory_; }
  const Schema& schema() const override { return schema_; }
  void start(Time, Duration interval) override { interval_ = interval; }

  Table next_batch(Time) override {
    scan();
    size_t take = backlog_.size();
    if (options_.max_rate > 0)
      take = std::min(take, static_cast<size_t>(options_.max_rate * static_cast<double>(interval_.count()) / 1000.0));
    std::vector<std::string> lines(std::make_move_iterator(backlog_.begin()),
                                   std::make_move_iterator(backlog_.begin() + static_cast<std::ptrdiff_t>(take)));
    backlog_.erase(backlog_.begin(), backlog_.begin() + static_cast<std::ptrdiff_t>(take));
    delivered_ += lines.size();
    return lines_table(lines);
  }

  bool has_pending() const override { return !backlog_.empty(); }
  SourceCounters counters() const override { return SourceCounters{delivered_, 0, errors_}; }

 private:
  void scan() {
    std::error_code ec;
    if (!fs::is_directory(directory_, ec)) {
      if (!missing_reported_) log::warn(name() + ": not a readable directory (" + (ec ? ec.message() : "missing") + "); will retry");
      missing_reported_ = true;
      ++errors_;
      return;
    }
    missing_reported_ = false;
    std::vector<fs::path> fresh;
    for (fs::directory_iterator it(directory_, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string file = it->path().filename().string();
      if (incomplete_name(file) || seen_.count(file) || !it->is_regular_file(ec)) continue;
      fresh.push_back(it->path());
    }
    if (ec) {
      log::warn(name() + ": cannot list: " + ec.message());
      ++errors_;
    }
    std::sort(fresh.begin(), fresh.end());
    for (const auto& path : fresh) {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        log::warn(name() + ": cannot read " + path.string() + "; will retry");  // not marked seen
        ++errors_;
        continue;
      }
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        backlog_.push_back(line);
      }
      seen_.insert(path.filename().string());
    }
  }

  std::string directory_;
  SourceOptions options_;
  Schema schema_{{"line", TypeId::String}};
  Duration interval_{1000};
  std::set<std::string> seen_;
  std::deque<std::string> backlog_;
  bool missing_reported_ = false;
  size_t delivered_ = 0;
  size_t errors_ = 0;
};

}  // namespace

std::unique_ptr<Source> make_text_file_source(std::string directory, SourceOptions options) {
  return std::make_unique<FileStreamSource>(std::move(directory), options);
}

}  // namespace sluice
