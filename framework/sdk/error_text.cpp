#include <alignkit/error_text.hpp>

#include <cstdlib>
#include <string_view>

#include <c10/util/Exception.h>

namespace alignkit {

std::string error_text(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  if (!torch_error) return e.what();
  const char* backtrace = std::getenv("ALIGNKIT_BACKTRACE");
  if (backtrace && std::string_view(backtrace) == "1") return e.what();
  std::string text = torch_error->what_without_backtrace();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace alignkit
