// alignkit/did_you_mean.hpp: the rule, and that every place a user types a name follows it.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <alignkit/chat_template.hpp>
#include <alignkit/did_you_mean.hpp>

#include "test_support.hpp"

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

// Each kind of typo, in a recipe key of [optimizer], a DPO loss type and a Jinja test name, with
// the name each should suggest. Before one rule, the template parser (case-sensitive, no
// containment) had nothing to offer for the capitals and the prefix, nor the loss check for the
// prefix.
struct Typo {
  const char* kind;
  const char* key;
  const char* key_meant;
  const char* loss_type;
  const char* loss_type_meant;
  const char* test;
  const char* test_meant;
};
const Typo kTypos[] = {
    {"a letter dropped", "lerning_rate", "learning_rate", "sigmod", "sigmoid", "defind", "defined"},
    {"letters swapped", "learnign_rate", "learning_rate", "sigmiod", "sigmoid", "defiend", "defined"},
    {"capitals", "LEARNING_RATE", "learning_rate", "SIGMOID", "sigmoid", "DEFINED", "defined"},
    {"a prefix", "weight", "weight_decay", "bco", "bco_pair", "undef", "undefined"},
};

// `alignkit recipe check` on `recipe`: its output, which must be a refusal of the recipe.
std::string refused_recipe(const std::string& recipe) {
  testing::TempDir dir;
  const auto r = testing::run_alignkit({"recipe", "check", dir.write("recipe.toml", recipe).string()});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  return r.output;
}

// The diagnostic the chat-template parser gives for `source`.
std::string template_error(const std::string& source) {
  try {
    ChatTemplate(source, "template.jinja");
  } catch (const DiagnosticError& e) {
    return e.format();
  }
  ADD_FAILURE() << "parsed: " << source;
  return {};
}

TEST(DidYouMean, SameTypoSameSuggestionInRecipeKeysLossTypesAndTemplateTests) {
  for (const auto& typo : kTypos) {
    SCOPED_TRACE(typo.kind);
    const std::string key = refused_recipe(fmt::format("[optimizer]\n{} = 1e-5\n", typo.key));
    EXPECT_NE(key.find(fmt::format("unknown key '{}' in [optimizer]", typo.key)), std::string::npos) << key;
    EXPECT_NE(key.find(fmt::format("help: did you mean '{}'?", typo.key_meant)), std::string::npos) << key;

    const std::string loss =
        refused_recipe(fmt::format("[method]\nname = \"dpo\"\nloss_type = [\"{}\"]\n", typo.loss_type));
    EXPECT_NE(loss.find(fmt::format("'{}' is not one of:", typo.loss_type)), std::string::npos) << loss;
    EXPECT_NE(loss.find(fmt::format("help: did you mean '{}'?", typo.loss_type_meant)), std::string::npos) << loss;

    const std::string test = template_error(fmt::format("{{% if x is {} %}}y{{% endif %}}", typo.test));
    EXPECT_NE(test.find(fmt::format("unknown test '{}'", typo.test)), std::string::npos) << test;
    EXPECT_NE(test.find(fmt::format("help: did you mean '{}'?", typo.test_meant)), std::string::npos) << test;
  }
}

TEST(DidYouMean, FarOffNamesListTheChoicesInTemplatesAsInRecipes) {
  const std::string test = template_error("{% if x is zzzzzz %}y{% endif %}");
  EXPECT_NE(test.find("help: expected one of: boolean, callable, defined, eq, equalto, even, false,"), std::string::npos)
      << test;
  const std::string section = refused_recipe("[zzzzzz]\nx = 1\n");
  EXPECT_NE(section.find("help: expected one of: "), std::string::npos) << section;
}

}  // namespace
}  // namespace alignkit
