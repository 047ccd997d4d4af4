// The console's image and news sends' pure checks: the uploaded image (size, JPEG/PNG magic) and
// the one-article news body (title, description, addresses, UTF-8), and the send text's emoji.
#include <catch2/catch.hpp>

#include "scrm/gateway/media_requests.hpp"

using namespace scrm::gateway;

namespace {
std::string repeat(const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
}
}  // namespace

TEST_CASE("an uploaded image is JPEG or PNG by its first bytes and at most 2 MB") {
    struct row {
        std::string name, bytes, problem;
        bool too_large;
    };
    const std::string jpeg("\xFF\xD8\xFF\xE0", 4);
    const std::string png("\x89PNG\r\n\x1A\n", 8);
    const auto r = GENERATE_COPY(values<row>({
        {"jpeg", jpeg + "x", "", false},
        {"png", png + "x", "", false},
        {"jpeg at the limit", jpeg + std::string(max_image_bytes - 4, 'x'), "", false},
        {"one byte over", jpeg + std::string(max_image_bytes - 3, 'x'), "图片过大", true},
        {"empty", "", "请上传图片", false},
        {"gif", "GIF89a", "JPEG 或 PNG", false},
        {"png magic cut short", png.substr(0, 7), "JPEG 或 PNG", false},
        {"jpeg magic cut short", jpeg.substr(0, 2), "JPEG 或 PNG", false},
    }));
    CAPTURE(r.name);
    const image_check c = check_image(r.bytes);
    CHECK(c.problem.find(r.problem) != std::string::npos);
    CHECK(c.problem.empty() == r.problem.empty());
    CHECK(c.too_large == r.too_large);
}

TEST_CASE("a news body has a title, an http(s) url, and optional description and picurl") {
    struct row {
        std::string name, body, problem;  // problem: a part of it; empty when accepted
    };
    const auto r = GENERATE(values<row>({
        {"all fields", R"({"title":"须知","description":"摘要","url":"https://a.cn/x","picurl":"http://a.cn/p.jpg"})", ""},
        {"title and url", R"({"title":"须知","url":"http://a.cn"})", ""},
        {"64 Chinese characters", "{\"title\":\"" + repeat("字", 64) + "\",\"url\":\"https://a.cn\"}", ""},
        {"65 Chinese characters", "{\"title\":\"" + repeat("字", 65) + "\",\"url\":\"https://a.cn\"}", "标题过长"},
        {"65 characters", "{\"title\":\"" + std::string(65, 'a') + "\",\"url\":\"https://a.cn\"}", "标题过长"},
        {"121 description", "{\"title\":\"t\",\"description\":\"" + std::string(121, 'a') + "\",\"url\":\"https://a.cn\"}", "摘要过长"},
        {"emoji title", R"({"title":"😀","url":"https://a.cn"})", ""},
        {"no title", R"({"url":"https://a.cn"})", "标题"},
        {"null title", R"({"title":null,"url":"https://a.cn"})", "标题"},
        {"no url", R"({"title":"t"})", "链接"},
        {"scheme only", R"({"title":"t","url":"https://"})", "链接"},
        {"javascript url", R"j({"title":"t","url":"javascript:alert(1)"})j", "链接"},
        {"space in url", R"({"title":"t","url":"https://a.cn/a b"})", "链接"},
        {"url too long", "{\"title\":\"t\",\"url\":\"https://" + std::string(1017, 'a') + "\"}", "链接"},
        {"url at the limit", "{\"title\":\"t\",\"url\":\"https://" + std::string(1016, 'a') + "\"}", ""},
        {"bad picurl", R"({"title":"t","url":"https://a.cn","picurl":"data:x"})", "picurl"},
        {"number", R"({"title":5,"url":"https://a.cn"})", "必须是文字"},
        {"array", "[]", "JSON"},
        // RapidJSON does not check the encoding by default: the check is ours.
        {"invalid utf-8", "{\"title\":\"\xC3\x28\",\"url\":\"https://a.cn\"}", "无效字符"},
    }));
    CAPTURE(r.name);
    const auto p = parse_send_news(r.body);
    CHECK(p.value.has_value() == r.problem.empty());
    CHECK(p.problem.find(r.problem) != std::string::npos);
}

TEST_CASE("the text send takes 4-byte emoji and WeChat's face codes as they are") {
    const std::string text = "😀🦷🇨🇳 /::) /:B-) [微笑]";
    const auto p = parse_send_text("{\"text\":\"" + text + "\"}");
    REQUIRE(p.value.has_value());
    CHECK(*p.value == text);
    // A lone surrogate escaped in JSON is not text.
    CHECK_FALSE(parse_send_text(R"({"text":"\ud83d"})").value.has_value());
}
