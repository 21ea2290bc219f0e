#include <cctype>

#include "sluice/backend.hpp"

namespace sluice {

SplitStrings split_strings(const Column& text, std::string_view separator) {
  SLUICE_EXPECTS(text.type() == TypeId::String,
                 "split: the field to split is " + std::string(type_name(text.type())) + ", not a string");
  SplitStrings out;
  out.tokens.reserve(text.size(), text.chars().size());
  auto emit = [&](size_t row, std::string_view token) {
    out.source_rows.push_back(static_cast<int64_t>(row));
    out.tokens.append_string(token);
  };
  for (size_t r = 0; r < text.size(); ++r) {
    if (!text.is_valid(r)) continue;
    const std::string_view s = text.string_at(r);
    if (separator.empty()) {
      size_t i = 0;
      while (i < s.size()) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        const size_t start = i;
        while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        if (i > start) emit(r, s.substr(start, i - start));
      }
    } else {
      size_t start = 0;
      while (true) {
        const size_t at = s.find(separator, start);
        emit(r, s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
        if (at == std::string_view::npos) break;
        start = at + separator.size();
      }
    }
  }
  return out;
}

SplitStrings ExecutionBackend::split_strings(const Column& text, std::string_view separator) {
  return sluice::split_strings(text, separator);
}

}  // namespace sluice
