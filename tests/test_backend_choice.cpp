// Backend selection: cpu always works, cuda is a clear error where it cannot run, auto picks
// the GPU when there is one and falls back to the CPU. GPU-only checks skip, visibly, where no GPU is present.
#include <gtest/gtest.h>

#include <cstdlib>

#include "sluice/sluice.hpp"

using namespace sluice;

TEST(BackendChoice, NamesParseAndUnknownNamesAreErrors) {
  EXPECT_EQ(parse_backend("cpu"), BackendKind::Cpu);
  EXPECT_EQ(parse_backend("cuda"), BackendKind::Cuda);
  EXPECT_EQ(parse_backend("auto"), BackendKind::Auto);
  try {
    parse_backend("tpu");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'tpu'"), std::string::npos) << e.what();
  }
}

TEST(BackendChoice, CpuGivesTheCpuBackendAndAutoTheGpuWhenThereIsOne) {
  EXPECT_EQ(make_backend(BackendKind::Cpu)->kind(), BackendKind::Cpu);
  EXPECT_EQ(make_backend(BackendKind::Auto)->kind(), cuda_device_count() > 0 ? BackendKind::Cuda : BackendKind::Cpu);
}

TEST(BackendChoice, CudaWithoutAGpuIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present: this checks machines without one";
  try {
    make_backend(BackendKind::Cuda);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(msg.find("no CUDA device is present") != std::string::npos ||
                msg.find("compiled without CUDA") != std::string::npos)
        << msg;
  }
}

TEST(BackendChoice, CudaOnAGpuGivesTheCudaBackend) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: GPU checks skipped";
  const auto backend = make_backend(BackendKind::Cuda);
  EXPECT_EQ(backend->kind(), BackendKind::Cuda);
  EXPECT_EQ(backend->name(), "cuda");
}

TEST(BackendChoice, AnUnknownBackendInTheEnvironmentIsNamed) {
  ::setenv("SLUICE_BACKEND", "tpu", 1);
  try {
    StreamingContext ctx(Duration{1000});
    ::unsetenv("SLUICE_BACKEND");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    ::unsetenv("SLUICE_BACKEND");
    EXPECT_NE(std::string(e.what()).find("SLUICE_BACKEND"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tpu"), std::string::npos) << e.what();
  }
}
