// The waiting reply's mobile page (/reply/<token>, reply_notices.cpp): rendered on the server in
// Simplified Chinese with every text HTML-escaped; no script and nothing loaded from elsewhere
// (the response's CSP allows only the inline style).
#include <string>
#include <string_view>

namespace scrm::gateway {

struct reply_view {
    std::string clinic, agent, text, created_at;
};

namespace {

std::string escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string shell(std::string_view title, const std::string& main) {
    return R"html(<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>)html" +
           escape(title) +
           R"html(</title>
<style>
body{margin:0;font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f5f6f8;color:#222}
main{max-width:560px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:8px 0 4px}
p.sub{color:#666;margin:0 0 16px;font-size:14px}
.reply{background:#fff;border-radius:10px;padding:14px;font-size:16px;line-height:1.6;white-space:pre-wrap;word-break:break-word}
.note{color:#666;font-size:13px;margin-top:16px}
.error{color:#c0392b;font-size:16px}
</style>
</head>
<body>
<main>
)html" + main +
           R"html(
</main>
</body>
</html>
)html";
}

}  // namespace

std::string reply_page_html(const reply_view& v) {
    const std::string from = v.agent.empty() ? std::string() : "客服" + escape(v.agent) + " · ";
    return shell("诊所回复",
                 "<h1>" + escape(v.clinic) + "的回复</h1>\n<p class=\"sub\">" + from +
                     escape(v.created_at) + "</p>\n<div class=\"reply\" id=\"reply\">" +
                     escape(v.text) +
                     "</div>\n<p class=\"note\">如需继续咨询，请直接在公众号中给我们发消息。</p>");
}

std::string reply_problem_html(std::string_view title, std::string_view text) {
    return shell(title, "<h1>" + escape(title) + "</h1>\n<p class=\"error\" id=\"problem\">" +
                            escape(text) + "</p>");
}

}  // namespace scrm::gateway
