// Which CUDA device a process takes: LOCAL_RANK picks it, one rank per GPU;
// a bad or too-large LOCAL_RANK is a usage error that says why.
#include "policy/model_source.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace r1kit {
namespace {

TEST(CudaDeviceIndex, LocalRankPicksTheDevice) {
  EXPECT_EQ(cuda_device_index(nullptr, 1), 0);
  EXPECT_EQ(cuda_device_index("", 2), 0);
  EXPECT_EQ(cuda_device_index("0", 8), 0);
  EXPECT_EQ(cuda_device_index("3", 8), 3);
}

TEST(CudaDeviceIndex, MoreRanksThanGpusIsAUsageError) {
  try {
    cuda_device_index("1", 1);
    FAIL() << "expected a usage error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("one rank per GPU"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(cuda_device_index("x", 2), Error);
  EXPECT_THROW(cuda_device_index("-1", 2), Error);
}

}  // namespace
}  // namespace r1kit
