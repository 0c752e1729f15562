// alignkit/did_you_mean.hpp: the rule for suggesting a name in place of a misspelt one.
#include <gtest/gtest.h>

#include <alignkit/did_you_mean.hpp>

namespace alignkit {
namespace {

TEST(EditDistance, CountsInsertionsDeletionsSubstitutionsAndTranspositions) {
  EXPECT_EQ(edit_distance("cosine", "cosine"), 0u);
  EXPECT_EQ(edit_distance("cosin", "cosine"), 1u);    // insertion
  EXPECT_EQ(edit_distance("cosinee", "cosine"), 1u);  // deletion
  EXPECT_EQ(edit_distance("cosane", "cosine"), 1u);   // substitution
  EXPECT_EQ(edit_distance("csoine", "cosine"), 1u);   // adjacent transposition
  EXPECT_EQ(edit_distance("COSINE", "cosine"), 0u);   // case-insensitive
  EXPECT_EQ(edit_distance("", "abc"), 3u);
}

TEST(ClosestMatch, SuggestsPlausibleTyposOnly) {
  const std::vector<std::string> keys = {"learning_rate", "weight_decay", "adam_beta1", "adam_beta2"};
  EXPECT_EQ(closest_match("lerning_rate", keys), "learning_rate");
  EXPECT_EQ(closest_match("weight_decy", keys), "weight_decay");
  EXPECT_EQ(closest_match("adam_beta3", keys), "adam_beta1");
  EXPECT_FALSE(closest_match("batch_size", keys).has_value());
  EXPECT_EQ(closest_match("decay", keys), "weight_decay");  // contained in a key
  // A third of the word's length: one edit in a five-letter word, not two.
  EXPECT_EQ(closest_match("uper", {"upper", "lower"}), "upper");
  EXPECT_FALSE(closest_match("uppr_", {"upper", "lower"}).has_value());
}

TEST(Suggestion, ListsChoicesWhenNothingIsClose) {
  EXPECT_EQ(suggestion("cosin", {"linear", "cosine"}), "did you mean 'cosine'?");
  EXPECT_EQ(suggestion("zzz", {"linear", "cosine"}), "expected one of: cosine, linear");
  EXPECT_EQ(suggestion("zzz", {}), "");
  EXPECT_EQ(did_you_mean("cosin", {"linear", "cosine"}), "did you mean 'cosine'?");
  EXPECT_EQ(did_you_mean("zzz", {"linear", "cosine"}), "");
}

}  // namespace
}  // namespace alignkit
