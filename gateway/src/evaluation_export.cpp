// See evaluation_export.hpp. libxlsxwriter 1.1.4 (Debian 12) can only write to a file: a private
// temporary one (mkstemp), read back and removed whatever happens.
#include "evaluation_export.hpp"

#include <unistd.h>
#include <xlsxwriter.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "scrm/common/log.hpp"

namespace scrm::gateway {
namespace {

struct temp_file {
    std::string path;
    ~temp_file() {
        if (!path.empty()) ::unlink(path.c_str());
    }
};

}  // namespace

result<std::string> xlsx_document(const std::vector<std::vector<std::string>>& rows,
                                  const std::string& sheet) {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern = std::string(dir && *dir ? dir : "/tmp") + "/scrm-export-XXXXXX";
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) return make_error_code(errc::server_error);
    ::close(fd);
    temp_file file{pattern};

    lxw_workbook* book = workbook_new(file.path.c_str());
    if (!book) return make_error_code(errc::server_error);
    lxw_worksheet* ws = workbook_add_worksheet(book, sheet.c_str());
    lxw_format* bold = workbook_add_format(book);
    format_set_bold(bold);
    bool ok = ws != nullptr;
    std::size_t columns = 0;
    for (std::size_t r = 0; ok && r < rows.size(); ++r) {
        columns = std::max(columns, rows[r].size());
        for (std::size_t c = 0; c < rows[r].size(); ++c) {
            // Text cells only: nothing the patient typed is ever read as a formula.
            const lxw_error e =
                worksheet_write_string(ws, static_cast<lxw_row_t>(r), static_cast<lxw_col_t>(c),
                                       rows[r][c].c_str(), r == 0 ? bold : nullptr);
            if (e != LXW_NO_ERROR) ok = false;
        }
    }
    if (ok && columns) {
        worksheet_set_column(ws, 0, static_cast<lxw_col_t>(columns - 1), 16, nullptr);
    }
    // workbook_close frees the workbook whatever it returns.
    const lxw_error closed = workbook_close(book);
    if (!ok || closed != LXW_NO_ERROR) {
        log::warn("evaluation.xlsx_failed", {{"reason", lxw_strerror(closed)}});
        return make_error_code(errc::server_error);
    }
    std::ifstream in(file.path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return make_error_code(errc::server_error);
    return bytes;
}

}  // namespace scrm::gateway
