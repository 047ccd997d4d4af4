// Patient evaluations' pure parts (docs/api.md "Evaluations"; issue 6): the attributes and their
// limits, the bodies and query strings of the evaluation endpoints with problems in Simplified
// Chinese, the signed links, and the CSV export's text. No I/O, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrm/gateway/link_tokens.hpp"

namespace scrm::gateway {

enum class rating : std::uint8_t { good, average, poor };
const char* to_string(rating r) noexcept;
const char* rating_label(rating r) noexcept;  // 好 / 中 / 差
std::optional<rating> parse_rating(std::string_view text) noexcept;
// The worst rating given (poor over average over good): the evaluation's 好评/中评/差评 in the
// list's filter. `ratings` must not be empty.
rating overall_rating(const std::vector<rating>& ratings) noexcept;

constexpr std::size_t max_custom_attributes = 10;
constexpr std::size_t max_attribute_chars = 64;
constexpr std::size_t max_comment_chars = 500;
constexpr std::size_t max_reply_chars = 600;

// 服务态度, 专业水平, 环境卫生, 等候时间: asked of every patient, before the clinic's own.
const std::vector<std::string>& default_evaluation_attributes();

// Attribute lists as stored (evaluations.attributes): one name per line.
std::string join_attributes(const std::vector<std::string>& names);
std::vector<std::string> split_attributes(std::string_view stored);

template <class T>
struct parsed_input {
    std::optional<T> value;
    std::string problem;  // Chinese, for people
};

// PUT /api/admin/evaluation-attributes: {"custom":["…",…]} — at most 10 names, each a valid name
// (text_rules.hpp) of at most 64 characters, distinct, none equal to a default attribute.
parsed_input<std::vector<std::string>> parse_attribute_update(std::string_view body);

// POST /api/eval/<token>: {"ratings":{"<attribute>":"good"|"average"|"poor",…},"comment":"…"}.
// Every attribute of `asked` rated once, nothing else; the comment optional, at most 500
// characters.
struct evaluation_submission {
    std::vector<rating> ratings;  // in the order of `asked`
    std::string comment;
};
parsed_input<evaluation_submission> parse_submission(std::string_view body,
                                                     const std::vector<std::string>& asked);

// POST /api/admin/evaluations/{id}/reply: {"text":"…"} — 1 to 600 characters.
parsed_input<std::string> parse_reply(std::string_view body);

// GET /api/admin/evaluations (and its exports): state=awaiting|submitted|replied,
// rating=good|average|poor, page (from 1), page_size (1–100, default 20).
struct evaluation_query {
    std::optional<std::string> state;
    std::optional<rating> overall;
    std::size_t page = 1;
    std::size_t page_size = 20;
};
parsed_input<evaluation_query> parse_evaluation_query(std::string_view query);

// The links' tokens: link_signer (link_tokens.hpp) with the purpose "evaluation" — the token
// signs "evaluation:<id>" with a key derived from the master key (evaluation_key_label). Expiry
// and the one submission are the row's (evaluations.expires_at, state).
class evaluation_tokens : public link_signer {
public:
    explicit evaluation_tokens(const std::array<unsigned char, 32>& key)
        : link_signer("evaluation", key) {}
};

// A CSV document Excel opens as UTF-8: a byte-order mark, RFC 4180 quoting, CRLF line ends; a
// cell starting with = + - @ (a formula to a spreadsheet) is prefixed with '.
std::string csv_document(const std::vector<std::vector<std::string>>& rows);

}  // namespace scrm::gateway
