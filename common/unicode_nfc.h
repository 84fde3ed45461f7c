// Unicode NFC normalisation (canonical composition) through ICU: what Hugging
// Face tokenizers' "NFC" normalizer does and what corpus cleaning applies.
// Thread-safe (ICU's normalizer instance is immutable).
#pragma once

#include <string>
#include <string_view>

namespace r1kit {

// `text` (valid UTF-8) in NFC; ASCII and already-normal text come back unchanged.
std::string unicode_nfc(std::string_view text);

}  // namespace r1kit
