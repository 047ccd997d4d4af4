// Static web pages served by the gateway — the staff console at /console/ and the administration
// pages at /admin/: a folder read once at start into memory and served from there, so no request
// touches the disk (nothing blocks an I/O thread) and no request path can reach a file outside the
// set that was loaded (no traversal, no directory listing).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "scrm/gateway/http.hpp"

namespace scrm::gateway {

struct static_file {
    std::string body;
    std::string content_type;
    std::string etag;  // "\"<16 hex>\"": a hash of the body
};

// Files by their path relative to the folder, '/'-separated ("index.html", "js/main.js").
struct static_site {
    std::string dir;
    std::map<std::string, static_file, std::less<>> files;
};

struct static_site_limits {
    std::size_t max_files = 200;
    std::size_t max_bytes = 8 * 1024 * 1024;  // all files together
};

// Loads every regular file under `dir` whose extension has a known content type (others are
// skipped; hidden files and folders too). Symbolic links are not followed. Blocking: call at start.
// Returns the site, or a problem naming the folder (missing, no index.html, over the limits).
std::variant<static_site, std::string> load_static_site(const std::string& dir,
                                                        static_site_limits limits = {});

// The content type for a file name by its extension ("text/html; charset=utf-8", …); empty when
// the extension is not one that is served.
std::string content_type_for(std::string_view file_name);

// What a request path under a mount ("/console") names. Pure.
struct static_path {
    enum class kind { file, redirect, bad } what = kind::bad;
    std::string file;  // kind::file: the key in static_site::files
};
// With mount "/console": "/console" → redirect to "/console/"; "/console/" → index.html;
// "/console/a/b.js" → "a/b.js". Percent-escapes are decoded; bad: a path outside the mount, a
// malformed escape, an encoded '/' or '\\', a NUL or control character, an empty, "." or ".."
// segment, a backslash.
static_path resolve_static_path(std::string_view mount, std::string_view path);

// GET <mount> and GET <mount>/… from `site` (nullptr: every such request answers 404, the pages
// are not installed). `mount` is "/console", "/admin": no trailing slash. Answers carry
// Cache-Control: no-cache with an ETag (If-None-Match → 304), X-Content-Type-Options: nosniff
// and, for pages, a Content-Security-Policy that allows only the gateway's own origin.
void add_static_routes(router& routes, const std::string& mount,
                       std::shared_ptr<const static_site> site);

// One static folder of the gateway's, as configured: `key` names the setting in messages
// ("console_dir"); `configured` is its value (empty: not set), `built_in` the source tree's folder.
struct static_mount {
    std::string mount;  // "/console"
    std::string key;    // "console_dir"
    std::string configured;
    std::string built_in;
};
// Loads the folder (logged) and adds its routes. A configured folder that cannot be served is an
// error: the problem is returned ("console_dir: /x is not a folder") and nothing is added. A
// missing built-in folder (a binary copied elsewhere) is a warning: the mount answers 404.
// Blocking: call at start.
std::optional<std::string> mount_static_site(router& routes, const static_mount& m);

}  // namespace scrm::gateway
