// Static pages (the console, the administration pages): loading a folder into memory at start,
// resolving request paths (pure), and the GET <mount>/… handler that serves from memory.
#include "scrm/gateway/static_files.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "scrm/common/log.hpp"

namespace scrm::gateway {
namespace {

namespace fs = std::filesystem;
using boost::asio::awaitable;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// FNV-1a, 64 bits: the ETag only has to change when the body does.
std::string etag_of(std::string_view body) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : body) {
        h ^= c;
        h *= 1099511628211ull;
    }
    std::array<char, 24> buf{};
    std::snprintf(buf.data(), buf.size(), "\"%016llx\"", static_cast<unsigned long long>(h));
    return buf.data();
}

bool is_page(std::string_view content_type) {
    return content_type.rfind("text/html", 0) == 0;
}

http_response not_found() {
    return json_error(404, "页面不存在");
}

awaitable<http_response> serve(std::string mount, std::shared_ptr<const static_site> site,
                               http_request req) {
    const static_path p = resolve_static_path(mount, req.path);
    if (p.what == static_path::kind::redirect) {
        http_response r;
        r.status = 301;
        r.content_type = "text/plain; charset=utf-8";
        r.headers.emplace_back("Location", mount + "/");
        co_return r;
    }
    if (p.what == static_path::kind::bad) co_return json_error(400, "请求的路径无效");
    if (!site) co_return not_found();
    const auto it = site->files.find(p.file);
    if (it == site->files.end()) co_return not_found();
    const static_file& f = it->second;
    http_response r;
    r.content_type = f.content_type;
    // Revalidated on every load: a deployment's new page is seen at once, and an unchanged file
    // costs a 304 only.
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("ETag", f.etag);
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    if (is_page(f.content_type)) {
        r.headers.emplace_back("Content-Security-Policy",
                               "default-src 'self'; img-src 'self' data: blob:; "
                               "media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'");
        r.headers.emplace_back("Referrer-Policy", "no-referrer");
    }
    if (req.header("if-none-match") == f.etag) {
        r.status = 304;
        co_return r;
    }
    r.body = f.body;
    co_return r;
}

}  // namespace

std::string content_type_for(std::string_view file_name) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> types{{
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".wav", "audio/wav"},
        {".txt", "text/plain; charset=utf-8"},
    }};
    for (const auto& [ext, type] : types) {
        if (file_name.size() > ext.size() &&
            file_name.compare(file_name.size() - ext.size(), ext.size(), ext) == 0) {
            return std::string(type);
        }
    }
    return {};
}

static_path resolve_static_path(std::string_view mount, std::string_view path) {
    static_path out;
    if (path == mount) {
        out.what = static_path::kind::redirect;
        return out;
    }
    if (path.size() <= mount.size() || path.substr(0, mount.size()) != mount ||
        path[mount.size()] != '/') {
        return out;
    }
    path.remove_prefix(mount.size() + 1);
    if (path.empty()) {
        out.what = static_path::kind::file;
        out.file = "index.html";
        return out;
    }
    std::string decoded;
    decoded.reserve(path.size());
    std::string segment;
    auto end_segment = [&]() {
        if (segment.empty() || segment == "." || segment == "..") return false;
        decoded += segment;
        segment.clear();
        return true;
    };
    for (std::size_t i = 0; i < path.size(); ++i) {
        char c = path[i];
        if (c == '/') {
            if (!end_segment()) return out;
            decoded += '/';
            continue;
        }
        if (c == '%') {
            if (i + 2 >= path.size()) return out;
            const int hi = hex_value(path[i + 1]);
            const int lo = hex_value(path[i + 2]);
            if (hi < 0 || lo < 0) return out;
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
            if (c == '/') return out;  // an encoded slash never separates segments
        }
        if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return out;
        segment += c;
    }
    if (segment.empty()) {
        // "js/": a folder. There are no listings; its index.html if one was loaded.
        decoded += "index.html";
    } else if (!end_segment()) {
        return out;
    }
    out.what = static_path::kind::file;
    out.file = std::move(decoded);
    return out;
}

std::variant<static_site, std::string> load_static_site(const std::string& dir,
                                                        static_site_limits limits) {
    static_site site;
    site.dir = dir;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return dir + " is not a folder";
    std::size_t total = 0;
    fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
    if (ec) return "cannot read " + dir + ": " + ec.message();
    for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
        if (ec) return "cannot read " + dir + ": " + ec.message();
        const fs::path& p = it->path();
        const std::string name = p.filename().string();
        if (!name.empty() && name.front() == '.') {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
        std::string type = content_type_for(name);
        if (type.empty()) continue;
        if (site.files.size() >= limits.max_files) {
            return dir + " holds more than " + std::to_string(limits.max_files) +
                   " files";
        }
        std::ifstream in(p, std::ios::binary);
        if (!in.is_open()) return "cannot read " + p.string();
        std::ostringstream body;
        body << in.rdbuf();
        if (in.bad()) return "cannot read " + p.string();
        total += body.str().size();
        if (total > limits.max_bytes) {
            return dir + " holds more than " + std::to_string(limits.max_bytes) +
                   " bytes";
        }
        std::string key = fs::relative(p, dir, ec).generic_string();
        if (ec) return "cannot read " + p.string();
        static_file f{body.str(), std::move(type), {}};
        f.etag = etag_of(f.body);
        site.files.emplace(std::move(key), std::move(f));
    }
    if (!site.files.count("index.html")) return dir + " has no index.html";
    return site;
}

void add_static_routes(router& routes, const std::string& mount,
                       std::shared_ptr<const static_site> site) {
    const handler serve_site = [mount, site](http_request r) {
        return serve(mount, site, std::move(r));
    };
    routes.exact("GET", mount, serve_site);
    routes.prefix("GET", mount + "/", mount + "/{file}", serve_site);
}

std::optional<std::string> mount_static_site(router& routes, const static_mount& m) {
    const std::string& dir = m.configured.empty() ? m.built_in : m.configured;
    std::shared_ptr<const static_site> site;
    auto loaded = load_static_site(dir);
    if (auto* s = std::get_if<static_site>(&loaded)) {
        log::info("gateway.static_site", {{"mount", m.mount},
                                          {"dir", dir},
                                          {"files", static_cast<std::uint64_t>(s->files.size())}});
        site = std::make_shared<const static_site>(std::move(*s));
    } else if (!m.configured.empty()) {
        return m.key + ": " + std::get<std::string>(loaded);
    } else {
        // The built-in default may be gone (a binary copied elsewhere): the API still works.
        log::warn("gateway.static_site_missing",
                  {{"mount", m.mount}, {"problem", m.key + ": " + std::get<std::string>(loaded)}});
    }
    add_static_routes(routes, m.mount, std::move(site));
    return std::nullopt;
}

}  // namespace scrm::gateway
