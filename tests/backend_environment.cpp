// Linked into every test program: when SLUICE_BACKEND=cuda asks for the whole program to run
// on the CUDA backend and there is no GPU, every test is skipped with that reason instead
// of failing one by one.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "sluice/backend.hpp"

namespace {

class BackendEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* backend = std::getenv("SLUICE_BACKEND");
    if (backend && std::string(backend) == "cuda" && sluice::cuda_device_count() == 0)
      GTEST_SKIP() << "SLUICE_BACKEND=cuda runs this suite on the CUDA backend, and there is no CUDA device on this machine";
  }
};

[[maybe_unused]] ::testing::Environment* const registered = ::testing::AddGlobalTestEnvironment(new BackendEnvironment);

}  // namespace
