// What a user is shown for an exception: a LibTorch error's message without the C++ stack that
// c10::Error::what() appends (some 30 frames of LibTorch internals); the frames come back with
// ALIGNKIT_BACKTRACE=1, for a developer chasing where the error came from.
#pragma once

#include <exception>
#include <string>

namespace alignkit {

std::string error_text(const std::exception& e);

}  // namespace alignkit
