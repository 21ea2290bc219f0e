#pragma once
/// @file error.hpp
/// @brief The error type of the engine (C++17, so that CUDA translation units can use it).

#include <stdexcept>

namespace sluice {

/// @brief Every error the engine reports: a precondition that failed, a bad input, a
/// failed system or CUDA call. The message names the input and what was wrong.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// @brief Throws sluice::Error with @p message unless @p condition holds.
#define SLUICE_EXPECTS(condition, message)            \
  do {                                                \
    if (!(condition)) throw ::sluice::Error(message); \
  } while (0)

}  // namespace sluice
