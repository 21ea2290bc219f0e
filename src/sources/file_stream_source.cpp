#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "sluice/log.hpp"
#include "sluice/source.hpp"

namespace sluice {
namespace {

namespace fs = std::filesystem;

/// Names that writers use while a file is still being written; such files are skipped until
/// they are renamed.
bool incomplete_name(const std::string& name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return name.empty() || name[0] == '.' || name[0] == '_' || ends_with(".tmp") || ends_with("._COPYING_");
}

/// Spark's textFileStream: each batch holds the lines of the files that appeared since the
/// last one; every file is read once, in name order. Files are read lazily, only as far as
/// the batch needs, so lines held back by max_rate stay on disk rather than in memory.
class FileStreamSource final : public Source {
 public:
  FileStreamSource(std::string directory, SourceOptions options) : directory_(std::move(directory)), options_(options) {
    SLUICE_EXPECTS(!directory_.empty(), "text_file_stream: directory must not be empty");
    SLUICE_EXPECTS(options_.max_rate >= 0,
                   name() + ": max_rate must not be negative, got " + std::to_string(options_.max_rate));
  }
  std::string name() const override { return "directory " + directory_; }
  const Schema& schema() const override { return schema_; }

  void start(Time, Duration interval) override {
    SLUICE_EXPECTS(interval.count() > 0, name() + ": batch interval must be positive");
    interval_ = interval;
    stopped_ = false;
  }
  void stop() override { stopped_ = true; }  // files already listed are still delivered

  Table next_batch(Time) override {
    if (!stopped_) list_new_files();
    std::vector<std::string> lines;
    read_lines(batch_budget(), lines);
    release_credit(lines.size());
    delivered_.fetch_add(lines.size());
    return lines_table(lines);
  }

  bool has_pending() const override { return current_.is_open() || !pending_.empty(); }
  SourceCounters counters() const override { return SourceCounters{delivered_.load(), 0, errors_.load()}; }

 private:
  /// Adds the files not seen before to pending_, in name order.
  void list_new_files() {
    std::error_code ec;
    const fs::file_status status = fs::status(directory_, ec);
    if (!fs::is_directory(status)) {
      const std::string reason = status.type() == fs::file_type::not_found ? "does not exist"
                                 : ec                                      ? ec.message()
                                                                           : "is not a directory";
      ++errors_;
      if (!directory_problem_) logging::warn(name() + ": " + reason + "; will look again every batch");
      directory_problem_ = true;
      return;
    }
    std::vector<std::string> listed;
    std::vector<std::string> fresh;
    for (fs::directory_iterator it(directory_, ec), end; !ec && it != end; it.increment(ec)) {
      std::string file = it->path().filename().string();
      std::error_code entry_ec;  // a dangling link must not end the listing
      if (incomplete_name(file) || !it->is_regular_file(entry_ec)) continue;
      if (!seen_.count(file)) fresh.push_back(file);
      listed.push_back(std::move(file));
    }
    if (ec) {
      ++errors_;
      if (!directory_problem_) logging::warn(name() + ": cannot list the directory (" + ec.message() + "); will retry");
      directory_problem_ = true;
      return;  // a partial listing would make the cleanup below forget files still present
    }
    if (directory_problem_) logging::info(name() + ": the directory is readable now");
    directory_problem_ = false;

    // Forget files that left the directory, so the remembered names stay as few as the
    // directory's files (a new file under an old name is a new file).
    std::vector<std::string> queued(pending_.begin(), pending_.end());
    if (current_.is_open()) queued.push_back(current_name_);
    std::sort(listed.begin(), listed.end());
    std::sort(queued.begin(), queued.end());
    std::erase_if(seen_, [&](const std::string& file) {
      return !std::binary_search(listed.begin(), listed.end(), file) &&
             !std::binary_search(queued.begin(), queued.end(), file);
    });
    std::sort(fresh.begin(), fresh.end());
    for (auto& file : fresh) {
      seen_.insert(file);
      pending_.push_back(std::move(file));
    }
  }

  /// Appends up to @p budget lines from the current file and the pending ones.
  void read_lines(size_t budget, std::vector<std::string>& lines) {
    while (lines.size() < budget) {
      if (!current_.is_open() && !open_next()) return;
      std::string line;
      while (lines.size() < budget && std::getline(current_, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(std::move(line));
      }
      if (current_.bad()) {
        // Lines already delivered cannot be taken back, so the file is not read again.
        ++errors_;
        logging::warn(name() + ": reading " + (fs::path(directory_) / current_name_).string() +
                  " failed; the rest of the file is skipped");
        current_.close();
      } else if (current_.eof() || current_.peek() == std::char_traits<char>::eof()) {
        current_.close();  // closed at once, so that has_pending() says false when all is read
      }
    }
  }

  /// Opens the first pending file; false when none is left.
  bool open_next() {
    while (!pending_.empty()) {
      current_name_ = std::move(pending_.front());
      pending_.pop_front();
      const fs::path path = fs::path(directory_) / current_name_;
      errno = 0;
      current_.clear();
      current_.open(path, std::ios::binary);
      if (current_.is_open()) {
        unreadable_.erase(current_name_);
        return true;
      }
      const std::string reason = errno ? std::strerror(errno) : "cannot open";
      ++errors_;
      std::error_code ec;
      if (!fs::exists(path, ec)) {
        logging::warn(name() + ": " + path.string() + " disappeared before it was read (" + reason + ")");
        continue;
      }
      // Not marked seen: the next batch tries again. Logged once per file, not every batch.
      seen_.erase(current_name_);
      if (unreadable_.insert(current_name_).second)
        logging::warn(name() + ": cannot read " + path.string() + " (" + reason + "); will retry every batch");
    }
    return false;
  }

  /// Lines this batch may deliver: unlimited without max_rate; otherwise the whole records
  /// of the rate's credit, which carries fractions over (so 0.5 records/s still passes one
  /// record every two seconds) but not more than one batch's worth (no bursts after idling).
  size_t batch_budget() {
    if (options_.max_rate <= 0) return std::numeric_limits<size_t>::max();
    const double per_batch = options_.max_rate * static_cast<double>(interval_.count()) / 1000.0;
    credit_ = std::min(credit_ + per_batch, std::max(per_batch, 1.0));
    return static_cast<size_t>(std::floor(credit_ + 1e-9));
  }
  void release_credit(size_t used) {
    if (options_.max_rate > 0) credit_ = std::max(0.0, credit_ - static_cast<double>(used));
  }

  std::string directory_;
  SourceOptions options_;
  Schema schema_{{"line", TypeId::String}};
  Duration interval_{1000};
  std::atomic<bool> stopped_{false};
  std::set<std::string> seen_;         ///< names listed and queued or read; pruned when files leave
  std::deque<std::string> pending_;    ///< listed, not yet opened, in name order
  std::ifstream current_;              ///< the file being read, when one is open
  std::string current_name_;
  std::set<std::string> unreadable_;   ///< files whose failure was already logged
  double credit_ = 0;
  bool directory_problem_ = false;
  std::atomic<size_t> delivered_{0};
  std::atomic<size_t> errors_{0};
};

}  // namespace

std::unique_ptr<Source> make_text_file_source(std::string directory, SourceOptions options) {
  return std::make_unique<FileStreamSource>(std::move(directory), options);
}

}  // namespace sluice
