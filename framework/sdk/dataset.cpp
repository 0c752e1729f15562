#include <alignkit/dataset.hpp>

namespace alignkit {

Dataset::~Dataset() = default;
ExampleSink::~ExampleSink() = default;

}  // namespace alignkit
