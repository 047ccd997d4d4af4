// Static pages (the console, the administration pages): request paths resolved under a mount
// (traversal, encoded separators, folders) and folders loaded (types, hidden files, symbolic links,
// limits). Served over HTTP: integration_gateway's static-pages case and the browser tests.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <ostream>

#include "scrm/gateway/static_files.hpp"
#include "test_env.hpp"

using namespace scrm::gateway;
namespace fs = std::filesystem;

namespace scrm::gateway {
std::ostream& operator<<(std::ostream& os, const static_path& p) {
    const char* k = p.what == static_path::kind::file       ? "file"
                    : p.what == static_path::kind::redirect ? "redirect"
                                                             : "bad";
    return os << k << "(" << p.file << ")";
}
bool operator==(const static_path& a, const static_path& b) {
    return a.what == b.what && a.file == b.file;
}
}  // namespace scrm::gateway

namespace {

struct row {
    const char* name;
    const char* path;
    static_path expected;
};

static_path file(const char* f) {
    return {static_path::kind::file, f};
}
const static_path bad{static_path::kind::bad, ""};

void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
}

struct temp_dir {
    fs::path path = fs::temp_directory_path() / scrm::test::unique_name("scrm_console");
    temp_dir() { fs::create_directories(path); }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

}  // namespace

TEST_CASE("console paths: files and folders resolve and nothing leaves the set") {
    auto r = GENERATE(values<row>({
        {"bare prefix redirects", "/console", {static_path::kind::redirect, ""}},
        {"root is the index", "/console/", file("index.html")},
        {"a file", "/console/console.css", file("console.css")},
        {"a nested file", "/console/js/main.js", file("js/main.js")},
        {"a folder names its index", "/console/js/", file("js/index.html")},
        {"escapes are decoded", "/console/js/m%61in.js", file("js/main.js")},
        {"utf-8 escapes", "/console/%E5%9B%BE.png", file("\xE5\x9B\xBE.png")},
        {"dot dot", "/console/../README.md", bad},
        {"dot dot inside", "/console/js/../../x", bad},
        {"dot segment", "/console/./index.html", bad},
        {"encoded dot dot", "/console/%2e%2e/README.md", bad},
        {"encoded slash", "/console/js%2fmain.js", bad},
        {"encoded slash lower", "/console/..%2fx", bad},
        {"encoded backslash", "/console/..%5cx", bad},
        {"backslash", "/console/a\\b", bad},
        {"empty segment", "/console//etc/passwd", bad},
        {"trailing dot dot", "/console/js/..", bad},
        {"nul", "/console/%00index.html", bad},
        {"control character", "/console/a%0Ab", bad},
        {"short escape", "/console/a%2", bad},
        {"bad escape", "/console/a%zz", bad},
        {"other prefix", "/consolex/index.html", bad},
        {"another mount", "/admin/index.html", bad},
    }));
    CAPTURE(r.name, r.path);
    CHECK(resolve_static_path("/console", r.path) == r.expected);
}

TEST_CASE("static paths resolve under any mount") {
    CHECK(resolve_static_path("/admin", "/admin") == static_path{static_path::kind::redirect, ""});
    CHECK(resolve_static_path("/admin", "/admin/") == file("index.html"));
    CHECK(resolve_static_path("/admin", "/admin/js/routing.js") == file("js/routing.js"));
    CHECK(resolve_static_path("/admin", "/admin/../console/") == bad);
    CHECK(resolve_static_path("/admin", "/administrator/") == bad);
    CHECK(resolve_static_path("/admin", "/console/index.html") == bad);
}

TEST_CASE("console content types by extension") {
    CHECK(content_type_for("index.html") == "text/html; charset=utf-8");
    CHECK(content_type_for("js/main.js") == "text/javascript; charset=utf-8");
    CHECK(content_type_for("console.css") == "text/css; charset=utf-8");
    CHECK(content_type_for("logo.svg") == "image/svg+xml");
    CHECK(content_type_for("README.md").empty());
    CHECK(content_type_for("secret.pem").empty());
    CHECK(content_type_for(".js").empty());
}

TEST_CASE("console folders load into memory without hidden files links or unknown types") {
    temp_dir d;
    write(d.path / "index.html", "<!doctype html>");
    write(d.path / "js" / "main.js", "export {};");
    write(d.path / "notes.md", "not served");
    write(d.path / ".env", "SECRET=1");
    write(d.path / ".git" / "config.js", "hidden folder");
    write(d.path / "empty.css", "");
    const temp_dir outside;
    write(outside.path / "secret.js", "outside");
    fs::create_symlink(outside.path / "secret.js", d.path / "link.js");

    auto loaded = load_static_site(d.path.string());
    REQUIRE(std::holds_alternative<static_site>(loaded));
    const auto& site = std::get<static_site>(loaded);
    std::vector<std::string> names;
    for (const auto& [name, f] : site.files) names.push_back(name);
    CHECK(names == std::vector<std::string>{"empty.css", "index.html", "js/main.js"});
    const auto& js = site.files.at("js/main.js");
    CHECK(js.body == "export {};");
    CHECK(js.content_type == "text/javascript; charset=utf-8");
    CHECK(js.etag.size() == 18);
    CHECK(js.etag != site.files.at("index.html").etag);
    CHECK(site.files.at("empty.css").body.empty());
}

TEST_CASE("console folders that cannot be served are refused with the reason") {
    temp_dir d;
    auto missing = load_static_site((d.path / "nope").string());
    REQUIRE(std::holds_alternative<std::string>(missing));
    CHECK(std::get<std::string>(missing).find("is not a folder") != std::string::npos);

    write(d.path / "app.js", "x");
    auto no_index = load_static_site(d.path.string());
    REQUIRE(std::holds_alternative<std::string>(no_index));
    CHECK(std::get<std::string>(no_index).find("no index.html") != std::string::npos);

    write(d.path / "index.html", "0123456789");
    auto too_big = load_static_site(d.path.string(), {.max_files = 10, .max_bytes = 5});
    REQUIRE(std::holds_alternative<std::string>(too_big));
    CHECK(std::get<std::string>(too_big).find("more than 5 bytes") != std::string::npos);
    auto too_many = load_static_site(d.path.string(), {.max_files = 1, .max_bytes = 100});
    REQUIRE(std::holds_alternative<std::string>(too_many));
    CHECK(std::get<std::string>(too_many).find("more than 1 files") != std::string::npos);
}

TEST_CASE("the repository's admin folder loads") {
    auto loaded = load_static_site((scrm::test::source_dir() / "admin").string());
    REQUIRE(std::holds_alternative<static_site>(loaded));
    const auto& files = std::get<static_site>(loaded).files;
    CHECK(files.count("index.html") == 1);
    CHECK(files.count("js/main.js") == 1);
}

TEST_CASE("the repository's console folder loads") {
    auto loaded = load_static_site((scrm::test::source_dir() / "console").string());
    REQUIRE(std::holds_alternative<static_site>(loaded));
    const auto& files = std::get<static_site>(loaded).files;
    CHECK(files.count("index.html") == 1);
    CHECK(files.count("js/main.js") == 1);
    CHECK(files.count("js/conversations.js") == 1);
}
