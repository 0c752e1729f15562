// "Did you mean": the closest known name to a misspelled one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alignkit {

// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `word`, if it is near enough to be a plausible typo: at most a third
// of the word's length in edits (at least 1, at most 3), or one that contains the word.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

// "did you mean 'x'?" or, with no close match, "expected one of: a, b, c"; empty when there are
// no candidates.
std::string suggestion(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace alignkit
