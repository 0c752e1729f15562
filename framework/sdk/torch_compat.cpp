#include <alignkit/torch_compat.hpp>

#include <torch/cuda.h>

namespace alignkit::compat {

bool cuda_available() { return torch::cuda::is_available(); }

}  // namespace alignkit::compat
