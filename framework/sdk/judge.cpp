#include <alignkit/judge.hpp>

namespace alignkit {

Judge::~Judge() = default;

}  // namespace alignkit
