// "Did you mean": the closest known name to a misspelt one, under one rule for every name the
// user types (recipe keys and sections, commands, choices, plugin names, loss types, Jinja tests
// and filters), and the help text that offers it.
//
// Torch-free: the jinja interpreter's tests compile sdk/did_you_mean.cpp as they do diagnostic.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alignkit {

// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `word`, if it is near enough to be a plausible typo: at most a third
// of the word's length in edits (at least 1, at most 3), or one that contains the word or that
// the word contains (either at least 3 characters). Ties go to the earlier candidate.
std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);

// "did you mean 'x'?" for the closest match, or empty when none is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// did_you_mean's text or, with no close match, "expected one of: a, b, c" (sorted); empty when
// there are no candidates.
std::string suggestion(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace alignkit
