#include "unicode_text.hpp"

#include <stdexcept>
#include <vector>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "utf8.hpp"

namespace alignkit::tokenizer {

namespace {

bool is_ascii(std::string_view text) {
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

std::u16string to_utf16(std::string_view text) {
  std::u16string out(text.size(), u'\0');
  int32_t length = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strFromUTF8(reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &length, text.data(),
                static_cast<int32_t>(text.size()), &status);
  if (U_FAILURE(status)) throw std::runtime_error("text is not valid UTF-8");
  out.resize(length);
  return out;
}

std::string to_utf8(std::u16string_view text) {
  std::string out(text.size() * 3, '\0');
  int32_t length = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &length, reinterpret_cast<const UChar*>(text.data()),
              static_cast<int32_t>(text.size()), &status);
  if (U_FAILURE(status)) throw std::runtime_error("ICU could not convert text to UTF-8");
  out.resize(length);
  return out;
}

const UNormalizer2* normalizer_for(NormalizationForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* n = nullptr;
  switch (form) {
    case NormalizationForm::nfc: n = unorm2_getNFCInstance(&status); break;
    case NormalizationForm::nfd: n = unorm2_getNFDInstance(&status); break;
    case NormalizationForm::nfkc: n = unorm2_getNFKCInstance(&status); break;
    case NormalizationForm::nfkd: n = unorm2_getNFKDInstance(&status); break;
  }
  if (U_FAILURE(status) || !n) throw std::runtime_error("ICU has no data for Unicode normalization");
  return n;
}

}  // namespace

std::string normalize_unicode(std::string_view text, NormalizationForm form) {
  if (is_ascii(text)) return std::string(text);  // ASCII is invariant under all four forms
  const UNormalizer2* normalizer = normalizer_for(form);
  const std::u16string source = to_utf16(text);
  UErrorCode status = U_ZERO_ERROR;
  const int32_t normalized_prefix = unorm2_spanQuickCheckYes(
      normalizer, reinterpret_cast<const UChar*>(source.data()), static_cast<int32_t>(source.size()), &status);
  if (U_SUCCESS(status) && normalized_prefix == static_cast<int32_t>(source.size())) return std::string(text);
  std::u16string result(source.size() * 4 + 16, u'\0');
  status = U_ZERO_ERROR;
  int32_t length = unorm2_normalize(normalizer, reinterpret_cast<const UChar*>(source.data()),
                                    static_cast<int32_t>(source.size()), reinterpret_cast<UChar*>(result.data()),
                                    static_cast<int32_t>(result.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    result.resize(length);
    status = U_ZERO_ERROR;
    length = unorm2_normalize(normalizer, reinterpret_cast<const UChar*>(source.data()),
                              static_cast<int32_t>(source.size()), reinterpret_cast<UChar*>(result.data()),
                              static_cast<int32_t>(result.size()), &status);
  }
  if (U_FAILURE(status)) throw std::runtime_error("ICU could not normalize the text");
  result.resize(length);
  return to_utf8(result);
}

std::string to_lower_unicode(std::string_view text) {
  if (is_ascii(text)) {
    std::string out(text);
    for (char& c : out)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
  }
  const std::u16string source = to_utf16(text);
  std::u16string result(source.size() * 3 + 16, u'\0');
  UErrorCode status = U_ZERO_ERROR;
  // The root locale: context-sensitive (final sigma) but locale-independent, as toLowerCase().
  int32_t length = u_strToLower(reinterpret_cast<UChar*>(result.data()), static_cast<int32_t>(result.size()),
                                reinterpret_cast<const UChar*>(source.data()), static_cast<int32_t>(source.size()), "",
                                &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    result.resize(length);
    status = U_ZERO_ERROR;
    length = u_strToLower(reinterpret_cast<UChar*>(result.data()), static_cast<int32_t>(result.size()),
                          reinterpret_cast<const UChar*>(source.data()), static_cast<int32_t>(source.size()), "",
                          &status);
  }
  if (U_FAILURE(status)) throw std::runtime_error("ICU could not lowercase the text");
  result.resize(length);
  return to_utf8(result);
}

std::string remove_marks(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    const auto cp = decode_code_point(text, pos);
    if (!(U_GET_GC_MASK(static_cast<UChar32>(cp.value)) & U_GC_M_MASK)) out.append(text.substr(pos, cp.length));
    pos += cp.length;
  }
  return out;
}

}  // namespace alignkit::tokenizer
