// Unicode operations the normalizers need, through ICU: the four normalization forms, full
// lowercasing (String.prototype.toLowerCase) and removing combining marks (StripAccents).
#pragma once

#include <string>
#include <string_view>

namespace alignkit::tokenizer {

enum class NormalizationForm { nfc, nfd, nfkc, nfkd };

std::string normalize_unicode(std::string_view text, NormalizationForm form);
std::string to_lower_unicode(std::string_view text);
std::string remove_marks(std::string_view text);  // drops every \p{M}

}  // namespace alignkit::tokenizer
